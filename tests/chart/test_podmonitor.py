"""templates/podmonitor.yaml: the Prometheus Operator scrapes the pods' REST metrics endpoint directly."""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_render import FULLNAME, NAMESPACE, find, merge_values, render_chart, server_container
from support.monitoring_crds import schema_errors

pytestmark = pytest.mark.chart

ENABLED = {"server": {"monitoring": {"enabled": True}}, "metrics": {"podMonitor": {"enabled": True}}}


def pod_monitor(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    docs = render_chart(merge_values(ENABLED, extra or {}), show_only="podmonitor.yaml")
    return find(docs, "PodMonitor", FULLNAME)


class TestPodMonitor:
    def test_not_rendered_by_default(self) -> None:
        assert render_chart({"server": {"monitoring": {"enabled": True}}}, show_only="podmonitor.yaml") == []

    def test_matches_the_operator_schema(self) -> None:
        assert schema_errors(pod_monitor()) == []

    def test_every_option_matches_the_operator_schema(self) -> None:
        relabel = [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node"}]
        keep = [{"sourceLabels": ["__name__"], "regex": ":tensorflow:serving:.*", "action": "keep"}]
        monitor = pod_monitor(
            {
                "metrics": {
                    "podMonitor": {
                        "namespace": "monitoring",
                        "labels": {"release": "kube-prometheus-stack"},
                        "annotations": {"team": "ml"},
                        "interval": "1m",
                        "scrapeTimeout": "20s",
                        "honorLabels": True,
                        "relabelings": relabel,
                        "metricRelabelings": keep,
                        "podTargetLabels": ["app.kubernetes.io/instance"],
                    }
                }
            }
        )
        assert schema_errors(monitor) == []
        endpoint = monitor["spec"]["podMetricsEndpoints"][0]
        assert {"interval": "1m", "scrapeTimeout": "20s", "honorLabels": True}.items() <= endpoint.items()
        assert endpoint["relabelings"] == relabel
        assert endpoint["metricRelabelings"] == keep
        assert monitor["spec"]["podTargetLabels"] == ["app.kubernetes.io/instance"]
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"

    def test_a_wrong_field_type_is_caught_by_the_schema(self) -> None:
        monitor = pod_monitor()
        monitor["spec"]["podMetricsEndpoints"][0]["honorLabels"] = "yes"
        assert any("honorLabels" in error for error in schema_errors(monitor))

    def test_selects_the_pods_by_their_selector_labels_only(self) -> None:
        monitor = pod_monitor()
        deployment = find(render_chart(ENABLED, show_only="deployment.yaml"), "Deployment", FULLNAME)
        match = monitor["spec"]["selector"]["matchLabels"]
        assert match == deployment["spec"]["selector"]["matchLabels"]
        assert match.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        assert "app.kubernetes.io/version" not in match

    def test_scrapes_the_rest_container_port_at_the_metrics_path(self) -> None:
        values = {"server": {"monitoring": {"enabled": True, "path": "/metrics/tfs"}, "restPort": 9501}}
        monitor = pod_monitor(values)
        container = server_container(render_chart(merge_values(ENABLED, values), show_only="deployment.yaml"))
        [endpoint] = monitor["spec"]["podMetricsEndpoints"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports[endpoint["port"]] == 9501
        assert endpoint["path"] == "/metrics/tfs"
        assert "--monitoring_config_file=" in " ".join(container["args"])

    def test_namespace_override_still_selects_the_release_namespace(self) -> None:
        monitor = pod_monitor({"metrics": {"podMonitor": {"namespace": "monitoring"}}})
        assert monitor["metadata"]["namespace"] == "monitoring"
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
