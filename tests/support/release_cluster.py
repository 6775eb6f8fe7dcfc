"""Kubernetes-mode release tests: a models PV, the ``tfsctl`` CLI and a probe through the LoadBalancer.

``release_models_dir()`` generates fashion versions 1, 2 and 3 once (kept under
``.tools/cluster-data``); ``create_models_pv`` binds a hostPath PV to one
namespace's claim; ``LoadBalancerProbe`` sends predict requests to a label
through the Service's LoadBalancer address until stopped and records every
failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support.cluster_helpers import Cluster, RealNode, wait_for
from tfsbed.cluster import volumes
from tfsbed.probe import PredictProbe
from tfsctl import paths

REPO_ROOT = Path(__file__).resolve().parents[2]
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def release_models_dir() -> Path:
    """fashion versions 1, 2 and 3 (3 lets tests promote to a version the preset does not serve)."""
    root = paths.TOOLS_DIR / "cluster-data" / "release-models"
    marker = root / ".complete"
    if not marker.exists():
        from tfsctl.models.example import generate

        root.mkdir(parents=True, exist_ok=True)
        generate(root, "fashion", versions=(1, 2, 3), warmup=False)
        marker.write_text("fashion 1 2 3\n")
    return root


def local_preset_on_real_node(real_node: RealNode, model: str) -> dict[str, Any]:
    """The ``local`` preset's values for ``model`` (version 1, ``stable`` on it) on ``real_node``.

    Behind a ClusterIP Service; callers change what their test is about (replicas,
    autoscaling, the Ingress).
    """
    import yaml

    values = yaml.safe_load((paths.VALUES_DIR / "local.yaml").read_text())
    values.update(real_node.values())
    values["models"] = {
        model: {"versionPolicy": {"specific": {"versions": [1]}}, "versionLabels": {"stable": 1}}
    }
    values["service"] = {"type": "ClusterIP"}
    return dict(values)


@contextlib.contextmanager
def module_namespace(cluster: Cluster, prefix: str) -> Iterator[str]:
    """A PodSecurity-restricted namespace for a whole test module, deleted after."""
    from kubernetes import client

    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    core = client.CoreV1Api(cluster.api)
    core.create_namespace({"metadata": {"name": name, "labels": RESTRICTED}})

    def has_default_sa() -> bool:
        return any(sa.metadata.name == "default" for sa in core.list_namespaced_service_account(name).items)

    wait_for(has_default_sa, timeout=30, what=f"default ServiceAccount in {name}")
    try:
        yield name
    finally:
        core.delete_namespace(name, grace_period_seconds=0)


@contextlib.contextmanager
def models_pv(cluster: Cluster, namespace: str, claim: str, host: Path) -> Iterator[str]:
    """A hostPath PV labelled ``model: local-examples`` bound only to ``namespace/claim``."""
    from kubernetes import client

    name = f"{namespace}-models"[:63]
    core = client.CoreV1Api(cluster.api)
    core.create_persistent_volume(
        volumes.models_pv_manifest(name, host, volumes.DEFAULT_LABELS, claim=(namespace, claim))
    )
    try:
        yield name
    finally:
        core.delete_persistent_volume(name)


def tfsctl(
    cluster: Cluster, *args: str, timeout: float = 300.0, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """``python -m tfsctl ARGS`` against the test cluster."""
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), PYTHONPATH=str(REPO_ROOT / "tools"))
    proc = subprocess.run(
        [sys.executable, "-m", "tfsctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"tfsctl {' '.join(args[:3])} exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}"
        )
    return proc


def tfsctl_background(cluster: Cluster, *args: str, log: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), PYTHONPATH=str(REPO_ROOT / "tools"))
    return subprocess.Popen(
        [sys.executable, "-m", "tfsctl", *args],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env=env,
    )


def load_balancer_ip(cluster: Cluster, namespace: str, service: str) -> str:
    from kubernetes import client

    core = client.CoreV1Api(cluster.api)

    def ip() -> str | None:
        svc = core.read_namespaced_service(service, namespace)
        ingress = (svc.status.load_balancer and svc.status.load_balancer.ingress) or []
        return ingress[0].ip if ingress else None

    return str(wait_for(ip, timeout=60, what=f"LoadBalancer IP of {namespace}/{service}"))


class LoadBalancerProbe(PredictProbe):
    """Predict requests to ``/v1/models/<model>/labels/<label>:predict`` through one address."""

    def __init__(self, host: str, port: int = 8501, model: str = "fashion", label: str = "stable") -> None:
        url = f"http://{host}:{port}/v1/models/{model}/labels/{label}:predict"
        super().__init__(url, json.dumps({"instances": [[[[0.5]] * 28] * 28]}).encode(), name="lb-probe")
