"""Fixtures for tests against a Kubernetes cluster.

``cluster`` (session): the cluster named by ``$KUBECONFIG`` when it names another
one (kind, ACK, ...); otherwise the local cluster (``tfsctl cluster up``), reused
when it already runs and left running afterwards for speed. Set
``TFSCTL_E2E_TEARDOWN=1`` to stop a local cluster that this run started.

Under pytest-xdist (``make test`` runs the e2e suite on two workers, a file per worker at a
time) every worker shares the one local cluster: ``cluster up`` runs one at a time per state dir, so
the first worker to need it starts it and the others reuse it; the run's controller, which
outlives every worker, stops it at the end.

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
from typing import Any

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


def _named_kubeconfig() -> Path | None:
    """The kubeconfig ``$KUBECONFIG`` names when it is not the local cluster's."""
    env = os.environ.get("KUBECONFIG")
    if not env:
        return None
    path = Path(env.split(os.pathsep)[0]).expanduser()
    return None if path.resolve() == paths.LOCAL_KUBECONFIG.resolve() else path


def _external_kubeconfig() -> Path | None:
    path = _named_kubeconfig()
    if path is not None and not path.exists():
        pytest.fail(
            f"KUBECONFIG={os.environ['KUBECONFIG']} does not exist: unset it to use the local cluster",
            pytrace=False,
        )
    return path


def _local_cluster() -> Any:
    """The suite's local cluster: kwok's simulated nodes and one real node (upstream kubelet +
    containerd).

    kubelet's default syncFrequency (1m) makes every label move wait a minute or more for the
    ConfigMap to reach the pods' files; the suite's cluster syncs every 10 s so the suite fits
    CI's time. tests/e2e/cluster/test_real_node.py measures the default on a cluster of its own.
    """
    from tfsbed.cluster import spec as cspec
    from tfsbed.cluster.local import LocalCluster

    def progress(line: str) -> None:
        print(f"cluster: {line}", file=sys.stderr, flush=True)

    return LocalCluster(cspec.ClusterSpec(kubelet_sync_frequency="10s"), progress=progress)


def _ends_the_run(config: pytest.Config) -> bool:
    """Whether this process ends the run: pytest alone, or xdist's controller (not a worker)."""
    return not hasattr(config, "workerinput")


# The modules that take minutes each (CI's --durations) start first: under xdist a worker that
# drew one of them last would run it alone while the other idles (longest first; every other
# module keeps its place). Order only, never a dependency: each module sets up what it needs.
LONGEST_FIRST = (
    "canary/test_canary_kubernetes.py",
    "release/test_kubernetes_mode.py",
    "canary/test_canary_job.py",
    "load/test_verify_autoscaling.py",
    "cluster/test_real_node.py",
    "external/test_external_cluster.py",
    "load/test_verify_autoscaling_qps.py",
    "cluster/test_metrics_pipeline.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    missing = [module for module in LONGEST_FIRST if not (here / module).is_file()]
    if missing:
        raise pytest.UsageError(f"tests/e2e/conftest.py LONGEST_FIRST: no module {', '.join(missing)}")
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}

    def place(item: pytest.Item) -> int:
        path = Path(item.path)
        module = path.relative_to(here).as_posix() if path.is_relative_to(here) else ""
        return rank.get(module, len(rank))

    items.sort(key=place)  # stable: the rest keep pytest's order


_LOCAL_WAS_RUNNING = pytest.StashKey[bool]()


def pytest_sessionstart(session: pytest.Session) -> None:
    if _ends_the_run(session.config) and _named_kubeconfig() is None:
        session.config.stash[_LOCAL_WAS_RUNNING] = _local_cluster().status().state == "running"


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if not _ends_the_run(config) or os.environ.get("TFSCTL_E2E_TEARDOWN") != "1":
        return
    if config.stash.get(_LOCAL_WAS_RUNNING, True):
        return  # external, or running before this run: not ours to stop
    _local_cluster().down()


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

    from tfsctl.errors import ToolkitError

    local = _local_cluster()
    try:
        local.up(timeout=300)  # one up at a time per state dir: xdist workers wait for the first
    except ToolkitError as exc:
        pytest.fail(
            f"the local cluster could not be started: {exc}\n"
            "Try `tfsctl cluster down && tfsctl cluster up` (or `make cluster-up`) to see each step.",
            pytrace=False,
        )
    api = kconfig.new_client_from_config(config_file=str(local.kubeconfig))
    found = probe(api)
    handle = Cluster(
        kubeconfig=local.kubeconfig,
        api=api,
        local=True,
        node_types=found.node_types,
        capabilities=found,
    )
    yield handle
    api.close()


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
