"""Helpers for tests that run against a cluster: pinned helm/kubectl, bounded waits, emulated usage.

Used by ``tests/e2e/conftest.py`` (fixtures ``cluster`` and ``namespace``) and by
any area's e2e tests: ``cluster.helm("upgrade", "--install", ...)``,
``wait_for(lambda: ..., timeout=60, what="pods Ready")``,
``set_cpu_usage(cluster.api, ns, "app.kubernetes.io/instance=r", "300m")``.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from support import cluster_capabilities as caps
from support import polling
from tfsbed import toolchain
from tfsctl import paths

T = TypeVar("T")
KWOK_GROUP = "kwok.x-k8s.io"


class CommandFailed(AssertionError):
    """A pinned tool exited non-zero; the message carries its stderr."""


def pinned(binary: str) -> str:
    """Path of a pinned binary (builds its tool the first time)."""
    return str(toolchain.binary(binary))


def run_tool(
    argv: list[str], kubeconfig: Path, *, check: bool = True, timeout: float = 300.0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, input=stdin)
    if check and proc.returncode != 0:
        raise CommandFailed(f"{' '.join(argv[:4])} ... exited {proc.returncode}:\n{proc.stderr.strip()}")
    return proc


@dataclass
class Cluster:
    """What the ``cluster`` fixture yields."""

    kubeconfig: Path
    api: Any  # kubernetes.client.ApiClient
    local: bool  # the local kwok-based cluster (usage emulation, node types) vs an external one
    node_types: dict[str, str] = field(default_factory=dict)  # node name -> node.tfsctl.dev/type
    capabilities: caps.Capabilities = field(default_factory=caps.Capabilities)

    # What a test needs: skipped on an external cluster that lacks it, failed (with the way
    # to get it) on the local one. See support.cluster_capabilities.
    def require_loadbalancer(self) -> None:
        caps.require_loadbalancer(self.capabilities, self.local)

    def require_real_node(self) -> str:
        return caps.require_real_node(self.capabilities, self.local)

    def require_kwok_usage(self) -> None:
        caps.require_kwok_usage(self.capabilities, self.local)

    def require_node_type(self, node_type: str, *, labelled: bool = False) -> None:
        caps.require_node_type(self.capabilities, self.local, node_type, labelled=labelled)

    def helm(
        self, *args: str, check: bool = True, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        return run_tool([pinned("helm"), *args], self.kubeconfig, check=check, timeout=timeout)

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 120.0, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_tool(
            [pinned("kubectl"), *args], self.kubeconfig, check=check, timeout=timeout, stdin=stdin
        )


def wait_for(fn: Callable[[], T | None], *, timeout: float, what: str, interval: float = 1.0) -> T:
    """Poll ``fn`` until it returns something truthy (an AssertionError means not yet)."""
    return polling.wait_for(fn, timeout, what, interval)


def render(
    chart: Path, release: str, namespace: str, values_files: Iterable[Path], extra: dict | None = None
) -> list[dict]:
    """``helm template`` with the pinned helm; parsed documents (hooks included)."""
    args = [pinned("helm"), "template", release, str(chart), "--namespace", namespace]
    for f in values_files:
        args += ["-f", str(f)]
    stdin = None
    if extra:
        args += ["-f", "-"]
        stdin = yaml.safe_dump(extra)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, input=stdin)
    if proc.returncode != 0:
        raise CommandFailed(f"helm template {release} failed:\n{proc.stderr.strip()}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def pods(api: Any, namespace: str, selector: str) -> list[Any]:
    from kubernetes import client

    return list(client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items)


def set_cpu_usage(api: Any, namespace: str, selector: str, cpu: str) -> int:
    """Make kwok report ``cpu`` of usage for every current pod matching ``selector``.

    One ``ResourceUsage`` per pod (kwok matches it by pod name; it wins over the
    cluster-wide default). Call it again after pods are added. Returns the pod count.
    """
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from tfsbed.cluster.spec import pod_resource_usage

    custom = client.CustomObjectsApi(api)
    current = pods(api, namespace, selector)
    for pod in current:
        name = pod.metadata.name
        body = pod_resource_usage(namespace, name, cpu)
        try:
            existing = custom.get_namespaced_custom_object(
                KWOK_GROUP, "v1alpha1", namespace, "resourceusages", name
            )
            body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            custom.replace_namespaced_custom_object(
                KWOK_GROUP, "v1alpha1", namespace, "resourceusages", name, body
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            custom.create_namespaced_custom_object(KWOK_GROUP, "v1alpha1", namespace, "resourceusages", body)
    return len(current)


def example_models_dir() -> Path:
    """Generated example models for the local preset's PV (made once, kept under .tools/)."""
    root = paths.TOOLS_DIR / "cluster-data" / "models"
    marker = root / ".complete"
    if not marker.exists():
        from tfsctl.models.example import generate

        root.mkdir(parents=True, exist_ok=True)
        generate(root, "fashion", versions=(1, 2))
        marker.write_text("fashion 1 2\n")
    return root


