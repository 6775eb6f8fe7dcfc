"""The autoscaling verdict from a recorded timeline (pure: no clock, no cluster).

Every time is in seconds since the load started. The watchers record what the
HPA said (current/desired replicas, metric values against targets), how many
replicas of the Deployment were ready, and each pod's cumulative request count;
``evaluate`` turns that into one ``Check`` per expectation, each with a reason
a person can act on, plus the ``decisions`` (the moments the verdict hangs on).

Expectations:

- ``scale-out``: at least ``K`` ready replicas within ``S`` seconds after the
  load crossed the target. "Crossed the target" is the first HPA status with a
  metric far enough above its target that the controller scales out (usage
  ratio above ``1 + tolerance``, :class:`tfsctl.load.metrics.MetricValue`);
  when the HPA never reported one, the moment the load shape reached its peak.
- ``scale-in``: back to ``minReplicas`` (ready and desired) within ``S``
  seconds after the load stopped.
- ``max-replicas``: desired, current and ready never above ``maxReplicas``.
- ``thresholds``: the run's failure ratio and latency limits held.
- ``spread``: once two or more replicas were ready, the busiest pod served at
  most ``max_busiest_share`` of the requests; a connection pinned to one pod
  (gRPC keeps one HTTP/2 connection per channel) is named as such. Fewer than
  ``min_spread_requests`` requests after the scale-out (a load that ended as the
  new pods became ready) cannot tell a stuck connection from chance: the check is
  skipped, saying how many there were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tfsctl.load.metrics import MetricSpec, MetricValue
from tfsctl.load.thresholds import Summary, Verdict

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class HpaPoint:
    t: float
    current: int
    desired: int
    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricValue, ...] = ()


@dataclass(frozen=True)
class ReadyPoint:
    t: float
    ready: int
    replicas: int


@dataclass(frozen=True)
class PodCounts:
    """Cumulative request counts of the load's model, per pod name, at ``t``."""

    t: float
    counts: Mapping[str, int]


@dataclass(frozen=True)
class Expectations:
    at_least: int
    scale_out_within: float
    scale_in_within: float
    max_busiest_share: float = 0.9
    # a few keep-alive connections' worth: 8 requests on one of 3 pods is what two reconnects give
    min_spread_requests: int = 100


@dataclass
class Observation:
    """Everything recorded during one verification (times relative to the load start)."""

    load_stopped: float
    peak_reached: float
    end: float
    hpa: Sequence[HpaPoint]
    ready: Sequence[ReadyPoint]
    pods: Sequence[PodCounts]
    summary: Summary
    thresholds: Verdict
    transport: str = "rest"
    min_replicas: int | None = None
    max_replicas: int | None = None
    pods_note: str = ""  # why per-pod counts are missing, when they are
    metrics: Sequence[MetricSpec] = ()  # the HPA's spec.metrics, also when the status never had values


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status != "fail"


@dataclass
class Evaluation:
    checks: list[Check]
    decisions: list[str]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [{**asdict(c), "details": dict(c.details)} for c in self.checks],
            "decisions": self.decisions,
        }


def _bounds(obs: Observation) -> tuple[int, int]:
    mins = obs.min_replicas if obs.min_replicas is not None else (obs.hpa[0].min_replicas if obs.hpa else 1)
    maxs = obs.max_replicas if obs.max_replicas is not None else (obs.hpa[-1].max_replicas if obs.hpa else 0)
    return mins, maxs


def crossed_target(obs: Observation) -> tuple[float, str]:
    """When the load crossed the HPA target, and how that moment was determined."""
    for point in obs.hpa:
        above = [m for m in point.metrics if m.above_target]
        if above:
            return (
                point.t,
                f"t={point.t:.0f}s: HPA metric above target ({', '.join(m.describe() for m in above)})",
            )
    return obs.peak_reached, (
        f"t={obs.peak_reached:.0f}s: load reached its peak (the HPA never reported a metric above its target)"
    )


def _fmt(seconds: float) -> str:
    return f"{seconds:.0f}s"


