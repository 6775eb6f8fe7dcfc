"""Run a label promotion (or rollback) against a fleet, verified on every replica.

Each planned step is persisted first (so a server restarted at any moment reads a
safe config), pushed to every replica with HandleReloadConfigRequest, then
waited for until every replica shows it: versions by GetModelStatus, labels by
GetModelMetadata by label (TF Serving's GetModelStatus ignores labels). Each
label moves in its own revision after its version is AVAILABLE everywhere: TF
Serving assigns a config's labels before it loads the config's versions. A replica that has
not caught up gets the revision again every ``REPUSH_SECONDS`` (a server that
polls its config file may briefly re-apply an older file), and a step only counts
once it has held on every replica for the store's ``settle_seconds`` (one poll
period: a replica whose mounted file is still older would have reverted within
it), so the next step never starts while a file two revisions old can come back.
A step also waits until versions it retires are no longer loaded. If a step fails, the
inverse plan takes every replica back to the pre-promotion state and the error
names the step and what happened on which replica.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tfsctl.errors import (
    Conflict,
    InvalidInput,
    PromotionRejected,
    Timeout,
    ToolkitError,
    Unavailable,
    VersionNotAvailable,
)
from tfsctl.release import DEFAULT_TIMEOUT, history
from tfsctl.release.fleet import Desired, ReplicaObservation, evaluate_fleet
from tfsctl.release.history import PromotionRecord
from tfsctl.release.plan import ModelState, Plan, Step, plan_promotion, plan_restore, plan_transition
from tfsctl.release.replicas import FleetClient, Replica, apply_state, state_of
from tfsctl.release.store import ConfigStore, require_label, require_model
from tfsctl.serving.config import ServerConfig

log = logging.getLogger(__name__)

REPUSH_SECONDS = 3.0
POLL_SECONDS = 0.25
#: version states that mean "loaded or being loaded" (UNLOADING and END are on their way out)
LIVE_STATES = frozenset({"START", "LOADING", "AVAILABLE"})


@dataclass(frozen=True)
class PromotionRequest:
    model: str
    label: str
    version: int | None  # None: roll back to the version before the last promotion
    action: Literal["promote", "rollback"] = "promote"
    timeout: float = DEFAULT_TIMEOUT
    lock_timeout: float = 30.0
    allow_unavailable: bool = False
    keep_previous: bool = False
    create_label: bool = False
    dry_run: bool = False


@dataclass
class StepReport:
    name: str
    description: str
    seconds: float


@dataclass
class PromotionResult:
    model: str
    label: str
    action: str
    from_version: int | None
    to_version: int
    replicas: list[str]
    steps: list[StepReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    revision: int | None = None
    changed: bool = True
    dry_run: bool = False


class StepFailed(ToolkitError):
    """A step did not hold on some replicas; carries the per-replica reasons."""

    def __init__(self, step: Step, failures: Mapping[str, str], kind: type[ToolkitError]) -> None:
        self.step = step
        self.failures = dict(failures)
        self.kind = kind
        detail = "; ".join(f"{name}: {why}" for name, why in sorted(self.failures.items()))
        super().__init__(f"step {step.name} ({step.description}) failed: {detail}")


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Promoter:
    """Drives one promotion against ``store`` with ``fleet`` (both owned by the caller)."""

    def __init__(
        self,
        store: ConfigStore,
        fleet: FleetClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.sleep = sleep

    # ------------------------------------------------------------ entry point
    def run(self, request: PromotionRequest) -> PromotionResult:
        with self.store.lock(request.lock_timeout):
            return self._run_locked(request)

    def run_locked(self, request: PromotionRequest) -> PromotionResult:
        """``run`` for a caller that already holds ``store.lock`` (a canary's several moves)."""
        return self._run_locked(request)

    def converge(self, model: str, target: ModelState, timeout: float) -> list[StepReport]:
        """Take ``model`` from whatever the persisted config says now to ``target``, one verified
        step at a time (load before label, label before retire). The caller holds the lock.

        Used to undo from any point, even a step that was written but not verified (an
        interrupted promotion): the persisted config is the starting point, not a plan.
        """
        config = self.store.read()
        current = state_of(config.models[model])
        replicas = self._replicas_or_fail()
        observed = self.fleet.observe(replicas, {model: list(current.labels)})
        served_now = self._served_now(model, current, observed)
        served_target = target.policy.served(self.store.repository_versions(model))
        if served_target is None:
            served_target = served_now
        plan = plan_transition(model, current, target, served_now, served_target)
        deadline = self.clock() + timeout
        reports: list[StepReport] = []
        for step in plan.steps:
            started = self.clock()
            self._apply(config, model, step, deadline)
            reports.append(StepReport(step.name, step.description, self.clock() - started))
        return reports

    def _run_locked(self, req: PromotionRequest) -> PromotionResult:
        where = self.store.describe()
        config = self.store.read()
        require_model(config, req.model, where)
        current = state_of(config.models[req.model])
        version = req.version
        if req.action == "rollback":
            require_label(config, req.model, req.label, where)
            record = history.rollback_target(self.store.read_history(), req.model, req.label)
            assert record.from_version is not None
            version = record.from_version
        elif not req.create_label and req.label not in current.labels:
            require_label(config, req.model, req.label, where)
        if version is None:
            raise InvalidInput("VERSION is required")

        replicas = self._replicas_or_fail()
        observed = self.fleet.observe(replicas, {req.model: list(current.labels)})
        served_now = self._served_now(req.model, current, observed)
        repository = self.store.repository_versions(req.model)
        plan = plan_promotion(
            req.model,
            current,
            req.label,
            version,
            served_now,
            repository=repository,
            keep_previous=req.keep_previous,
            allow_unavailable=req.allow_unavailable,
        )
        result = PromotionResult(
            req.model,
            req.label,
            req.action,
            current.labels.get(req.label),
            version,
            [r.name for r in replicas],
            notes=list(plan.notes),
            changed=bool(plan.steps),
            dry_run=req.dry_run,
        )
        if req.dry_run:
            result.steps = [StepReport(s.name, s.description, 0.0) for s in plan.steps]
            return result
        if not plan.steps:
            return result
        down = [o for o in observed if o.error is not None]
        if down:
            raise Unavailable(f"replica {down[0].name} is unreachable: {down[0].error}")
        # Refuse to start on a fleet that already disagrees with its own config.
        disagreements = evaluate_fleet({req.model: Desired(current, served_now)}, observed)
        if disagreements:
            shown = "; ".join(str(d) for d in disagreements[:5])
            raise Conflict(f"{where}: replicas disagree with the config before promotion: {shown}")

        deadline = self.clock() + req.timeout
        reached: Step | None = None
        try:
            for step in plan.steps:
                started = self.clock()
                # Pods come and go (a killed replica, its replacement): report the last verified set.
                result.replicas = self._apply(config, req.model, step, deadline)
                reached = step
                result.steps.append(StepReport(step.name, step.description, self.clock() - started))
        except StepFailed as failed:
            restored = self._restore(config, plan, reached, failed.step, req.timeout)
            outcome = (
                "restored the pre-promotion state on every replica"
                if not restored
                else ("restore incomplete: " + "; ".join(f"{k}: {v}" for k, v in sorted(restored.items())))
            )
            error = failed.kind(
                f"{req.action} {req.model}@{req.label} -> {version} failed at {failed}; {outcome}"
            )
            error.failed_step = failed.step.name  # type: ignore[attr-defined]
            raise error from None
        result.revision = self.store.revision()
        self.store.append_history(
            PromotionRecord(
                req.model,
                req.label,
                result.from_version,
                version,
                req.action,
                _who(),
                _now(),
                result.revision,
                where,
            )
        )
        return result

    # ------------------------------------------------------------ steps
    def _replicas_or_fail(self) -> list[Replica]:
        replicas = [r for r in self.store.replicas() if r.ready]
        if not replicas:
            raise Unavailable(f"{self.store.describe()}: no ready replicas to promote on")
        return replicas

    def _served_now(
        self, model: str, current: ModelState, observed: list[ReplicaObservation]
    ) -> frozenset[int]:
        served = current.policy.served(self.store.repository_versions(model))
        if served is not None:
            return served
        unreachable = [o for o in observed if o.error is not None]
        if unreachable:
            raise Unavailable(f"{unreachable[0].name}: {unreachable[0].error}")
        sets = [o.models[model].available for o in observed if model in o.models]
        if not sets:
            raise Unavailable(f"no replica reports model {model}")
        return max(set(sets), key=sets.count)

    def _apply(self, base: ServerConfig, model: str, step: Step, deadline: float) -> list[str]:
        config = apply_state(base, model, step.state)
        pushed = self.store.write(config, f"{model}: {step.description}")
        return self._push_and_wait(pushed, model, step, deadline)

    def _push_and_wait(
        self,
        config: ServerConfig,
        model: str,
        step: Step,
        deadline: float,
        skip: dict[str, str] | None = None,
    ) -> list[str]:
        """Push ``config`` and wait for ``step`` on every replica; with ``skip``, unreachable
        replicas are recorded there and left out instead of failing the step (restore)."""
        replicas = self._replicas_or_fail()
        push = bool(getattr(self.store, "push_reload", True))
        errors = self.fleet.reload(replicas, config) if push else {}
        last_push = first_push = self.clock()
        if skip is not None:
            skip.update({n: f"unreachable: {e}" for n, e in errors.items() if isinstance(e, Unavailable)})
        self._check_unreachable(step, {n: e for n, e in errors.items() if skip is None or n not in skip})
        labels = list(step.verify_labels)
        settle = float(getattr(self.store, "settle_seconds", 0.0))
        holding: dict[str, float] = {}  # replica -> since when it has shown the step without a break
        while True:
            replicas = [r for r in self._replicas_or_fail() if skip is None or r.name not in skip]
            observed = self.fleet.observe(replicas, {model: labels})
            now = self.clock()
            pending: dict[str, str] = {}
            for obs in observed:
                why = self._unsatisfied(obs, model, step)
                if why:
                    pending[obs.name] = why
                    holding.pop(obs.name, None)
                else:
                    holding.setdefault(obs.name, now)
            if not pending:
                # A server polling a config file that has not caught up yet re-applies the older file
                # within one poll period; a step that held that long on every replica is in their files.
                unsettled = [o.name for o in observed if now - holding[o.name] < settle]
                if not unsettled:
                    return sorted(o.name for o in observed)
                self.sleep(POLL_SECONDS)
                continue
            failed = self._failed_loads(observed, model, step)
            if failed and now - first_push >= REPUSH_SECONDS:
                # END with an error status: the server gave up loading it (TF Serving after its
                # --max_num_load_retries: core/basic_manager.cc, the LoaderHarness error_callback
                # publishes kEnd with the load error). Seen a re-push period after the first push, it is not
                # the stale state of an earlier attempt: waiting for the deadline changes nothing.
                raise StepFailed(step, failed, VersionNotAvailable)
            unreachable = {n: w for n, w in pending.items() if w.startswith("unreachable")}
            if unreachable and skip is not None:
                skip.update(unreachable)
                continue
            if unreachable and self.store.strict:
                raise StepFailed(step, unreachable, Unavailable)
            if now >= deadline:
                raise StepFailed(step, pending, Timeout)
            if push and now - last_push >= REPUSH_SECONDS:
                lagging = [r for r in replicas if r.name in pending]
                log.info("re-pushing %s to %s", step.name, ", ".join(r.name for r in lagging))
                errors = self.fleet.reload(lagging, config)
                last_push = self.clock()
                self._check_unreachable(step, errors)
            self.sleep(POLL_SECONDS)

    def _check_unreachable(self, step: Step, errors: Mapping[str, ToolkitError | None]) -> None:
        rejected = {
            n: str(e)
            for n, e in errors.items()
            if e is not None and not isinstance(e, (Unavailable, Timeout))
        }
        if rejected:
            raise StepFailed(
                step, {n: f"rejected the config: {w}" for n, w in rejected.items()}, PromotionRejected
            )
        if self.store.strict:
            down = {n: f"unreachable: {e}" for n, e in errors.items() if isinstance(e, Unavailable)}
            if down:
                raise StepFailed(step, down, Unavailable)

    @staticmethod
    def _failed_loads(observed: list[ReplicaObservation], model: str, step: Step) -> dict[str, str]:
        """Replica -> why, for versions this step waits for that ended with a load error there."""
        out: dict[str, str] = {}
        for obs in observed:
            seen = obs.models.get(model)
            if seen is None:
                continue
            for v in sorted(step.wait_available):
                if seen.versions.get(v) == "END" and v in seen.load_errors:
                    out[obs.name] = f"version {v} failed to load: {seen.load_errors[v]}"
                    break
        return out

    @staticmethod
    def _unsatisfied(obs: ReplicaObservation, model: str, step: Step) -> str | None:
        if obs.error is not None:
            return f"unreachable: {obs.error}"
        seen = obs.models.get(model)
        if seen is None:
            return "model not loaded"
        for v in sorted(step.wait_available):
            state = seen.versions.get(v)
            if state != "AVAILABLE":
                return f"version {v} is {state or 'absent'} (want AVAILABLE; is it in the repository?)"
        for v, state in sorted(seen.versions.items()):
            if v not in step.served and state in LIVE_STATES:
                return f"version {v} is {state} but this step serves {sorted(step.served)} (older config?)"
        for label, v in step.verify_labels.items():
            got = seen.labels.get(label)
            if got != v:
                return f"label {label} resolves to {got if got is not None else 'nothing'}, want {v}"
        return None

    # ------------------------------------------------------------ restore
    def _restore(
        self, base: ServerConfig, plan: Plan, reached: Step | None, failed: Step, timeout: float
    ) -> dict[str, str]:
        """Take the fleet back to ``plan.before``; returns what could not be restored (empty: all)."""
        # The failed step was persisted and maybe partly applied: start from it.
        start_state, start_served = (
            failed.state,
            failed.served | (reached.served if reached else plan.served_before),
        )
        restore = plan_restore(plan.model, start_state, start_served, plan.before, plan.served_before)
        deadline = self.clock() + max(timeout, 30.0)
        problems: dict[str, str] = {}
        for step in restore.steps:
            config = apply_state(base, plan.model, step.state)
            self.store.write(config, f"{plan.model}: restore: {step.description}")
            try:
                self._push_and_wait(config, plan.model, step, deadline, skip=problems)
            except StepFailed as exc:
                problems.update(exc.failures)
                if exc.kind is PromotionRejected:
                    break
            except ToolkitError as exc:
                problems["fleet"] = str(exc)
        # Whatever happened on the replicas, the persisted config is the original one.
        final = apply_state(base, plan.model, plan.before)
        self.store.write(final, f"{plan.model}: restore pre-promotion config")
        return problems
