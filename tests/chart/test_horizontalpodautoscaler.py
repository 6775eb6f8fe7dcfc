"""templates/horizontalpodautoscaler.yaml: autoscaling/v2 metrics and behavior."""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_render import FULLNAME, find, render_chart

pytestmark = pytest.mark.chart

REQUESTS = {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}


def hpa(autoscaling: dict[str, Any]) -> dict[str, Any]:
    docs = render_chart(
        {**REQUESTS, "autoscaling": {"enabled": True, **autoscaling}},
        show_only="horizontalpodautoscaler.yaml",
    )
    return find(docs, "HorizontalPodAutoscaler", FULLNAME)


class TestHorizontalPodAutoscaler:
    def test_not_rendered_by_default(self) -> None:
        assert render_chart(None, show_only="horizontalpodautoscaler.yaml") == []

    def test_targets_the_deployment_with_bounds(self) -> None:
        spec = hpa({"minReplicas": 2, "maxReplicas": 7})["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": FULLNAME}
        assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 7)

    def test_cpu_and_memory_utilization(self) -> None:
        metrics = hpa({"targetCPUUtilizationPercentage": 60, "targetMemoryUtilizationPercentage": 75})[
            "spec"
        ]["metrics"]
        assert [(m["resource"]["name"], m["resource"]["target"]["averageUtilization"]) for m in metrics] == [
            ("cpu", 60),
            ("memory", 75),
        ]

    def test_external_metric_with_selector_and_average_value(self) -> None:
        external = {
            "name": "sls_ingress_qps",
            "selector": {"matchLabels": {"sls.logstore": "nginx-ingress"}},
            "targetAverageValue": "10",
        }
        metrics = hpa({"targetCPUUtilizationPercentage": 0, "externalMetrics": [external]})["spec"]["metrics"]
        assert metrics == [
            {
                "type": "External",
                "external": {
                    "metric": {
                        "name": "sls_ingress_qps",
                        "selector": {"matchLabels": {"sls.logstore": "nginx-ingress"}},
                    },
                    "target": {"type": "AverageValue", "averageValue": "10"},
                },
            }
        ]

    def test_external_metric_with_total_value(self) -> None:
        metric = hpa({"externalMetrics": [{"name": "queue_depth", "targetValue": 100}]})["spec"]["metrics"][
            -1
        ]
        assert metric["external"]["target"] == {"type": "Value", "value": "100"}

    def test_behavior_is_passed_through(self) -> None:
        behavior = {"scaleDown": {"stabilizationWindowSeconds": 30}}
        assert hpa({"behavior": behavior})["spec"]["behavior"] == behavior


SLS = {
    **REQUESTS,
    "ingress": {"enabled": True},
    "autoscaling": {
        "enabled": True,
        "targetCPUUtilizationPercentage": 0,
        "slsIngressQps": {"enabled": True, "project": "k8s-log-c1"},
    },
}


class TestHorizontalPodAutoscalerSlsIngressQps:
    def test_route_selector_is_the_charts_ingress_backend(self) -> None:
        docs = render_chart(SLS)
        [metric] = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"]
        labels = metric["external"]["metric"]["selector"]["matchLabels"]
        backend = find(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert labels["sls.ingress.route"] == f"serving-{backend['name']}-{backend['port']['number']}"
        assert labels == {
            "sls.project": "k8s-log-c1",
            "sls.logstore": "nginx-ingress",
            "sls.ingress.route": f"serving-{FULLNAME}-8501",
        }
        assert metric["external"]["target"] == {"type": "AverageValue", "averageValue": "10"}

    def test_route_follows_release_and_namespace(self) -> None:
        docs = render_chart(
            SLS, release="bert", namespace="default", show_only="horizontalpodautoscaler.yaml"
        )
        [metric] = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"]
        route = metric["external"]["metric"]["selector"]["matchLabels"]["sls.ingress.route"]
        assert route == "default-bert-tensorflow-serving-8501"


def prometheus_qps(**qps: Any) -> dict[str, Any]:
    return {
        "ingress": {"enabled": True},
        "server": {"monitoring": {"enabled": True}},
        "autoscaling": {
            "enabled": True,
            "targetCPUUtilizationPercentage": 0,
            "prometheusQps": {"enabled": True, **qps},
        },
    }


class TestHorizontalPodAutoscalerPrometheusQps:
    """The Prometheus form: prometheus-adapter's rate, where ACK's adapter would read SLS."""

    def test_ingress_source_selects_the_charts_ingress_route_on_the_adapters_metric(self) -> None:
        docs = render_chart(prometheus_qps())
        [metric] = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"]
        backend = find(docs, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert metric == {
            "type": "External",
            "external": {
                "metric": {
                    "name": "ingress_requests_per_second",
                    "selector": {
                        "matchLabels": {"route": f"serving-{backend['name']}-{backend['port']['number']}"}
                    },
                },
                "target": {"type": "AverageValue", "averageValue": "10"},
            },
        }

    def test_pods_source_is_tf_servings_own_rate_per_pod(self) -> None:
        docs = render_chart(prometheus_qps(source="pods", targetAverageValue=4))
        [metric] = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"]
        assert metric == {
            "type": "Pods",
            "pods": {
                "metric": {"name": "tensorflow_serving_requests_per_second"},
                "target": {"type": "AverageValue", "averageValue": "4"},
            },
        }

    def test_metric_and_label_names_follow_the_adapters_rules(self) -> None:
        docs = render_chart(prometheus_qps(ingressMetric="nginx_qps", routeLabel="upstream"))
        [metric] = find(docs, "HorizontalPodAutoscaler")["spec"]["metrics"]
        assert metric["external"]["metric"]["name"] == "nginx_qps"
        assert list(metric["external"]["metric"]["selector"]["matchLabels"]) == ["upstream"]
