"""templates/servicemonitor.yaml: Prometheus Operator scrapes the REST metrics endpoint via the Service."""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_render import FULLNAME, NAMESPACE, find, merge_values, render_chart
from support.monitoring_crds import schema_errors

pytestmark = pytest.mark.chart

ENABLED = {"server": {"monitoring": {"enabled": True}}, "metrics": {"serviceMonitor": {"enabled": True}}}


def service_monitor(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return find(
        render_chart(merge_values(ENABLED, extra or {}), show_only="servicemonitor.yaml"),
        "ServiceMonitor",
        FULLNAME,
    )


class TestServiceMonitor:
    def test_not_rendered_by_default(self) -> None:
        monitoring_only = {"server": {"monitoring": {"enabled": True}}}
        assert render_chart(monitoring_only, show_only="servicemonitor.yaml") == []

    def test_matches_the_operator_schema(self) -> None:
        assert schema_errors(service_monitor()) == []

    def test_every_option_matches_the_operator_schema(self) -> None:
        relabel = [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]
        drop = [{"sourceLabels": ["__name__"], "regex": ":tensorflow:core:.*", "action": "drop"}]
        monitor = service_monitor(
            {
                "metrics": {
                    "serviceMonitor": {
                        "namespace": "monitoring",
                        "labels": {"release": "kube-prometheus-stack"},
                        "annotations": {"team": "ml"},
                        "interval": "15s",
                        "scrapeTimeout": "5s",
                        "honorLabels": True,
                        "relabelings": relabel,
                        "metricRelabelings": drop,
                        "targetLabels": ["app.kubernetes.io/instance"],
                    }
                }
            }
        )
        assert schema_errors(monitor) == []
        endpoint = monitor["spec"]["endpoints"][0]
        assert {"interval": "15s", "scrapeTimeout": "5s", "honorLabels": True}.items() <= endpoint.items()
        assert endpoint["relabelings"] == relabel
        assert endpoint["metricRelabelings"] == drop
        assert monitor["spec"]["targetLabels"] == ["app.kubernetes.io/instance"]
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert monitor["metadata"]["annotations"] == {"team": "ml"}

    def test_a_misspelt_field_is_caught_by_the_schema(self) -> None:
        monitor = service_monitor()
        monitor["spec"]["endpoints"][0]["scrapeTimout"] = "5s"
        assert any("scrapeTimout" in error for error in schema_errors(monitor))

    def test_selects_the_service_by_its_selector_labels_only(self) -> None:
        monitor = service_monitor()
        docs = render_chart(ENABLED, show_only="service.yaml")
        service = find(docs, "Service", FULLNAME)
        match = monitor["spec"]["selector"]["matchLabels"]
        assert match == service["spec"]["selector"]
        assert match.items() <= service["metadata"]["labels"].items()
        assert "app.kubernetes.io/version" not in match
        assert "helm.sh/chart" not in match

    def test_scrapes_the_rest_port_at_the_metrics_path(self) -> None:
        values = {"server": {"monitoring": {"enabled": True, "path": "/metrics/tfs"}}}
        monitor = service_monitor(values)
        service = find(
            render_chart(merge_values(ENABLED, values), show_only="service.yaml"), "Service", FULLNAME
        )
        [endpoint] = monitor["spec"]["endpoints"]
        assert endpoint["port"] in [port["name"] for port in service["spec"]["ports"]]
        assert endpoint["port"] == "rest"
        assert endpoint["path"] == "/metrics/tfs"

    def test_namespace_override_still_selects_the_release_namespace(self) -> None:
        monitor = service_monitor({"metrics": {"serviceMonitor": {"namespace": "monitoring"}}})
        assert monitor["metadata"]["namespace"] == "monitoring"
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}

    def test_empty_interval_leaves_the_prometheus_default(self) -> None:
        monitor = service_monitor({"metrics": {"serviceMonitor": {"interval": "", "scrapeTimeout": ""}}})
        endpoint = monitor["spec"]["endpoints"][0]
        assert "interval" not in endpoint
        assert "scrapeTimeout" not in endpoint
