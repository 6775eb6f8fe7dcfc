"""Fleet consistency (pure): which replicas disagree with the desired model config.

Observations come from every replica: GetModelStatus for the versions' states,
GetModelMetadata by label for what each label resolves to (the real server's
GetModelStatus ignores labels); the desired side is the persisted config. ``status`` shows the
disagreements, ``promote`` refuses to start on a fleet that already disagrees.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tfsctl.release.plan import ModelState

AVAILABLE = "AVAILABLE"


@dataclass(frozen=True)
class ModelObservation:
    """One model on one replica: version -> state, label -> resolved version (None: unresolved)."""

    versions: Mapping[int, str] = field(default_factory=dict)
    labels: Mapping[str, int | None] = field(default_factory=dict)
    error: str | None = None
    #: version -> "CODE: message" for versions in END with an error status (a failed load)
    load_errors: Mapping[int, str] = field(default_factory=dict)

    @property
    def available(self) -> frozenset[int]:
        return frozenset(v for v, s in self.versions.items() if s == AVAILABLE)


@dataclass(frozen=True)
class ReplicaObservation:
    """What one replica (pod or endpoint) reports."""

    name: str
    address: str
    ready: bool = True
    node: str | None = None
    models: Mapping[str, ModelObservation] = field(default_factory=dict)
    error: str | None = None
    phase: str = ""  # Kubernetes mode: the pod's phase (or Terminating)
    age_seconds: float | None = None

    @property
    def starting(self) -> bool:
        """A pod on its way up (or down): not Ready yet, and not failed. Not judged against the config."""
        return not self.ready and self.phase not in ("Failed", "Succeeded")

    def describe_state(self) -> str:
        """``starting (Pending, not ready, 12s)``: what a starting pod is doing, for status."""
        what = "terminating" if self.phase == "Terminating" else "starting"
        age = "" if self.age_seconds is None else f", {_age(self.age_seconds)}"
        return f"{what} ({self.phase or 'unknown phase'}, not ready{age})"


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


@dataclass(frozen=True)
class Desired:
    """The desired state of one model: its config state and served set (None if not knowable)."""

    state: ModelState
    served: frozenset[int] | None


@dataclass(frozen=True)
class Disagreement:
    replica: str
    model: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.replica}" + (f" {self.model}" if self.model else "")
        return f"{where}: {self.message}"


def _vs(versions: frozenset[int]) -> str:
    return ", ".join(map(str, sorted(versions))) or "none"


def evaluate_fleet(
    desired: Mapping[str, Desired], replicas: Sequence[ReplicaObservation]
) -> list[Disagreement]:
    """Every way each replica differs from ``desired``; empty when the fleet is consistent.

    Starting pods (not Ready, not failed) are not judged: they are converging, and ``status``
    shows them as starting. A pod whose phase is Failed or Succeeded disagrees.
    """
    out: list[Disagreement] = []
    judged = [r for r in replicas if not r.starting]
    # Where the served set is not knowable from the config (latest/all), the majority decides.
    majority: dict[str, frozenset[int]] = {}
    for model, want in desired.items():
        if want.served is None:
            sets = Counter(r.models[model].available for r in judged if r.error is None and model in r.models)
            if sets:
                majority[model] = sets.most_common(1)[0][0]
    for replica in judged:
        if not replica.ready:
            out.append(Disagreement(replica.name, None, f"pod {replica.phase}, not ready"))
            continue
        if replica.error is not None:
            out.append(Disagreement(replica.name, None, f"unreachable: {replica.error}"))
            continue
        for model, want in desired.items():
            seen = replica.models.get(model)
            if seen is None or (seen.error is not None and not seen.versions):
                reason = seen.error if seen is not None and seen.error else "model not loaded"
                out.append(Disagreement(replica.name, model, reason))
                continue
            served = want.served if want.served is not None else majority.get(model)
            if served is not None:
                missing = served - seen.available
                extra = seen.available - served
                for v in sorted(missing):
                    state = seen.versions.get(v, "absent")
                    out.append(Disagreement(replica.name, model, f"version {v} is {state}, want {AVAILABLE}"))
                if extra:
                    out.append(
                        Disagreement(
                            replica.name, model, f"serves version(s) {_vs(extra)} the config retires"
                        )
                    )
            for label, version in sorted(want.state.labels.items()):
                got = seen.labels.get(label)
                if got != version:
                    shown = "unresolved" if got is None else str(got)
                    out.append(Disagreement(replica.name, model, f"label {label} -> {shown}, want {version}"))
    return out
