"""Scale decisions (pure): who owns the replica count, and what values change.

Scaling goes through the release's values (``replicaCount`` or the HPA bounds),
never by patching the Deployment, so the next ``helm upgrade`` does not undo it
and the Helm history records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tfsctl.errors import Conflict, InvalidInput

MAX_REPLICAS = 1000


@dataclass(frozen=True)
class Autoscaler:
    """The HorizontalPodAutoscaler that owns a Deployment's replica count."""

    name: str
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class ScaleChange:
    """Values to merge into the release and a one-line summary of the change."""

    values: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


def plan_scale(
    replicas: int, *, current: int | None, autoscaler: Autoscaler | None, adjust_hpa: bool
) -> ScaleChange:
    """Decide how to reach ``replicas``; refuse when an HPA owns the count and ``adjust_hpa`` is off."""
    if replicas < 0 or replicas > MAX_REPLICAS:
        raise InvalidInput(f"--replicas must be between 0 and {MAX_REPLICAS}, got {replicas}")
    if autoscaler is None:
        before = "?" if current is None else str(current)
        return ScaleChange({"replicaCount": replicas}, f"replicaCount {before} -> {replicas}")
    if not adjust_hpa:
        raise Conflict(
            f"HorizontalPodAutoscaler {autoscaler.name} owns the replica count "
            f"(min {autoscaler.min_replicas}, max {autoscaler.max_replicas}); "
            f"pass --adjust-hpa to set its minReplicas to {replicas} instead"
        )
    if replicas < 1:
        raise InvalidInput(f"--replicas {replicas} with --adjust-hpa: an HPA needs at least 1 replica")
    new_max = max(autoscaler.max_replicas, replicas)
    summary = (
        f"HPA {autoscaler.name}: minReplicas {autoscaler.min_replicas} -> {replicas}, "
        f"maxReplicas {autoscaler.max_replicas} -> {new_max}"
    )
    return ScaleChange({"autoscaling": {"minReplicas": replicas, "maxReplicas": new_max}}, summary)
