"""Canary judgement on fixed data: output differences, top-k, latency ratios, errors, health, live."""

from __future__ import annotations

import numpy as np
import pytest

from tfsctl.canary import judge as J
from tfsctl.canary import spec as S

SCORES = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])


def pair(
    stable: np.ndarray | None,
    canary: np.ndarray | None,
    ts: float = 0.01,
    tc: float = 0.01,
    error: str | None = None,
    i: int = 0,
) -> J.Pair:
    return J.Pair(
        J.Sample("pod-0", "stable", i, ts, None if stable is None else {"scores": stable}),
        J.Sample("pod-0", "canary", i, tc, None if canary is None else {"scores": canary}, error),
    )


def test_identical_outputs_have_no_difference_and_full_top_k_agreement() -> None:
    stats = J.compare_outputs([pair(SCORES, SCORES.copy())], S.parse({}).outputs)
    assert (stats.compared, stats.max_abs, stats.max_rel, stats.differing) == (1, 0.0, 0.0, 0)
    assert stats.top_k_agreement == 1.0


def test_a_difference_within_tolerance_does_not_count_as_differing() -> None:
    spec = S.parse({}).outputs
    stats = J.compare_outputs([pair(SCORES, SCORES + 5e-5)], spec)
    assert stats.differing == 0 and stats.max_abs == pytest.approx(5e-5)


def test_shifted_scores_differ_and_flip_the_top_class() -> None:
    shifted = SCORES[:, ::-1].copy()
    stats = J.compare_outputs([pair(SCORES, shifted), pair(SCORES, SCORES)], S.parse({}).outputs)
    assert stats.differing == 1 and stats.differing_share == 0.5
    assert stats.max_abs == pytest.approx(0.6)
    assert stats.max_rel == pytest.approx(6.0)  # 0.1 -> 0.7
    assert stats.top_k_rows == 4 and stats.top_k_agree == 2


def test_a_shape_change_is_a_difference() -> None:
    stats = J.compare_outputs([pair(SCORES, SCORES[:, :2])], S.parse({}).outputs)
    assert stats.differing == 1


def test_a_pair_where_one_label_failed_is_not_compared() -> None:
    stats = J.compare_outputs([pair(SCORES, None, error="boom")], S.parse({}).outputs)
    assert stats.compared == 0
    checks = J.output_checks(stats, S.parse({}).outputs, 1)
    assert [c.passed for c in checks] == [False] and "no input was answered" in checks[0].detail


def test_classifier_checks_fail_on_shifted_outputs_naming_the_thresholds() -> None:
    spec = S.parse({})
    checks = {
        c.name: c
        for c in J.output_checks(
            J.compare_outputs([pair(SCORES, SCORES[:, ::-1])], spec.outputs), spec.outputs, 1
        )
    }
    assert set(checks) == {"outputs.maxAbsDiff", "outputs.maxDifferingShare", "outputs.topK"}
    assert not checks["outputs.maxAbsDiff"].passed and checks["outputs.maxAbsDiff"].threshold == 0.01
    assert not checks["outputs.topK"].passed and checks["outputs.topK"].comparison == ">="
    assert "FAILED: 0.6 <= 0.01" in str(checks["outputs.maxAbsDiff"])


def test_a_regressor_is_judged_by_relative_difference() -> None:
    spec = S.parse({"profile": "regressor"})
    values = np.array([[100.0], [200.0]])
    ok = J.output_checks(J.compare_outputs([pair(values, values * 1.0005)], spec.outputs), spec.outputs, 1)
    assert all(c.passed for c in ok) and {c.name for c in ok} == {
        "outputs.maxRelDiff",
        "outputs.maxDifferingShare",
    }
    bad = J.output_checks(J.compare_outputs([pair(values, values * 1.1)], spec.outputs), spec.outputs, 1)
    assert not all(c.passed for c in bad)


def test_top_k_without_a_class_score_output_fails_saying_how_to_fix() -> None:
    spec = S.parse({})
    values = np.array([[1.0], [2.0]])
    checks = J.output_checks(J.compare_outputs([pair(values, values)], spec.outputs), spec.outputs, 1)
    top = next(c for c in checks if c.name == "outputs.topK")
    assert not top.passed and "profile regressor" in top.detail


def test_latency_ratios_use_percentiles_of_both_labels() -> None:
    spec = S.parse({"latency": {"minSamples": 5, "maxP50Ratio": 1.5, "maxP99Ratio": 2.0}})
    pairs = [pair(SCORES, SCORES, ts=0.010, tc=0.030, i=i) for i in range(10)]
    checks = {c.name: c for c in J.latency_checks(pairs, spec)}
    assert (
        checks["latency.maxP50Ratio"].value == pytest.approx(3.0) and not checks["latency.maxP50Ratio"].passed
    )
    fast = [pair(SCORES, SCORES, ts=0.010, tc=0.011, i=i) for i in range(10)]
    assert all(c.passed for c in J.latency_checks(fast, spec))