def check_scale_out(obs: Observation, exp: Expectations) -> Check:
    t_ref, _ = crossed_target(obs)
    _, max_replicas = _bounds(obs)
    reached = next((p for p in obs.ready if p.ready >= exp.at_least), None)
    max_ready = max((p.ready for p in obs.ready), default=0)
    max_desired = max((p.desired for p in obs.hpa), default=0)
    details = {
        "target": exp.at_least,
        "within_s": exp.scale_out_within,
        "max_ready": max_ready,
        "max_desired": max_desired,
    }
    if reached is None:
        if max_replicas and max_replicas < exp.at_least:
            reason = (
                f"never reached {exp.at_least} ready replicas (max ready {max_ready}): "
                f"the HPA's maxReplicas is {max_replicas}, so it cannot scale to {exp.at_least}"
            )
        elif max_desired >= exp.at_least:
            reason = (
                f"the HPA asked for {max_desired} replicas but at most {max_ready} became ready "
                "(pods pending, failing readiness or not scheduled)"
            )
        elif not any(m.above_target for p in obs.hpa for m in p.metrics):
            peaks = _metric_peaks(obs.hpa)
            reason = (
                f"never reached {exp.at_least} ready replicas (max ready {max_ready}): the HPA metric never "
                f"exceeded its target ({peaks or 'no metric values reported'})"
            )
        else:
            reason = (
                f"never reached {exp.at_least} ready replicas (max ready {max_ready}): "
                f"the HPA never asked for more than {max_desired}"
            )
        return Check("scale-out", "fail", reason, details)
    delay = max(0.0, reached.t - t_ref)
    details = {**details, "reached_at_s": reached.t, "after_target_s": delay}
    if delay > exp.scale_out_within:
        return Check(
            "scale-out",
            "fail",
            f"reached {exp.at_least} ready replicas {_fmt(delay)} after the load crossed the target "
            f"(limit {_fmt(exp.scale_out_within)})",
            details,
        )
    return Check(
        "scale-out",
        "pass",
        f"reached {reached.ready} ready replicas {_fmt(delay)} after the load crossed the target "
        f"(limit {_fmt(exp.scale_out_within)})",
        details,
    )


def _metric_peaks(hpa: Sequence[HpaPoint]) -> str:
    peaks: dict[str, MetricValue] = {}
    for point in hpa:
        for m in point.metrics:
            if m.current is not None and (m.name not in peaks or (peaks[m.name].current or 0) < m.current):
                peaks[m.name] = m
    return ", ".join(f"max {m.describe()}" for m in peaks.values())


def check_scale_in(obs: Observation, exp: Expectations) -> Check:
    min_replicas, _ = _bounds(obs)
    max_ready = max((p.ready for p in obs.ready), default=0)
    details: dict[str, Any] = {"min_replicas": min_replicas, "within_s": exp.scale_in_within}
    if max_ready <= min_replicas:
        return Check(
            "scale-in", "skip", f"never scaled above minReplicas {min_replicas}: nothing to scale in", details
        )
    desired_at = _step_lookup([(p.t, p.desired) for p in obs.hpa])
    back = next(
        (
            p
            for p in obs.ready
            if p.t >= obs.load_stopped
            and p.ready <= min_replicas
            and desired_at(p.t, default=p.ready) <= min_replicas
        ),
        None,
    )
    if back is None:
        last_ready = obs.ready[-1].ready if obs.ready else 0
        last_desired = obs.hpa[-1].desired if obs.hpa else last_ready
        waited = obs.end - obs.load_stopped
        return Check(
            "scale-in",
            "fail",
            f"still {last_ready} ready replicas (HPA desired {last_desired}) {_fmt(waited)} after the load "
            f"stopped; expected minReplicas {min_replicas} within {_fmt(exp.scale_in_within)}",
            {**details, "last_ready": last_ready, "last_desired": last_desired},
        )
    delay = back.t - obs.load_stopped
    details = {**details, "back_at_s": back.t, "after_stop_s": delay}
    status: Status = "pass" if delay <= exp.scale_in_within else "fail"
    return Check(
        "scale-in",
        status,
        f"back to {back.ready} ready replica(s) {_fmt(delay)} after the load stopped "
        f"(limit {_fmt(exp.scale_in_within)})",
        details,
    )


def _step_lookup(points: list[tuple[float, int]]) -> Any:
    def lookup(t: float, default: int) -> int:
        value = default
        for when, v in points:
            if when > t:
                break
            value = v
        return value

    return lookup


def check_max(obs: Observation) -> Check:
    _, max_replicas = _bounds(obs)
    if not max_replicas:
        return Check("max-replicas", "skip", "the HPA's maxReplicas is unknown (no HPA status observed)")
    worst: tuple[int, str, float] | None = None
    for p in obs.hpa:
        for what, n in (("desired", p.desired), ("current", p.current)):
            if worst is None or n > worst[0]:
                worst = (n, what, p.t)
    for r in obs.ready:
        if worst is None or r.ready > worst[0]:
            worst = (r.ready, "ready", r.t)
    if worst is not None and worst[0] > max_replicas:
        n, what, t = worst
        return Check(
            "max-replicas",
            "fail",
            f"{what} replicas reached {n} > maxReplicas {max_replicas} at t={_fmt(t)}",
            {"max_replicas": max_replicas, "peak": n},
        )
    peak = worst[0] if worst else 0
    return Check(
        "max-replicas",
        "pass",
        f"never above maxReplicas {max_replicas} (peak {peak})",
        {"max_replicas": max_replicas, "peak": peak},
    )


