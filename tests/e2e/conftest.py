"""Fixtures for tests against a Kubernetes cluster.

``cluster`` (session): the cluster named by ``$KUBECONFIG`` when it names another
one (kind, ACK, ...); otherwise the local cluster (``tfsctl cluster up``), reused
when it already runs and left running afterwards for speed. Set
``TFSCTL_E2E_TEARDOWN=1`` to stop a local cluster that this session started.

``namespace``: a fresh namespace enforcing PodSecurity ``restricted``, deleted after.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cluster_helpers import Cluster, wait_for
from tfsctl import paths

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


def _external_kubeconfig() -> Path | None:
    env = os.environ.get("KUBECONFIG")
    if not env:
        return None
    path = Path(env.split(os.pathsep)[0]).expanduser()
    if path.resolve() == paths.LOCAL_KUBECONFIG.resolve():
        return None
    if not path.exists():
        pytest.fail(f"KUBECONFIG={env} does not exist: unset it to use the local cluster", pytrace=False)
    return path


def _node_types(api: object) -> dict[str, str]:
    from kubernetes import client

    from tfsctl.cluster import NODE_TYPE_LABEL

    out = {}
    for node in client.CoreV1Api(api).list_node().items:
        labels = node.metadata.labels or {}
        kind = labels.get(NODE_TYPE_LABEL)
        if not kind:
            alloc = node.status.allocatable or {}
            if labels.get("type") == "virtual-kubelet":
                kind = "eci"
            elif "nvidia.com/gpu" in alloc:
                kind = "gpu"
            else:
                kind = "cpu"
        out[node.metadata.name] = kind
    return out


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    from kubernetes import config as kconfig

    external = _external_kubeconfig()
    if external is not None:
        api = kconfig.new_client_from_config(config_file=str(external))
        yield Cluster(kubeconfig=external, api=api, local=False, node_types=_node_types(api))
        api.close()
        return

    from tfsctl.cluster.local import LocalCluster
    from tfsctl.errors import ToolkitError

    def progress(line: str) -> None:
        print(f"cluster: {line}", file=sys.stderr, flush=True)

    local = LocalCluster(progress=progress)
    before = local.status().state
    try:
        local.up(timeout=300)
    except ToolkitError as exc:
        pytest.fail(
            f"the local cluster could not be started: {exc}\n"
            "Try `tfsctl cluster down && tfsctl cluster up` (or `make cluster-up`) to see each step.",
            pytrace=False,
        )
    started_here = before != "running"
    api = kconfig.new_client_from_config(config_file=str(local.kubeconfig))
    handle = Cluster(
        kubeconfig=local.kubeconfig,
        api=api,
        local=True,
        started_here=started_here,
        node_types=_node_types(api),
    )
    yield handle
    api.close()
    if started_here and os.environ.get("TFSCTL_E2E_TEARDOWN") == "1":
        local.down()


@pytest.fixture()
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    slug = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{slug}-{uuid.uuid4().hex[:5]}"
    core = client.CoreV1Api(cluster.api)
    core.create_namespace({"metadata": {"name": name, "labels": RESTRICTED}})
    # the ServiceAccount admission plugin needs the namespace's default ServiceAccount
    wait_for(lambda: _has_default_sa(core, name), timeout=30, what=f"default ServiceAccount in {name}")
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Foreground")
    except ApiException as exc:
        if exc.status != 404:
            raise
    wait_for(lambda: _gone(core, name), timeout=120, what=f"namespace {name} to be deleted")


def _has_default_sa(core: object, namespace: str) -> bool:
    from kubernetes.client.rest import ApiException

    try:
        core.read_namespaced_service_account("default", namespace)  # type: ignore[attr-defined]
    except ApiException:
        return False
    return True


def _gone(core: object, namespace: str) -> bool:
    from kubernetes.client.rest import ApiException

    try:
        core.read_namespace(namespace)  # type: ignore[attr-defined]
    except ApiException as exc:
        return exc.status == 404
    return False