def test_too_few_latency_samples_fail_rather_than_pass() -> None:
    spec = S.parse({"latency": {"minSamples": 50}})
    checks = J.latency_checks([pair(SCORES, SCORES)], spec)
    assert not any(c.passed for c in checks if c.name.startswith("latency"))
    assert "too few samples" in checks[0].detail


def test_canary_errors_fail_the_error_rate_check_with_the_first_error() -> None:
    spec = S.parse({"latency": {"maxP50Ratio": None, "maxP99Ratio": None}})
    pairs = [pair(SCORES, SCORES), pair(SCORES, None, error="INVALID_ARGUMENT: bad input")]
    (check,) = J.latency_checks(pairs, spec)
    assert check.name == "errors.maxCanaryErrorRate" and check.value == 0.5 and not check.passed
    assert "bad input" in check.detail


def test_health_names_a_lost_replica_and_a_version_that_left_available() -> None:
    ok = J.HealthSample(0.0, {"a": {1: "AVAILABLE", 2: "AVAILABLE"}, "b": {1: "AVAILABLE", 2: "AVAILABLE"}})
    lost = J.HealthSample(1.0, {"a": {1: "AVAILABLE", 2: "AVAILABLE"}})
    unloading = J.HealthSample(
        1.0, {"a": {1: "AVAILABLE", 2: "UNLOADING"}, "b": {1: "AVAILABLE", 2: "AVAILABLE"}}
    )
    assert J.health_check([ok, ok], ["a", "b"], [1, 2]).passed
    assert J.health_check([ok, lost], ["a", "b"], [1, 2]).detail == "replica b lost (no longer in the fleet)"
    assert J.health_check([unloading], ["a", "b"], [1, 2]).detail == "replica a: version 2 is UNLOADING"
    down = J.HealthSample(1.0, {"a": {1: "AVAILABLE", 2: "AVAILABLE"}}, {"b": "connection refused"})
    assert "unreachable" in J.health_check([down], ["a", "b"], [1, 2]).detail
    assert not J.health_check([], ["a"], [1]).passed


def test_live_checks_compare_the_bake_window_with_the_window_before() -> None:
    spec = S.parse(
        {"prometheus": {"url": "http://p", "maxErrorRate": 0.01, "maxP99Ratio": 2.0, "minRequests": 10}}
    )
    before = J.LiveStats(100, 0, 0.010)
    checks = {c.name: c for c in J.live_checks(before, J.LiveStats(100, 5, 0.030), spec)}
    assert not checks["prometheus.maxErrorRate"].passed and checks["prometheus.maxErrorRate"].value == 0.05
    assert not checks["prometheus.maxP99Ratio"].passed and checks[
        "prometheus.maxP99Ratio"
    ].value == pytest.approx(3.0)
    assert all(c.passed for c in J.live_checks(before, J.LiveStats(100, 0, 0.012), spec))
    (quiet,) = J.live_checks(before, J.LiveStats(3, 0, None), spec)
    assert quiet.passed and "not judged" in quiet.detail


def test_the_verdict_passes_only_when_every_check_does() -> None:
    spec = S.parse({"latency": {"minSamples": 1}})
    health = [J.HealthSample(0.0, {"pod-0": {1: "AVAILABLE", 2: "AVAILABLE"}})]
    good = J.judge(spec, [pair(SCORES, SCORES)], health, ["pod-0"], [1, 2])
    assert good.passed and good.summary().startswith("all ")
    bad = J.judge(spec, [pair(SCORES, SCORES[:, ::-1])], health, ["pod-0"], [1, 2])
    assert not bad.passed and {c.name for c in bad.failed} >= {"outputs.maxAbsDiff", "outputs.topK"}


def test_requests_to_a_lost_replica_are_left_to_the_health_check() -> None:
    spec = S.parse({"latency": {"minSamples": 1}})
    both = {1: "AVAILABLE", 2: "AVAILABLE"}
    health = [J.HealthSample(0.0, {"pod-0": both, "b": both}), J.HealthSample(1.0, {"pod-0": both})]
    ok = pair(SCORES, SCORES)
    dying = J.Pair(
        J.Sample("b", "stable", 0, 0.01, {"scores": SCORES}),
        J.Sample("b", "canary", 0, None, None, "refused"),
    )
    assert J.lost_replicas(health, ["pod-0", "b"]) == {"b"}
    verdict = J.judge(spec, [ok, dying], health, ["pod-0", "b"], [1, 2])
    assert [c.name for c in verdict.failed] == ["health"]
    assert "replica b lost" in verdict.failed[0].detail
