from __future__ import annotations

import pytest

from tfsbed.cluster.agent.probes import ProbeSpec, ProbeTracker, Result, resolve_port, should_probe


def spec(kind: str, **fields: object) -> ProbeSpec:
    return ProbeSpec.from_dict(kind, {"httpGet": {"path": "/", "port": 80}, **fields})  # type: ignore[arg-type]


def test_from_dict_applies_api_defaults() -> None:
    s = spec("readiness")
    assert (s.handler, s.period, s.timeout, s.success_threshold, s.failure_threshold) == (
        "httpGet",
        10,
        1,
        1,
        3,
    )


def test_readiness_starts_failing_and_needs_success_threshold() -> None:
    tracker = ProbeTracker(spec("readiness", successThreshold=2), started_at=0)
    assert not tracker.passing
    assert not tracker.record(Result.SUCCESS, 1)
    assert tracker.record(Result.SUCCESS, 2)
    assert tracker.passing


def test_readiness_flips_after_failure_threshold_consecutive_failures() -> None:
    tracker = ProbeTracker(spec("readiness", failureThreshold=2), started_at=0)
    tracker.record(Result.SUCCESS, 1)
    assert not tracker.record(Result.FAILURE, 2)
    assert tracker.record(Result.FAILURE, 3)
    assert not tracker.passing


def test_a_success_resets_the_failure_count() -> None:
    tracker = ProbeTracker(spec("liveness", failureThreshold=2), started_at=0)
    tracker.record(Result.FAILURE, 1)
    tracker.record(Result.SUCCESS, 2)
    tracker.record(Result.FAILURE, 3)
    assert tracker.passing
    assert not tracker.failed_for_good()


def test_liveness_starts_passing_and_fails_for_good_at_threshold() -> None:
    tracker = ProbeTracker(spec("liveness", failureThreshold=3), started_at=0)
    assert tracker.passing
    for t in range(3):
        tracker.record(Result.FAILURE, t)
    assert tracker.failed_for_good()


def test_first_run_waits_initial_delay_then_period() -> None:
    tracker = ProbeTracker(spec("readiness", initialDelaySeconds=5, periodSeconds=2), started_at=100)
    assert tracker.next_due() == 105
    tracker.record(Result.SUCCESS, 105.5)
    assert tracker.next_due() == 107.5


def test_startup_probe_is_done_after_first_success() -> None:
    tracker = ProbeTracker(spec("startup"), started_at=0)
    assert not tracker.done()
    tracker.record(Result.SUCCESS, 1)
    assert tracker.done()


@pytest.mark.parametrize(
    ("kind", "running", "started", "expected"),
    [
        ("startup", True, False, True),
        ("startup", True, True, False),
        ("readiness", True, False, False),
        ("liveness", True, True, True),
        ("readiness", False, True, False),
    ],
)
def test_should_probe_gates_on_startup_and_running(
    kind: str, running: bool, started: bool, expected: bool
) -> None:
    assert should_probe(kind, running, started) is expected  # type: ignore[arg-type]


def test_resolve_port_accepts_numbers_and_named_ports() -> None:
    container = {"name": "c", "ports": [{"name": "rest", "containerPort": 8501}]}
    assert resolve_port(8500, container) == 8500
    assert resolve_port("rest", container) == 8501
    with pytest.raises(ValueError, match="grpc"):
        resolve_port("grpc", container)
