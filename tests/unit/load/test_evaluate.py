from __future__ import annotations

from support.load_timelines import desired_profile, scenario
from tfsctl.load.evaluate import Evaluation, Expectations, evaluate
from tfsctl.load.thresholds import Summary, Thresholds

EXPECT = Expectations(at_least=3, scale_out_within=30, scale_in_within=60)


def by_name(evaluation: Evaluation) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.reason) for c in evaluation.checks}


class TestPassingRun:
    def test_every_expectation_holds_when_the_hpa_scales_out_and_back(self) -> None:
        result = evaluate(scenario(), EXPECT)
        assert result.passed, result.failures()
        checks = by_name(result)
        assert checks["scale-out"] == (
            "pass",
            "reached 3 ready replicas 10s after the load crossed the target (limit 30s)",
        )
        assert checks["scale-in"][0] == "pass"
        assert "25s after the load stopped" in checks["scale-in"][1]
        assert checks["max-replicas"] == ("pass", "never above maxReplicas 4 (peak 3)")
        assert checks["spread"][0] == "pass"
        assert "tfs-0 33%" in checks["spread"][1]

    def test_decisions_are_in_time_order_and_name_the_target_crossing(self) -> None:
        decisions = evaluate(scenario(), EXPECT).decisions
        assert decisions[0] == "load crossed the target at t=10s: HPA metric above target (cpu 180%/50%)"
        assert "t=15s: HPA desired 1 -> 3 (cpu 180%/50%)" in decisions
        assert decisions.index("t=60s: load stopped") < decisions.index(
            "t=80s: HPA desired 3 -> 1 (cpu 5%/50%)"
        )


class TestFailingRuns:
    def test_never_scaled_names_the_metric_that_stayed_below_target(self) -> None:
        result = evaluate(scenario(desired=lambda t: 1, cpu_peak=30.0), EXPECT)
        status, reason = by_name(result)["scale-out"]
        assert status == "fail"
        assert reason == (
            "never reached 3 ready replicas (max ready 1): "
            "the HPA metric never exceeded its target (max cpu 30%/50%)"
        )
        assert by_name(result)["scale-in"][0] == "skip"
        assert not result.passed

    def test_max_replicas_one_is_named_as_the_reason(self) -> None:
        result = evaluate(scenario(desired=lambda t: 1, max_replicas=1), EXPECT)
        status, reason = by_name(result)["scale-out"]
        assert status == "fail"
        assert "the HPA's maxReplicas is 1, so it cannot scale to 3" in reason

    def test_slow_scale_out_reports_the_delay_and_the_limit(self) -> None:
        result = evaluate(scenario(desired=desired_profile(3, up_at=50)), EXPECT)
        assert by_name(result)["scale-out"] == (
            "fail",
            "reached 3 ready replicas 45s after the load crossed the target (limit 30s)",
        )

    def test_slow_scale_in_reports_how_long_it_stayed_up(self) -> None:
        result = evaluate(scenario(desired=desired_profile(3, down_at=200)), EXPECT)
        status, reason = by_name(result)["scale-in"]
        assert status == "fail"
        assert reason == (
            "still 3 ready replicas (HPA desired 3) 60s after the load stopped; "
            "expected minReplicas 1 within 60s"
        )

    def test_scale_in_after_the_deadline_fails(self) -> None:
        result = evaluate(scenario(desired=desired_profile(3, down_at=120), end=150), EXPECT)
        assert by_name(result)["scale-in"] == (
            "fail",
            "back to 1 ready replica(s) 65s after the load stopped (limit 60s)",
        )

    def test_exceeding_max_replicas_is_caught(self) -> None:
        result = evaluate(scenario(desired=desired_profile(5), max_replicas=4), Expectations(3, 30, 60))
        assert by_name(result)["max-replicas"] == (
            "fail",
            "desired replicas reached 5 > maxReplicas 4 at t=15s",
        )

    def test_stuck_grpc_connection_is_named(self) -> None:
        result = evaluate(scenario(split="stuck", transport="grpc"), EXPECT)
        status, reason = by_name(result)["spread"]
        assert status == "fail"
        assert reason.startswith("100% of the")
        assert (
            "went to tfs-0 although 3 pods were ready: a gRPC connection (one HTTP/2 channel) stuck" in reason
        )
        assert not result.passed

    def test_threshold_violations_fail_the_verification(self) -> None:
        slow = Summary(requests=1000, failures=50, p95_ms=900, p99_ms=1500)
        result = evaluate(scenario(summary=slow, limits=Thresholds(p95_ms=500, p99_ms=1000)), EXPECT)
        assert by_name(result)["thresholds"] == (
            "fail",
            "failure ratio 5.00% (50/1000) > 1.00%; p95 900 ms > 500 ms; p99 1500 ms > 1000 ms",
        )


class TestSkips:
    def test_spread_is_not_judged_on_a_handful_of_requests_after_the_scale_out(self) -> None:
        # CI saw it: the load ended 2 s after the second pod was ready, 8 requests all on one pod
        result = evaluate(scenario(split="stuck"), Expectations(3, 30, 60, min_spread_requests=10_000))
        status, reason = by_name(result)["spread"]
        assert status == "skip"
        assert reason.startswith("only ") and "fewer than 10000: too few to judge the spread" in reason
        assert result.passed

    def test_spread_is_skipped_without_per_pod_counts_and_says_why(self) -> None:
        obs = scenario()
        obs.pods = []
        obs.pods_note = "GET http://10.244.100.3:8501/monitoring/prometheus/metrics: HTTP 404"
        status, reason = by_name(evaluate(obs, EXPECT))["spread"]
        assert status == "skip"
        assert reason.endswith("HTTP 404")

    def test_skipped_checks_do_not_fail_the_verification(self) -> None:
        obs = scenario()
        obs.pods = []
        assert evaluate(obs, EXPECT).passed
