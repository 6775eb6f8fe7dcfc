"""The realnode benchmark's pure parts: the release values, the serving rule and the tables."""

from __future__ import annotations

import pytest
import yaml

from tfsbed.bench import realnode as R
from tfsctl import paths


@pytest.fixture(scope="module")
def preset() -> dict:
    return dict(yaml.safe_load((paths.VALUES_DIR / "local.yaml").read_text()))


def test_release_values_pin_pods_to_the_real_node_with_the_charts_default_command(
    preset: dict,
) -> None:
    values = R.release_values(preset, "tfsctl-node-0", "clf", 3, 2)
    assert values["nodeSelector"] == {
        "kubernetes.io/hostname": "tfsctl-node-0",
        "node.tfsctl.dev/type": "real",
    }
    assert values["tolerations"] == [
        {"key": "node.tfsctl.dev/real", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert values["models"] == {
        "clf": {"versionPolicy": {"specific": {"versions": [2]}}, "versionLabels": {"stable": 2}}
    }
    assert values["replicaCount"] == 3 and values["autoscaling"] == {"enabled": False}
    assert "command" not in values["server"]
    assert values["service"] == {"type": "LoadBalancer"}
    # the preset itself is not changed (it is reused for every replica count)
    assert preset["nodeSelector"] == {"node.tfsctl.dev/type": "real"}
    assert "command" not in preset["server"]  # the chart's default: the drop-in image's server


def test_release_values_can_load_more_versions_than_the_label_names(preset: dict) -> None:
    values = R.release_values(preset, "tfsctl-node-0", "clf", 1, 1, loaded=(1, 2))
    assert values["models"]["clf"] == {
        "versionPolicy": {"specific": {"versions": [1, 2]}},
        "versionLabels": {"stable": 1},
    }


def test_all_serving_needs_every_replica_on_the_version() -> None:
    assert R.all_serving({"a": 2, "b": 2}, 2, 2)
    assert not R.all_serving({"a": 2, "b": 1}, 2, 2)
    assert not R.all_serving({"a": 2, "b": None}, 2, 2)  # a pod that did not answer
    assert not R.all_serving({"a": 2}, 2, 2)  # one replica still starting
    assert not R.all_serving({"a": 2, "b": 2, "c": 2}, 2, 2)  # an old pod not gone yet


def test_moves_table_rows_are_method_by_replicas_with_failed_over_total() -> None:
    results = [
        R.MoveResult(R.METHODS[0], 1, 12.34, ok=100, failed=0, returned=20.0),
        R.MoveResult(R.METHODS[2], 1, 40.0, ok=95, failed=5, first_failures=["20:00:01 HTTP 404 b''"]),
    ]
    table = R.moves_table(results, poll_wait=2, quick=True)
    assert table.rows == [
        ["tfsctl promote", "1", "12.3", "20.0", "0 / 100"],
        ["one edit + rollout restart", "1", "40.0", "-", "5 / 100"],
    ]
    assert any("every 2s" in n for n in table.notes)
    assert table.notes[-1] == "first failures: one edit + rollout restart x1: 20:00:01 HTTP 404 b''"
    assert any(n.endswith("--only realnode --quick") for n in table.notes)


def test_up_table_lines_up_steps_of_both_runs() -> None:
    table = R.up_table(
        100.0, {"tools": 3.0, "real-nodes": 50.0}, 8.5, 60.0, {"tools": 1.0, "image:pause": 0.1}
    )
    assert table.rows == [
        ["total", "100.0", "60.0"],
        ["  tools", "3.0", "1.0"],
        ["  real-nodes", "50.0", "-"],
        ["  image:pause", "-", "0.1"],
        ["`down` between them", "8.5", "-"],
    ]


def test_images_table_sums_the_builds() -> None:
    table = R.images_table([("a:1", 1.25), ("b:2", 2.0)])
    assert table.rows == [["a:1", "1.2"], ["b:2", "2.0"], ["all", "3.2"]]
