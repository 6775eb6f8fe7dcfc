"""dashboards/: the recorded metric names and the Grafana dashboard (templates/dashboard-configmap.yaml)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from support.chart_render import CHART_DIR, FULLNAME, NAMESPACE, find, render_chart

pytestmark = pytest.mark.chart

METRICS_FILE = CHART_DIR / "dashboards" / "metrics.yaml"
DASHBOARD_FILE = CHART_DIR / "dashboards" / "tensorflow-serving.json"
ENABLED = {"metrics": {"grafanaDashboard": {"enabled": True}}}
# A selector in the dashboard always filters its series ({...}); brace contents and ranges are dropped first.
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")
BY_LABELS = re.compile(r"\bby \(([^)]*)\)")
PROMETHEUS_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def recorded() -> dict[str, dict[str, Any]]:
    """Every recorded metric by the name Prometheus sees."""
    record = yaml.safe_load(METRICS_FILE.read_text())
    return {metric["name"]: metric for group in record.values() for metric in group}


def series_names() -> dict[str, dict[str, Any]]:
    """The series names a query can select: histograms as their _bucket/_sum/_count series."""
    names: dict[str, dict[str, Any]] = {}
    for name, metric in recorded().items():
        if metric["type"] == "histogram":
            names.update({name + suffix: metric for suffix in HISTOGRAM_SUFFIXES})
        else:
            names[name] = metric
    return names


class TestMetricRecord:
    def test_names_and_labels_are_what_prometheus_accepts(self) -> None:
        for name, metric in recorded().items():
            assert PROMETHEUS_NAME.match(name), name
            assert metric["type"] in {"counter", "gauge", "histogram"}, name
            assert all(LABEL_NAME.match(label) for label in metric["labels"]), name
            assert metric["source"], name

    def test_tf_serving_names_are_their_exporter_spelling(self) -> None:
        # prometheus_exporter.cc turns every character outside [a-zA-Z0-9_] of /tensorflow/serving/x into ':'.
        tf_serving = yaml.safe_load(METRICS_FILE.read_text())["tensorflow_serving"]
        assert tf_serving
        for metric in tf_serving:
            assert metric["name"].startswith(":tensorflow:serving:"), metric["name"]
            assert "/" not in metric["name"]
            assert metric["source"].startswith("tensorflow_serving/"), metric["name"]

    def test_request_metrics_carry_the_model_name(self) -> None:
        metrics = recorded()
        assert metrics[":tensorflow:serving:request_count"]["labels"] == ["model_name", "status"]
        assert metrics[":tensorflow:serving:request_latency"]["type"] == "histogram"
        assert "model_name" in metrics[":tensorflow:serving:request_latency"]["labels"]


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the panels and of the query variables."""
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [var["query"]["query"] for var in dashboard["templating"]["list"] if var["type"] == "query"]
    assert queries
    return queries


def dashboard_configmap(values: dict[str, Any] | None = None) -> dict[str, Any]:
    docs = render_chart(values or ENABLED, show_only="dashboard-configmap.yaml")
    return find(docs, "ConfigMap", f"{FULLNAME}-dashboard")


class TestDashboardQueries:
    def test_every_queried_metric_is_recorded(self) -> None:
        names = series_names()
        for query in dashboard_queries(json.loads(DASHBOARD_FILE.read_text())):
            selected = SELECTOR.findall(query)
            assert selected, f"no metric selector in {query!r}"
            for name in selected:
                assert name in names, f"{name} (in {query!r}) is not in dashboards/metrics.yaml"
            bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", query)
            leftovers = [t for t in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare) if ":" in t or "kube_" in t]
            assert sorted(leftovers) == sorted(selected), f"a metric without a selector in {query!r}"

    def test_grouping_labels_exist_on_the_queried_metrics(self) -> None:
        names = series_names()
        for query in dashboard_queries(json.loads(DASHBOARD_FILE.read_text())):
            labels = set().union(*(names[name]["labels"] for name in SELECTOR.findall(query)))
            for group in BY_LABELS.findall(query):
                for label in (part.strip() for part in group.split(",")):
                    assert label in labels | {"le"}, f"{label} (in {query!r}) is no label of its metrics"

    def test_panels_cover_rate_latency_errors_and_replicas(self) -> None:
        exprs = " ".join(dashboard_queries(json.loads(DASHBOARD_FILE.read_text())))
        assert "rate(:tensorflow:serving:request_count{" in exprs
        assert "histogram_quantile(0.5, " in exprs and "histogram_quantile(0.99, " in exprs
        assert 'status!="OK"' in exprs
        assert "kube_deployment_status_replicas_available{" in exprs

    def test_templated_on_namespace_and_release(self) -> None:
        dashboard = json.loads(DASHBOARD_FILE.read_text())
        variables = {var["name"] for var in dashboard["templating"]["list"]}
        assert {"datasource", "namespace", "release", "model"} <= variables
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                assert 'namespace="$namespace"' in target["expr"], panel["title"]


class TestDashboardConfigMap:
    def test_not_rendered_by_default(self) -> None:
        assert render_chart(None, show_only="dashboard-configmap.yaml") == []

    def test_carries_the_sidecar_label_and_the_dashboard(self) -> None:
        configmap = dashboard_configmap()
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["namespace"] == NAMESPACE
        [(key, text)] = configmap["data"].items()
        assert key.endswith(".json")
        assert json.loads(text) == json.loads(DASHBOARD_FILE.read_text())

    def test_labels_annotations_and_namespace_are_overridable(self) -> None:
        values = {
            "metrics": {
                "grafanaDashboard": {
                    "enabled": True,
                    "namespace": "grafana",
                    "labels": {"grafana_dashboard": None, "dashboards": "ml"},
                    "annotations": {"grafana_folder": "Serving"},
                }
            }
        }
        configmap = dashboard_configmap(values)
        assert configmap["metadata"]["namespace"] == "grafana"
        assert configmap["metadata"]["labels"]["dashboards"] == "ml"
        assert "grafana_dashboard" not in configmap["metadata"]["labels"]
        assert configmap["metadata"]["annotations"] == {"grafana_folder": "Serving"}
