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
