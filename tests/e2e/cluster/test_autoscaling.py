"""The real HPA controller scales the chart's Deployment on emulated CPU usage, out and back in."""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client

from support.cluster_helpers import Cluster, pods, set_cpu_usage, wait_for
from tfsctl import paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RELEASE = "hpa"
PRESET = paths.VALUES_DIR / "gke-resnet-cpu-hpa.yaml"
SERVER = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=server"
FAST_WINDOWS = {
    "stabilizationWindowSeconds": 0,
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}],
}
TEST_VALUES = {
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    "autoscaling": {
        "enabled": True,
        "minReplicas": 1,
        "maxReplicas": 3,
        "targetCPUUtilizationPercentage": 50,
        "behavior": {"scaleUp": FAST_WINDOWS, "scaleDown": FAST_WINDOWS},
    },
    # kwok CPU nodes: usage is emulated there
    "nodeSelector": {"node.tfsctl.dev/type": "cpu"},
    "service": {"type": "ClusterIP"},
    "podDisruptionBudget": {"enabled": False},
}


def _replicas(apps: client.AppsV1Api, namespace: str) -> int:
    (dep,) = apps.list_namespaced_deployment(
        namespace, label_selector=f"app.kubernetes.io/instance={RELEASE}"
    ).items
    return int(dep.spec.replicas or 0)


def test_hpa_scales_out_on_high_emulated_cpu_and_back_in_when_it_falls(
    cluster: Cluster, namespace: str, tmp_path
) -> None:
    cluster.require_kwok_usage()
    cluster.require_node_type("cpu", labelled=True)
    values = tmp_path / "hpa.yaml"
    values.write_text(yaml.safe_dump(TEST_VALUES))
    cluster.helm(
        "upgrade",
        "--install",
        RELEASE,
        str(paths.CHART_DIR),
        "-n",
        namespace,
        "-f",
        str(PRESET),
        "-f",
        str(values),
        "--wait",
        "--timeout",
        "3m",
        timeout=240,
    )
    apps = client.AppsV1Api(cluster.api)
    assert _replicas(apps, namespace) == 1

    # 200m used of 100m requested = 200% against a 50% target: scale to the maximum
    def scaled_out() -> bool:
        set_cpu_usage(cluster.api, namespace, SERVER, "200m")
        return _replicas(apps, namespace) == 3

    wait_for(scaled_out, timeout=240, interval=3, what="the HPA to scale out to 3 replicas")
    wait_for(lambda: len(pods(cluster.api, namespace, SERVER)) == 3, timeout=60, what="3 server pods")

    # 10m of 100m = 10%: back to the minimum
    def scaled_in() -> bool:
        set_cpu_usage(cluster.api, namespace, SERVER, "10m")
        return _replicas(apps, namespace) == 1

    wait_for(scaled_in, timeout=240, interval=3, what="the HPA to scale back in to 1 replica")
    hpa = client.AutoscalingV2Api(cluster.api).list_namespaced_horizontal_pod_autoscaler(namespace).items[0]
    metric = hpa.status.current_metrics[0].resource.current
    assert metric.average_utilization is not None and metric.average_utilization < 50
