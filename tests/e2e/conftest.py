"""Fixtures for tests against a Kubernetes cluster.

``cluster`` (session): the cluster named by ``$KUBECONFIG`` when it names another
one (kind, ACK, ...); otherwise the local cluster (``tfsctl cluster up``), reused
when it already runs and left running afterwards for speed. Set
``TFSCTL_E2E_TEARDOWN=1`` to stop a local cluster that this session started.

An external cluster is used as it is: nothing is started or stopped. Tests say
what they need beyond plain Kubernetes (``cluster.require_real_node()`` or the
fixtures ``real_node``, ``requires_kwok_usage``, ``requires_loadbalancer``): on an
external cluster that lacks it they are skipped with a reason naming it; on the local
cluster they fail with how to get it.

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

from support.cluster_capabilities import probe
from support.cluster_helpers import Cluster, RealNode, wait_for
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


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    from kubernetes import config as kconfig

    external = _external_kubeconfig()
    if external is not None:
        api = kconfig.new_client_from_config(config_file=str(external))
        found = probe(api)
        yield Cluster(
            kubeconfig=external, api=api, local=False, node_types=found.node_types, capabilities=found
        )
        api.close()
        return

    from tfsbed.cluster.local import LocalCluster
    from tfsctl.errors import ToolkitError

    def progress(line: str) -> None:
        print(f"cluster: {line}", file=sys.stderr, flush=True)

    from tfsbed.cluster import spec as cspec

    # the default nodes: kwok's simulated ones and one real node (upstream kubelet + containerd);
    # kubelet's default syncFrequency (1m) makes every label move wait a minute or more for the
    # ConfigMap to reach the pods' files; the session cluster syncs every 10 s so the suite fits
    # CI's time. tests/e2e/cluster/test_real_node.py measures the default on a cluster of its own.
    local = LocalCluster(cspec.ClusterSpec(kubelet_sync_frequency="10s"), progress=progress)
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
    found = probe(api)
    handle = Cluster(
        kubeconfig=local.kubeconfig,
        api=api,
        local=True,
        started_here=started_here,
        node_types=found.node_types,
        capabilities=found,
    )
    yield handle
    api.close()
    if started_here and os.environ.get("TFSCTL_E2E_TEARDOWN") == "1":
        local.down()


# Session-scoped, so a module's own (module-scoped) set-up never runs before the check.
@pytest.fixture(scope="session")
def requires_kwok_usage(cluster: Cluster) -> None:
    """kwok nodes whose pods' CPU/memory usage the test sets (ResourceUsage), seen by metrics.k8s.io."""
    cluster.require_kwok_usage()


@pytest.fixture(scope="session")
def requires_loadbalancer(cluster: Cluster) -> None:
    """LoadBalancer Services get an address the host reaches (MetalLB on the local cluster)."""
    cluster.require_loadbalancer()


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> RealNode:
    """The real node (upstream kubelet + containerd): where pods run as they do on a user's node."""
    return RealNode(cluster.require_real_node())


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
