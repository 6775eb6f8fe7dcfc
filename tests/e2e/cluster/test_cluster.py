"""The local cluster offers the node types, admission and metrics the chart's presets rely on."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from support.cluster_helpers import Cluster, RealNode, pods, set_cpu_usage, wait_for

pytestmark = pytest.mark.e2e

RESTRICTED_CONTAINER = {
    "name": "app",
    "image": "registry.example.com/app:1",
    "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}},
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "runAsUser": 65534,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


def _pod(name: str, node_type: str | None = None, **container: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [RESTRICTED_CONTAINER | container]}
    if node_type:
        spec["nodeSelector"] = {"node.tfsctl.dev/type": node_type}
    return {"metadata": {"name": name, "labels": {"app": name}}, "spec": spec}


def test_cluster_has_cpu_gpu_and_eci_nodes_ready(cluster: Cluster) -> None:
    for kind in ("cpu", "gpu", "eci"):
        cluster.require_node_type(kind, labelled=True)
    nodes = client.CoreV1Api(cluster.api).list_node().items
    by_type: dict[str, list[Any]] = {}
    for node in nodes:
        # look at the simulated kinds only
        kind = cluster.node_types.get(node.metadata.name)
        if kind not in ("cpu", "gpu", "eci"):
            continue
        assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions), (
            node.metadata.name
        )
        by_type.setdefault(kind, []).append(node)
    assert len(by_type["cpu"]) == 2
    assert len(by_type["gpu"]) == 2
    for gpu in by_type["gpu"]:
        assert gpu.status.allocatable["nvidia.com/gpu"] == "4"
        assert gpu.metadata.labels["nvidia.com/gpu.present"] == "true"
        assert gpu.metadata.labels["aliyun.accelerator/nvidia_name"]
    (eci,) = by_type["eci"]
    assert eci.metadata.labels["type"] == "virtual-kubelet"
    assert [(t.key, t.value, t.effect) for t in eci.spec.taints] == [
        ("virtual-kubelet.io/provider", "alibabacloud", "NoSchedule")
    ]


def test_the_real_node_is_the_one_ready_real_node(cluster: Cluster, real_node: RealNode) -> None:
    nodes = client.CoreV1Api(cluster.api).list_node(label_selector="node.tfsctl.dev/type=real").items
    assert [n.metadata.name for n in nodes] == [real_node.name]
    assert any(c.type == "Ready" and c.status == "True" for c in nodes[0].status.conditions)
    assert "kwok.x-k8s.io/node" not in (nodes[0].metadata.annotations or {})


def test_restricted_namespace_rejects_a_privileged_pod(cluster: Cluster, namespace: str) -> None:
    body = _pod("priv", securityContext={"privileged": True})
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(cluster.api).create_namespaced_pod(namespace, body)
    assert err.value.status == 403
    assert "PodSecurity" in err.value.body


def test_gpu_pod_is_tolerated_onto_a_gpu_node_automatically(cluster: Cluster, namespace: str) -> None:
    cluster.require_node_type("gpu")
    core = client.CoreV1Api(cluster.api)
    body = _pod("gpu", resources={"limits": {"nvidia.com/gpu": "1"}, "requests": {"cpu": "100m"}})
    created = core.create_namespaced_pod(namespace, body)
    assert any(t.key == "nvidia.com/gpu" for t in created.spec.tolerations or [])
    pod = wait_for(
        lambda: (p := core.read_namespaced_pod("gpu", namespace)).spec.node_name and p,
        timeout=60,
        what="the GPU pod to be scheduled",
    )
    assert cluster.node_types[pod.spec.node_name] == "gpu"


def test_cpu_pod_stays_off_gpu_and_eci_nodes(cluster: Cluster, namespace: str) -> None:
    cluster.require_node_type("cpu", labelled=True)
    core = client.CoreV1Api(cluster.api)
    for i in range(4):
        core.create_namespaced_pod(namespace, _pod(f"cpu-{i}", "cpu"))
    scheduled = wait_for(
        lambda: (ps := pods(cluster.api, namespace, "")) and all(p.spec.node_name for p in ps) and ps,
        timeout=60,
        what="4 pods scheduled",
    )
    assert {cluster.node_types[p.spec.node_name] for p in scheduled} == {"cpu"}


def test_metrics_api_reports_the_emulated_cpu_usage_of_a_pod(
    cluster: Cluster, requires_kwok_usage: None, namespace: str
) -> None:
    cluster.require_node_type("cpu", labelled=True)
    core = client.CoreV1Api(cluster.api)
    core.create_namespaced_pod(namespace, _pod("busy", "cpu"))
    wait_for(
        lambda: core.read_namespaced_pod("busy", namespace).status.phase == "Running",
        timeout=60,
        what="pod busy Running",
    )
    assert set_cpu_usage(cluster.api, namespace, "app=busy", "250m") == 1
    metrics = client.CustomObjectsApi(cluster.api)

    def cpu_millicores() -> int | None:
        try:
            m = metrics.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", namespace, "pods", "busy")
        except ApiException:
            return None
        raw = m["containers"][0]["usage"]["cpu"]  # e.g. "250123456n" or "250m"
        value = int(raw[:-1]) / 1e6 if raw.endswith("n") else int(raw.rstrip("m"))
        return round(value) if 200 <= value <= 300 else None

    assert (
        200 <= wait_for(cpu_millicores, timeout=120, interval=3, what="metrics.k8s.io to report ~250m") <= 300
    )
