"""The autoscaling benchmark's pure parts: reaction times from samples, durations, the table."""

from __future__ import annotations

import pytest

from tfsbed.bench import autoscaling as A
from tfsbed.bench.autoscaling import Reaction, Sample


def test_reaction_measures_from_the_first_sample_above_target() -> None:
    samples = [
        Sample(0.0, None, 1, 1),  # the metric not served yet
        Sample(1.0, 0.5, 1, 1),
        Sample(2.0, 1.0, 1, 1),  # at the target is not above it
        Sample(3.0, 1.8, 1, 1),
        Sample(4.0, 1.8, 2, 1),
        Sample(9.5, 1.2, 2, 2),
    ]
    r = A.reaction(samples)
    assert r == Reaction(crossed=3.0, decided=4.0, serving=9.5)
    assert r.to_decision == 1.0 and r.to_serving == 6.5


def test_a_metric_above_target_from_the_first_sample_is_marked() -> None:
    r = A.reaction([Sample(0.0, 4.0, 1, 1), Sample(2.0, 4.0, 3, 1), Sample(9.0, 2.0, 3, 2)])
    assert r == Reaction(0.0, 2.0, 9.0, at_start=True)
    table = A.reactions_table([("CPU", "m", r)], "5s", quick=False)
    assert table.rows[0][2] == "0.0 (above at the first sample)"


def test_reaction_is_none_when_the_metric_never_crossed() -> None:
    assert A.reaction([Sample(0.0, 0.2, 1, 1), Sample(1.0, None, 2, 2)]) is None
    assert A.reaction([]) is None


def test_reaction_without_a_new_pod_yet_has_no_serving_time() -> None:
    r = A.reaction([Sample(0.0, 0.1, 1, 1), Sample(1.0, 2.0, 1, 1), Sample(2.0, 2.0, 3, 1)])
    assert r == Reaction(1.0, 2.0, None)
    assert r.to_serving is None and r.to_decision == 1.0


def test_reaction_compares_with_the_counts_at_the_start_not_with_one() -> None:
    # two endpoints from the start: a third one is the reaction
    r = A.reaction([Sample(0.0, 0.1, 2, 2), Sample(1.0, 1.5, 2, 2), Sample(5.0, 1.5, 3, 3)])
    assert r == Reaction(1.0, 5.0, 5.0)


@pytest.mark.parametrize(("text", "seconds"), [("5s", 5.0), ("1m", 60.0), ("1m30s", 90.0), ("0.5s", 0.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert A.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5h", "s"])
def test_parse_duration_rejects_what_is_not_one(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        A.parse_duration(text)


def test_reactions_table_rows_and_the_floor() -> None:
    table = A.reactions_table(
        [("CPU", "metrics.k8s.io", Reaction(10.0, 12.5, 30.25)), ("QPS", "external", None)], "5s", quick=True
    )
    assert table.rows == [
        ["CPU", "metrics.k8s.io", "10.0", "2.5", "20.2", "5.0"],
        ["QPS", "external", "never crossed", "-", "-", "5.0"],
    ]
    assert any("sync period 5s" in n for n in table.notes)
    assert table.notes[-1].endswith("--only autoscaling --quick")
