"""Synthetic autoscaling timelines for the evaluation and report tests.

``scenario(...)`` builds an ``Observation`` the way the watchers record one:
a 60 s load that crosses the CPU target at t=10, HPA status every 5 s, ready
replicas following desired after ``ready_lag`` seconds, and per-pod request
counts every 5 s split according to ``split`` once a pod is ready.
"""

from __future__ import annotations

from collections.abc import Callable

from tfsctl.load.evaluate import HpaPoint, Observation, PodCounts, ReadyPoint
from tfsctl.load.metrics import MetricSpec, MetricValue
from tfsctl.load.shapes import Phase
from tfsctl.load.thresholds import Summary, Thresholds, Verdict, check
from tfsctl.load.timeline import Sample

LOAD_STOP = 60.0
CPU = MetricSpec("Resource", "cpu", "Utilization", 50.0)
PHASES = [Phase("step 1", 0, 20, 4), Phase("step 2", 20, 40, 8), Phase("step 3", 40, 60, 12)]


def desired_profile(peak: int, up_at: float = 15.0, down_at: float = 80.0) -> Callable[[float], int]:
    """1 replica, ``peak`` from ``up_at`` while loaded, back to 1 from ``down_at``."""
    return lambda t: peak if up_at <= t < down_at else 1


def scenario(
    *,
    desired: Callable[[float], int] | None = None,
    max_replicas: int = 4,
    ready_lag: float = 5.0,
    end: float = 120.0,
    cpu_peak: float = 180.0,
    split: str = "even",  # even | stuck
    transport: str = "rest",
    summary: Summary | None = None,
    limits: Thresholds | None = None,
) -> Observation:
    desired = desired or desired_profile(3)
    hpa = []
    ready = []
    pods = []
    totals: dict[str, int] = {}
    for step in range(int(end // 5) + 1):
        t = step * 5.0
        loaded = t < LOAD_STOP
        cpu = (cpu_peak if t >= 10 else 20.0) if loaded else 5.0
        metric = (MetricValue(CPU, cpu),)
        hpa.append(HpaPoint(t, desired(max(t - 5, 0)), desired(t), 1, max_replicas, metric))
        ready.append(ReadyPoint(t, desired(max(t - ready_lag, 0)), desired(t)))
        n_ready = desired(max(t - ready_lag, 0))
        per_interval = 100 if 0 < t <= LOAD_STOP else 0  # 20 requests/s in total
        for i in range(n_ready):
            totals.setdefault(f"tfs-{i}", 0)
        for name in [n for n in totals if int(n.split("-")[1]) >= n_ready]:
            del totals[name]  # scaled in: the pod and its counter are gone
        for i in range(n_ready):
            if split == "stuck":
                totals[f"tfs-{i}"] += per_interval if i == 0 else 0
            else:
                totals[f"tfs-{i}"] += per_interval // n_ready
        counts = dict(totals)
        pods.append(PodCounts(t, counts))
    summary = summary or Summary(requests=1200, failures=0, p95_ms=40.0, p99_ms=80.0, rps=20.0)
    verdict: Verdict = check(summary, limits or Thresholds())
    return Observation(
        load_stopped=LOAD_STOP,
        peak_reached=40.0,
        end=end,
        hpa=hpa,
        ready=ready,
        pods=pods,
        summary=summary,
        thresholds=verdict,
        transport=transport,
        min_replicas=1,
        max_replicas=max_replicas,
    )


def samples(end: float = LOAD_STOP) -> list[Sample]:
    out = []
    for i in range(1, int(end) + 1):
        users = 4 if i < 20 else 8 if i < 40 else 12
        out.append(Sample(float(i), users, users * 2.0, 0.0, 30.0 + users, i * 20, 0))
    return out