def check_thresholds(obs: Observation) -> Check:
    s = obs.summary
    details = {**s.to_dict()}
    if obs.thresholds.passed:
        return Check(
            "thresholds",
            "pass",
            f"{s.requests} requests, failure ratio {s.failure_ratio:.2%}, "
            f"p95 {s.p95_ms:.0f} ms, p99 {s.p99_ms:.0f} ms",
            details,
        )
    return Check("thresholds", "fail", "; ".join(obs.thresholds.violations), details)


def check_spread(obs: Observation, exp: Expectations) -> Check:
    multi = next((p for p in obs.ready if p.ready >= 2), None)
    if multi is None:
        return Check("spread", "skip", "never more than one ready replica: nothing to spread over")
    if not obs.pods:
        note = obs.pods_note or "no per-pod request counts were collected"
        return Check("spread", "skip", f"per-pod request counts unavailable: {note}")
    start = multi.t
    baseline: dict[str, int] = {}
    last: dict[str, int] = {}
    for snap in obs.pods:
        if snap.t > obs.load_stopped + 5:  # after the load, counters only matter up to its end
            continue
        for pod, count in snap.counts.items():
            if snap.t < start:
                baseline[pod] = count  # the last value before two replicas were ready
            else:
                last[pod] = count
    served = {pod: count - baseline.get(pod, 0) for pod, count in last.items()}
    total = sum(served.values())
    details: dict[str, Any] = {"since_s": start, "requests_by_pod": served}
    if total <= 0:
        return Check("spread", "skip", "no requests counted on any pod after the scale-out", details)
    if total < exp.min_spread_requests:
        return Check(
            "spread",
            "skip",
            f"only {total} requests counted after the scale-out, fewer than {exp.min_spread_requests}: "
            "too few to judge the spread (run the load longer past the scale-out)",
            details,
        )
    busiest, most = max(served.items(), key=lambda kv: kv[1])
    share = most / total
    pods_ready = len(last)
    details = {**details, "busiest_pod": busiest, "busiest_share": round(share, 4), "pods": pods_ready}
    shares = ", ".join(f"{p} {c / total:.0%}" for p, c in sorted(served.items()))
    if pods_ready >= 2 and share > exp.max_busiest_share:
        connection = (
            "gRPC connection (one HTTP/2 channel)" if obs.transport == "grpc" else "keep-alive connection"
        )
        return Check(
            "spread",
            "fail",
            f"{share:.0%} of the {total} requests after scale-out went to {busiest} although "
            f"{pods_ready} pods were ready: a {connection} stuck on one pod (an L4 balancer spreads "
            "connections, not requests; use --reconnect-every, a client-side balancer or an L7 proxy)",
            details,
        )
    return Check(
        "spread", "pass", f"requests spread over {pods_ready} pods after scale-out ({shares})", details
    )


def decisions(obs: Observation) -> list[str]:
    """The moments the verdict hangs on, in time order."""
    events: list[tuple[float, str]] = []
    t_ref, how = crossed_target(obs)
    events.append((t_ref, f"load crossed the target at {how}"))
    previous: int | None = None
    for p in obs.hpa:
        if previous is not None and p.desired != previous:
            metrics = ", ".join(m.describe() for m in p.metrics)
            line = f"t={p.t:.0f}s: HPA desired {previous} -> {p.desired}" + (
                f" ({metrics})" if metrics else ""
            )
            events.append((p.t, line))
        previous = p.desired
    ready_prev: int | None = None
    for r in obs.ready:
        if ready_prev is not None and r.ready != ready_prev:
            events.append((r.t, f"t={r.t:.0f}s: ready replicas {ready_prev} -> {r.ready}"))
        ready_prev = r.ready
    events.append((obs.load_stopped, f"t={obs.load_stopped:.0f}s: load stopped"))
    return [line for _, line in sorted(events, key=lambda e: e[0])]


def evaluate(obs: Observation, exp: Expectations) -> Evaluation:
    checks = [
        check_scale_out(obs, exp),
        check_scale_in(obs, exp),
        check_max(obs),
        check_thresholds(obs),
        check_spread(obs, exp),
    ]
    return Evaluation(checks=checks, decisions=decisions(obs))
