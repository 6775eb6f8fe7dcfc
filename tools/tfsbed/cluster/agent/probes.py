"""Probe scheduling and threshold decisions, as the kubelet's prober makes them (pure).

A :class:`ProbeTracker` is fed the outcome of each probe run and says whether the
probe currently passes; :meth:`ProbeTracker.next_due` says when to run it next.
The executors that actually run an ``httpGet``/``tcpSocket``/``exec`` check are in
:mod:`.runtime`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

ProbeKind = Literal["startup", "readiness", "liveness"]


class Result(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True)
class ProbeSpec:
    """A container probe with the API defaults applied."""

    kind: ProbeKind
    handler: str  # "httpGet" | "tcpSocket" | "exec" | "grpc"
    action: dict[str, Any]
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_dict(cls, kind: ProbeKind, probe: dict[str, Any]) -> ProbeSpec:
        handler = next((h for h in ("httpGet", "tcpSocket", "exec", "grpc") if probe.get(h)), "")
        return cls(
            kind=kind,
            handler=handler,
            action=dict(probe.get(handler) or {}),
            initial_delay=float(probe.get("initialDelaySeconds") or 0),
            period=float(probe.get("periodSeconds") or 10),
            timeout=float(probe.get("timeoutSeconds") or 1),
            # liveness and startup probes must use successThreshold 1 (API validation)
            success_threshold=int(probe.get("successThreshold") or 1),
            failure_threshold=int(probe.get("failureThreshold") or 3),
        )


@dataclass
class ProbeTracker:
    """Consecutive-result bookkeeping for one probe of one container run.

    Initial state: readiness fails until it succeeds ``success_threshold`` times;
    liveness passes until it fails ``failure_threshold`` times; startup fails until
    it first succeeds (after which it is not run again).
    """

    spec: ProbeSpec
    started_at: float
    passing: bool = field(init=False)
    successes: int = 0
    failures: int = 0
    last_run: float | None = None
    runs: int = 0

    def __post_init__(self) -> None:
        self.passing = self.spec.kind == "liveness"

    def next_due(self) -> float:
        if self.last_run is None:
            return self.started_at + self.spec.initial_delay
        return self.last_run + self.spec.period

    def done(self) -> bool:
        """A startup probe stops once it has passed."""
        return self.spec.kind == "startup" and self.passing

    def record(self, result: Result, now: float) -> bool:
        """Account one run; return True when ``passing`` flipped."""
        self.last_run = now
        self.runs += 1
        before = self.passing
        if result is Result.SUCCESS:
            self.successes += 1
            self.failures = 0
            threshold = 1 if self.spec.kind != "readiness" else self.spec.success_threshold
            if self.successes >= threshold:
                self.passing = True
        else:
            self.failures += 1
            self.successes = 0
            if self.failures >= self.spec.failure_threshold:
                self.passing = False
        return before != self.passing

    def failed_for_good(self) -> bool:
        """Liveness or startup crossed its failure threshold: the container must be killed."""
        return self.spec.kind in ("liveness", "startup") and self.failures >= self.spec.failure_threshold


def should_probe(kind: ProbeKind, running: bool, started: bool) -> bool:
    """Readiness and liveness wait for the startup probe; nothing runs against a dead container."""
    if not running:
        return False
    if kind == "startup":
        return not started
    return started


def resolve_port(port: Any, container: dict[str, Any]) -> int:
    """A probe port is a number or the name of one of the container's ports."""
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise ValueError(f"port {port!r} is not a number nor a named port of container {container.get('name')!r}")
