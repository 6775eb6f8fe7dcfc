"""templates/poddisruptionbudget.yaml: rendered only when more than one replica is possible."""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_render import find, render_chart

pytestmark = pytest.mark.chart


def pdbs(values: dict[str, Any]) -> list[dict[str, Any]]:
    return render_chart(
        {"podDisruptionBudget": {"enabled": True}, **values}, show_only="poddisruptionbudget.yaml"
    )


class TestPodDisruptionBudget:
    def test_not_rendered_for_a_single_replica(self) -> None:
        assert pdbs({"replicaCount": 1}) == []

    def test_not_rendered_when_autoscaling_cannot_exceed_one_replica(self) -> None:
        values = {
            "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 1},
            "resources": {"requests": {"cpu": "1"}},
            "replicaCount": 5,
        }
        assert pdbs(values) == []

    def test_rendered_with_max_unavailable_one_by_default(self) -> None:
        spec = find(pdbs({"replicaCount": 3}), "PodDisruptionBudget")["spec"]
        assert spec["maxUnavailable"] == 1
        assert spec["selector"]["matchLabels"] == {
            "app.kubernetes.io/name": "tensorflow-serving",
            "app.kubernetes.io/instance": "tfs",
        }

    def test_rendered_when_the_hpa_can_scale_out(self) -> None:
        values = {"autoscaling": {"enabled": True, "maxReplicas": 4}, "resources": {"requests": {"cpu": "1"}}}
        assert find(pdbs(values), "PodDisruptionBudget")

    def test_min_available_replaces_max_unavailable(self) -> None:
        docs = render_chart(
            {"replicaCount": 3, "podDisruptionBudget": {"enabled": True, "minAvailable": "50%"}},
            show_only="poddisruptionbudget.yaml",
        )
        spec = find(docs, "PodDisruptionBudget")["spec"]
        assert spec["minAvailable"] == "50%"
        assert "maxUnavailable" not in spec

    def test_disabled_by_default(self) -> None:
        assert render_chart({"replicaCount": 3}, show_only="poddisruptionbudget.yaml") == []
