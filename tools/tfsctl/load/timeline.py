"""Per-interval load samples from cumulative Locust counters (pure).

Locust keeps cumulative counts and a histogram of response times (rounded
milliseconds -> count). Sampling both every second and differencing gives the
request rate and the p95 of *that interval*, which is what a plot next to the
replica count needs (Locust's own "current" figures are 10 s moving windows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Sample:
    """The load during ``(t - interval, t]``; ``t`` is seconds since the run started."""

    t: float
    users: int
    rps: float
    failures_per_s: float
    p95_ms: float | None
    requests: int  # cumulative
    failures: int  # cumulative

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(histogram: Mapping[int, int], percent: float) -> float | None:
    """The ``percent`` percentile of a histogram of rounded response times, ``None`` when empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = percent * total
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))


def histogram_delta(before: Mapping[int, int], after: Mapping[int, int]) -> dict[int, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0) > 0}


@dataclass
class Sampler:
    """Turns cumulative snapshots into ``Sample``s."""

    last_t: float = 0.0
    last_requests: int = 0
    last_failures: int = 0
    last_histogram: dict[int, int] | None = None

    def sample(
        self, t: float, users: int, requests: int, failures: int, histogram: Mapping[int, int]
    ) -> Sample:
        dt = max(t - self.last_t, 1e-9)
        delta = histogram_delta(self.last_histogram or {}, histogram)
        result = Sample(
            t=round(t, 3),
            users=users,
            rps=round((requests - self.last_requests) / dt, 3),
            failures_per_s=round((failures - self.last_failures) / dt, 3),
            p95_ms=percentile(delta, 0.95),
            requests=requests,
            failures=failures,
        )
        self.last_t, self.last_requests, self.last_failures = t, requests, failures
        self.last_histogram = dict(histogram)
        return result
