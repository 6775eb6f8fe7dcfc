"""Request counts and latencies per model, in TF Serving's Prometheus names (pure)."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable

# TF Serving's request_latency buckets are exponential in microseconds (10us * 1.8^i).
BUCKETS_US: list[float] = [10.0 * 1.8**i for i in range(33)]


class Metrics:
    """Thread-safe counters; ``render()`` is the Prometheus text exposition."""

    def __init__(self, extra: Callable[[], str] | None = None) -> None:
        self._extra = extra  # more exposition text (the batching histograms)
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = defaultdict(int)
        self._hist: dict[tuple[str, str, str], list[int]] = {}
        self._sums: dict[tuple[str, str, str], float] = defaultdict(float)
        self._in_flight = 0

    def started(self) -> None:
        with self._lock:
            self._in_flight += 1

    def finished(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def record(self, model: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        micros = seconds * 1e6
        key = (model, api, entrypoint)
        with self._lock:
            self._counts[(model, status)] += 1
            buckets = self._hist.setdefault(key, [0] * (len(BUCKETS_US) + 1))
            buckets[bisect.bisect_left(BUCKETS_US, micros)] += 1
            self._sums[key] += micros

    def render(self) -> str:
        lines = ["# TYPE :tensorflow:serving:request_count counter"]
        with self._lock:
            for (model, status), count in sorted(self._counts.items()):
                lines.append(
                    f':tensorflow:serving:request_count{{model_name="{model}",status="{status}"}} {count}'
                )
            lines.append("# TYPE :tensorflow:serving:request_latency histogram")
            for (model, api, entry), buckets in sorted(self._hist.items()):
                labels = f'model_name="{model}",API="{api}",entrypoint="{entry}"'
                cumulative = 0
                for bound, count in zip([*BUCKETS_US, float("inf")], buckets, strict=True):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    lines.append(
                        f':tensorflow:serving:request_latency_bucket{{{labels},le="{le}"}} {cumulative}'
                    )
                lines.append(
                    f":tensorflow:serving:request_latency_sum{{{labels}}} {self._sums[(model, api, entry)]:g}"
                )
                lines.append(f":tensorflow:serving:request_latency_count{{{labels}}} {cumulative}")
            # Not a TF Serving metric: lets drains and tests see requests in progress.
            lines.append("# TYPE tfsctl_serving_requests_in_flight gauge")
            lines.append(f"tfsctl_serving_requests_in_flight {self._in_flight}")
        text = "\n".join(lines) + "\n"
        return text + self._extra() if self._extra is not None else text
