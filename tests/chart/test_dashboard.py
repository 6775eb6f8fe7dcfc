"""dashboards/: the recorded metric names and the Grafana dashboard (templates/dashboard-configmap.yaml)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from support.chart_render import CHART_DIR

pytestmark = pytest.mark.chart

METRICS_FILE = CHART_DIR / "dashboards" / "metrics.yaml"
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
