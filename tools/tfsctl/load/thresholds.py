"""Pass/fail limits of a load run, in one place (pure).

The locustfile's ``quitting`` listener, ``tfsctl loadtest`` and
``verify-autoscaling`` all judge a run with ``check``: a run passes when its
failure ratio, p95 and p99 (whole run, all requests) are within the limits.
Defaults are deliberately loose enough for a shared CI runner; tighten them per
service with ``--max-failure-ratio``, ``--p95-ms`` and ``--p99-ms`` (or the
``TFSCTL_LOAD_*`` environment variables).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

DEFAULT_MAX_FAILURE_RATIO = 0.01
DEFAULT_P95_MS = 1000.0
DEFAULT_P99_MS = 2000.0


@dataclass(frozen=True)
class Thresholds:
    """Limits; ``None`` disables a latency check."""

    max_failure_ratio: float = DEFAULT_MAX_FAILURE_RATIO
    p95_ms: float | None = DEFAULT_P95_MS
    p99_ms: float | None = DEFAULT_P99_MS
    min_requests: int = 1


@dataclass(frozen=True)
class Summary:
    """What a run measured (all requests together)."""

    requests: int
    failures: int
    p95_ms: float
    p99_ms: float
    rps: float = 0.0

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failure_ratio": self.failure_ratio}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    violations: tuple[str, ...]


class _StatsEntry(Protocol):  # locust.stats.StatsEntry, duck-typed to keep this module pure
    @property
    def num_requests(self) -> int: ...
    @property
    def num_failures(self) -> int: ...
    @property
    def total_rps(self) -> float: ...

    def get_response_time_percentile(self, percent: float) -> float: ...


def summarize(entry: _StatsEntry) -> Summary:
    """A ``Summary`` of Locust's ``runner.stats.total``."""
    return Summary(
        requests=entry.num_requests,
        failures=entry.num_failures,
        p95_ms=float(entry.get_response_time_percentile(0.95) or 0.0),
        p99_ms=float(entry.get_response_time_percentile(0.99) or 0.0),
        rps=float(entry.total_rps or 0.0),
    )


def check(summary: Summary, limits: Thresholds) -> Verdict:
    """Every violated limit, each as one line naming the measure, its value and the limit."""
    violations: list[str] = []
    if summary.requests < limits.min_requests:
        violations.append(f"requests {summary.requests} < minimum {limits.min_requests}")
    if summary.failure_ratio > limits.max_failure_ratio:
        violations.append(
            f"failure ratio {summary.failure_ratio:.2%} ({summary.failures}/{summary.requests}) "
            f"> {limits.max_failure_ratio:.2%}"
        )
    if limits.p95_ms is not None and summary.p95_ms > limits.p95_ms:
        violations.append(f"p95 {summary.p95_ms:.0f} ms > {limits.p95_ms:g} ms")
    if limits.p99_ms is not None and summary.p99_ms > limits.p99_ms:
        violations.append(f"p99 {summary.p99_ms:.0f} ms > {limits.p99_ms:g} ms")
    return Verdict(not violations, tuple(violations))
