"""The canary flow over the release operations, under the release's lock (the one promote takes).

1. **canary**: load VERSION and point the canary label at it on every replica
   (``Promoter``: load, wait AVAILABLE everywhere, move the label, verify by label).
2. **analyse** for the bake window: paired requests per replica (``shadow``), the fleet's
   version states every ``intervalSeconds`` (health: a lost replica or a version that
   leaves AVAILABLE ends the bake early), and, with ``prometheus.url``, live traffic.
3. **decide**: every check held -> promote the stable label to VERSION (two-phase,
   verified; the old stable is retired unless ``keepPrevious``); otherwise move the canary
   label back (to the version it named before, or to stable if it did not exist) and
   retire VERSION.

Each label move is a history record, like promote and rollback. A failed check, a lost
replica, a timeout or Ctrl-C leaves stable where it was: the undo starts from whatever the
persisted config says (even a step that was written but not verified) and converges to
the pre-canary state with the canary label moved back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tfsctl.canary import judge as J
from tfsctl.canary.prometheus import PrometheusClient
from tfsctl.canary.shadow import WARMUP_FILE, RateLimiter, Shadow, build_payloads
from tfsctl.canary.spec import CanarySpec
from tfsctl.errors import InvalidInput, NotFound, ToolkitError, Unavailable
from tfsctl.release.history import PromotionRecord
from tfsctl.release.plan import ModelState
from tfsctl.release.promote import Promoter, PromotionRequest, _now, _who
from tfsctl.release.replicas import FleetClient, Replica, state_of
from tfsctl.release.store import ConfigStore, require_model

log = logging.getLogger(__name__)

Decision = Literal["promoted", "reverted"]


@dataclass(frozen=True)
class CanaryRequest:
    model: str
    version: int
    spec: CanarySpec
    timeout: float = 300.0  # each label move (the load has spec.load_timeout)
    lock_timeout: float = 30.0


@dataclass
class Phase:
    name: str  # canary | analyse | promote | revert
    description: str
    seconds: float
    steps: list[str] = field(default_factory=list)


@dataclass
class CanaryResult:
    model: str
    version: int
    target: str
    stable_before: int
    canary_before: int | None
    decision: Decision = "reverted"
    reason: str = ""
    verdict: J.Verdict | None = None
    phases: list[Phase] = field(default_factory=list)
    replicas: list[str] = field(default_factory=list)
    pairs: list[J.Pair] = field(default_factory=list)
    health: list[J.HealthSample] = field(default_factory=list)
    live: tuple[J.LiveStats, J.LiveStats] | None = None
    inputs: str = ""
    requests_sent: int = 0
    bake_seconds: float = 0.0
    stable_after: int | None = None
    canary_after: int | None = None
    spec: CanarySpec | None = None

    @property
    def promoted(self) -> bool:
        return self.decision == "promoted"

    @property
    def request_rate(self) -> float:
        return self.requests_sent / self.bake_seconds if self.bake_seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        stats = J.compare_outputs(self.pairs, self.spec.outputs) if self.spec and self.pairs else None

        def lat(label: str) -> dict[str, Any]:
            values = J.latencies(self.pairs, label)
            return {
                "count": len(values),
                "p50_ms": None if not values else round(J.percentile(values, 50) * 1000, 3),  # type: ignore[operator]
                "p99_ms": None if not values else round(J.percentile(values, 99) * 1000, 3),  # type: ignore[operator]
                "error_rate": J.error_rate(self.pairs, label),
                "seconds": [round(v, 6) for v in values],
            }

        return {
            "model": self.model,
            "version": self.version,
            "target": self.target,
            "decision": self.decision,
            "promoted": self.promoted,
            "reason": self.reason,
            "stable": {"before": self.stable_before, "after": self.stable_after},
            "canary": {"before": self.canary_before, "after": self.canary_after},
            "checks": [c.to_json() for c in (self.verdict.checks if self.verdict else ())],
            "failed_checks": [c.name for c in (self.verdict.failed if self.verdict else ())],
            "phases": [p.__dict__ for p in self.phases],
            "replicas": self.replicas,
            "inputs": self.inputs,
            "requests_sent": self.requests_sent,
            "bake_seconds": round(self.bake_seconds, 3),
            "request_rate": round(self.request_rate, 3),
            "outputs": None
            if stats is None
            else {
                "compared": stats.compared,
                "max_abs_diff": stats.max_abs,
                "max_rel_diff": stats.max_rel,
                "differing_share": stats.differing_share,
                "top_k_agreement": stats.top_k_agreement,
                "per_input_max_abs_diff": list(stats.per_input_max_abs),
            },
            "latency": {"stable": lat("stable"), "canary": lat("canary")},
            "health_samples": len(self.health),
            "live": None
            if self.live is None
            else {
                "before": self.live[0].__dict__,
                "during": self.live[1].__dict__,
            },
            "spec": self.spec.to_json() if self.spec else None,
        }


class CanaryRunner:
    """Drives one canary against ``store`` with ``fleet`` (both owned by the caller)."""

    def __init__(
        self,
        store: ConfigStore,
        fleet: FleetClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
        prometheus: Callable[[str, float], PrometheusClient] = PrometheusClient,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.sleep = sleep
        self.wall = wall
        self.prometheus = prometheus
        self.promoter = Promoter(store, fleet, clock=clock, sleep=sleep)

    def run(self, req: CanaryRequest) -> CanaryResult:
        with self.store.lock(req.lock_timeout):
            return self._run_locked(req)

    # ------------------------------------------------------------ flow
    def _run_locked(self, req: CanaryRequest) -> CanaryResult:
        spec = req.spec
        where = self.store.describe()
        config = self.store.read()
        require_model(config, req.model, where)
        before = state_of(config.models[req.model])
        stable = before.labels.get(spec.stable_label)
        if stable is None:
            raise NotFound(
                f"{where}: model {req.model} has no {spec.stable_label!r} label to compare against "
                f"(promote one first: tfsctl promote {req.model} {spec.stable_label} VERSION --create-label)"
            )
        if req.version == stable:
            raise InvalidInput(f"{req.model}: version {req.version} is already {spec.stable_label}")
        canary_before = before.labels.get(spec.label)
        back_to = canary_before if canary_before not in (None, req.version) else stable
        assert back_to is not None
        result = CanaryResult(req.model, req.version, where, stable, canary_before, spec=spec)
        moved = False
        try:
            # 1. load VERSION and point the canary label at it
            started = self.clock()
            try:
                moved_to = self.promoter.run_locked(
                    PromotionRequest(
                        req.model,
                        spec.label,
                        req.version,
                        "promote",
                        timeout=spec.load_timeout,
                        lock_timeout=req.lock_timeout,
                        create_label=True,
                    )
                )
            except ToolkitError as exc:
                if getattr(exc, "failed_step", None) is None:
                    raise  # refused before anything changed (no such version, a fleet that disagrees)
                # The promoter put every replica back; nothing moved.
                result.phases.append(Phase("canary", f"load {req.version} failed", self.clock() - started))
                check = J.Check("load", False, None, None, "", str(exc))
                result.verdict = J.Verdict(False, (check,))
                result.reason = f"check load failed: {exc}"
                self._settle(result, req.model, spec)
                return result
            moved = True
            result.replicas = list(moved_to.replicas)
            result.phases.append(
                Phase(
                    "canary",
                    f"{spec.label} {canary_before} -> {req.version}",
                    self.clock() - started,
                    [f"{s.name}: {s.description}" for s in moved_to.steps],
                )
            )
            # 2. analyse
            started = self.clock()
            result.verdict = self._analyse(req, stable, result)
            result.phases.append(
                Phase("analyse", f"{len(result.pairs)} paired input(s)", self.clock() - started)
            )
            # 3. decide
            if result.verdict.passed:
                started = self.clock()
                try:
                    promoted = self.promoter.run_locked(
                        PromotionRequest(
                            req.model,
                            spec.stable_label,
                            req.version,
                            "promote",
                            timeout=req.timeout,
                            lock_timeout=req.lock_timeout,
                            keep_previous=spec.keep_previous,
                        )
                    )
                except ToolkitError as exc:
                    if getattr(exc, "failed_step", None) is None:
                        raise
                    check = J.Check("promote", False, None, None, "", str(exc))
                    result.verdict = J.Verdict(False, (*result.verdict.checks, check))
                else:
                    result.decision = "promoted"
                    result.reason = result.verdict.summary()
                    result.phases.append(
                        Phase(
                            "promote",
                            f"{spec.stable_label} {stable} -> {req.version}",
                            self.clock() - started,
                            [f"{s.name}: {s.description}" for s in promoted.steps],
                        )
                    )
                    self._settle(result, req.model, spec)
                    return result
            result.reason = "check " + result.verdict.summary()
            self._revert(req, before, back_to, result)
            moved = False
            self._settle(result, req.model, spec)
            return result
        except (KeyboardInterrupt, ToolkitError) as exc:
            # Interrupted, timed out or a replica vanished mid-move: never leave a half-moved label.
            if not moved and self._state(req.model) == before:
                raise  # nothing was changed: nothing to undo
            log.warning("canary %s %s stopped (%s): moving %s back", req.model, req.version, exc, spec.label)
            try:
                self._revert(req, before, back_to, result, record=moved)
            except ToolkitError as undo:
                raise type(undo)(
                    f"canary {req.model} {req.version} stopped ({exc or type(exc).__name__}) and the undo "
                    f"failed: {undo}; `tfsctl status` shows the fleet, `tfsctl rollback {req.model} "
                    f"{spec.label}` retries"
                ) from None
            raise

    def _state(self, model: str) -> ModelState:
        return state_of(self.store.read().models[model])

    def _settle(self, result: CanaryResult, model: str, spec: CanarySpec) -> None:
        labels = self._state(model).labels
        result.stable_after = labels.get(spec.stable_label)
        result.canary_after = labels.get(spec.label)

    def _revert(
        self,
        req: CanaryRequest,
        before: ModelState,
        back_to: int,
        result: CanaryResult,
        record: bool = True,
    ) -> None:
        """The pre-canary state with the canary label on ``back_to`` (``record``: the canary label
        had moved) or exactly the pre-canary state (it had not); VERSION retired either way."""
        spec = req.spec
        target = before.with_labels({**before.labels, spec.label: back_to}) if record else before
        started = self.clock()
        steps = self.promoter.converge(req.model, target, max(req.timeout, 30.0))
        result.decision = "reverted"
        result.phases.append(
            Phase(
                "revert",
                f"{spec.label} {req.version} -> {back_to}, retire {req.version}",
                self.clock() - started,
                [f"{s.name}: {s.description}" for s in steps],
            )
        )
        if record:
            self.store.append_history(
                PromotionRecord(
                    req.model,
                    spec.label,
                    req.version,
                    back_to,
                    "rollback",
                    _who(),
                    _now(),
                    self.store.revision(),
                    self.store.describe(),
                )
            )

    # ------------------------------------------------------------ analysis
    def _live_replicas(self) -> list[Replica]:
        return [r for r in self.store.replicas() if r.ready]

    def _health(self, model: str, expected: list[str]) -> tuple[J.HealthSample, dict[str, Replica]]:
        replicas = {r.name: r for r in self._live_replicas()}
        observed = self.fleet.observe([replicas[n] for n in expected if n in replicas], {model: []})
        versions: dict[str, dict[int, str]] = {}
        errors: dict[str, str] = {}
        for obs in observed:
            if obs.error is not None:
                errors[obs.name] = obs.error
            elif model in obs.models:
                versions[obs.name] = dict(obs.models[model].versions)
            else:
                versions[obs.name] = {}
        return J.HealthSample(self.clock(), versions, errors), replicas

    def _warmup_path(self, model: str, version: int) -> Path | None:
        base = self.store.read().models[model].base_path
        path = Path(base) / str(version) / WARMUP_FILE
        return path if path.is_file() else None

    def _analyse(self, req: CanaryRequest, stable: int, result: CanaryResult) -> J.Verdict:
        spec = req.spec
        model = req.model
        expected = list(result.replicas)
        versions = [stable, req.version]
        first = self._live_replicas()
        if not first:
            raise Unavailable(f"{self.store.describe()}: no ready replicas to analyse on")

        def metadata() -> dict[str, Any]:
            client = self.fleet.client(first[0].endpoint)
            return client.metadata(model, label=spec.stable_label, transport="rest")

        payloads, result.inputs = build_payloads(spec.inputs, metadata, self._warmup_path(model, stable))
        limiter = RateLimiter(spec.max_request_rate, clock=self.clock, sleep=self.sleep)
        shadow = Shadow(self.fleet, model, spec.stable_label, spec.label, payloads, limiter)
        wall_start = self.wall()
        start = self.clock()
        end = start + spec.bake_seconds
        next_health = start
        replicas: dict[str, Replica] = {}
        turn = 0
        swept = 0  # pairs sent; one full sweep (every input on every replica) happens at least
        needed = len(expected) * len(payloads)
        health_failed = False
        while True:
            now = self.clock()
            if now >= next_health:
                sample, replicas = self._health(model, expected)
                result.health.append(sample)
                next_health = now + spec.interval_seconds
                if spec.health_required and not J.health_check([sample], expected, versions).passed:
                    health_failed = True
                    break
            if now >= end and swept >= needed:
                break
            alive = [replicas[n] for n in expected if n in replicas]
            if not alive:
                self.sleep(min(0.2, spec.interval_seconds))
                continue
            replica = alive[turn % len(alive)]
            index = (turn // len(alive)) % len(payloads)
            turn += 1
            result.pairs.append(shadow.pair(replica, index))
            swept += 1
        result.bake_seconds = self.clock() - start
        result.requests_sent = shadow.sent
        if not health_failed:
            sample, _ = self._health(model, expected)
            result.health.append(sample)
        extra: list[J.Check] = []
        if spec.prometheus.url:
            try:
                prom = self.prometheus(spec.prometheus.url, spec.prometheus.timeout)
                window = max(result.bake_seconds, 1.0)
                before = prom.window(model, wall_start, window, spec.prometheus.selector)
                during = prom.window(model, self.wall(), window, spec.prometheus.selector)
                result.live = (before, during)
            except Unavailable as exc:
                extra.append(J.Check("prometheus", False, None, None, "", str(exc)))
        return J.judge(spec, result.pairs, result.health, expected, versions, result.live, extra)


def canary(target: Any, req: CanaryRequest) -> CanaryResult:
    """``tfsctl canary``: one canary on ``target`` (a ``tfsctl.release.ops.Target``)."""
    from tfsctl.release.ops import open_store, replica_count_check, wait_converged

    # The chart's Job is created by the helm operation it then upgrades: with --wait that release
    # stays pending (under the deploying tfsctl's Lease) until the pods are ready; wait as for the lock.
    with (
        open_store(target, wait=req.lock_timeout) as store,
        FleetClient(timeout=min(30.0, target.timeout)) as fleet,
    ):
        # Started right after a rollout (the chart's Job is), pods may still be coming up: a fleet
        # that disagrees with its config would refuse the first move, and one whose pods are not yet
        # the Service's endpoints has no replica to move.
        kube, full = getattr(store, "kube", None), getattr(store, "full", None)
        check = replica_count_check(kube, full) if kube is not None and full else None
        wait_converged(store, fleet, time.monotonic() + target.timeout, check)
        return CanaryRunner(store, fleet).run(req)