@contextlib.contextmanager
def simulated_cloud_lb(cluster: Cluster, namespace: str, interval: float = 1.0) -> Iterator[None]:
    """Play the cloud controller for LoadBalancer Services that no controller serves.

    A preset for a cloud (ACK's SLB, GKE) renders a LoadBalancer Service whose pods land
    on simulated nodes, and ``helm --wait`` waits for its address. The local cluster's
    MetalLB gives one; kind without cloud-provider-kind gives none. This publishes a
    TEST-NET-2 address (198.51.100.N, never routed) for such Services in ``namespace``
    while the block runs, for pods on simulated nodes only; a Service that already has
    an address (a real controller was first) is left alone. Tests never send traffic to it.
    """
    from kubernetes import client

    core = client.CoreV1Api(cluster.api)
    stop = threading.Event()

    def loop() -> None:
        n = 0
        while not stop.is_set():
            try:
                for svc in core.list_namespaced_service(namespace).items:
                    if svc.spec.type != "LoadBalancer" or (
                        svc.status.load_balancer and svc.status.load_balancer.ingress
                    ):
                        continue
                    backends = pods(
                        cluster.api,
                        namespace,
                        ",".join(f"{k}={v}" for k, v in (svc.spec.selector or {}).items()),
                    )
                    nodes = {p.spec.node_name for p in backends}
                    if (
                        backends
                        and all(nodes)
                        and not any(cluster.node_types.get(x) == "real" for x in nodes)
                    ):
                        n += 1
                        status = {
                            "status": {"loadBalancer": {"ingress": [{"ip": f"198.51.100.{n % 250 + 1}"}]}}
                        }
                        core.patch_namespaced_service_status(svc.metadata.name, namespace, status)
            except Exception:  # the namespace may be going away; keep polling until told to stop
                pass
            stop.wait(interval)

    thread = threading.Thread(target=loop, name=f"cloud-lb-{namespace}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@dataclass(frozen=True)
class RealNode:
    """The real node the ``real_node`` fixture found; ``placement`` pins a pod spec to it."""

    name: str

    @property
    def placement(self) -> dict[str, Any]:
        """nodeSelector, toleration of the real node's taint, and a short grace period (pod spec keys)."""
        from tfsbed.cluster.node import config as nconfig

        return {
            "nodeSelector": {"kubernetes.io/hostname": self.name},
            "tolerations": [dict(nconfig.REAL_NODE_TOLERATION)],
            "terminationGracePeriodSeconds": 1,
        }

    def values(self) -> dict[str, Any]:
        """Chart values that put a release's pods on this node.

        The type label is set too: Helm merges maps, so a preset's own
        ``node.tfsctl.dev/type`` would otherwise stay.
        """
        from tfsbed.cluster import NODE_TYPE_LABEL

        p = self.placement
        return {
            "nodeSelector": {**p["nodeSelector"], NODE_TYPE_LABEL: "real"},
            "tolerations": p["tolerations"],
        }
