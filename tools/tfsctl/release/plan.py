"""Label promotion planning (pure).

TF Serving only lets a version label point at a version that is loaded, so
moving ``stable`` from version 1 to 2 is a sequence of config revisions with
waits between them - the procedure the TF Serving configuration guide gives:

1. ``load``:   serve the target version beside what is served now (labels unchanged);
2. wait until every replica reports the target AVAILABLE;
3. ``label``:  move the label, verify every replica resolves it to the target;
4. ``retire``: drop versions the new policy no longer keeps.

Every intermediate state is safe on its own: its labels only name versions that
the state before it already had loaded. ``plan_transition`` builds that sequence
between any two model states, so the same function plans a promotion, a
rollback and the restore of the pre-promotion state after a failure.

The planner works on ``ModelState`` (a version policy plus labels) and on the
*served set* - the concrete versions a policy loads. For ``specific`` the set is
in the policy; for ``latest``/``all`` it depends on the repository, so callers
pass it (observed from the replicas, or listed from the repository).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from tfsctl.errors import InvalidInput, NotFound, PromotionRejected
from tfsctl.serving.config import VersionPolicy

_LABEL_RE = re.compile(r"[a-zA-Z0-9_]+")


def validate_label_name(name: str) -> str:
    """Return ``name`` when it is a label name the toolkit manages, else raise InvalidInput.

    The rule is this project's, shared with the chart's ``validateValues``: the names
    promote and rollback write into the chart's values (``--set`` paths, pbtxt keys).
    TF Serving itself checks no label name (``ServerCore::UpdateModelVersionLabelMap``;
    tests/e2e/serving/FIDELITY.md, known differences), and neither does ``tfsctl serve``.
    """
    if not isinstance(name, str) or not _LABEL_RE.fullmatch(name):
        raise InvalidInput(
            f"version label {name!r}: must match [a-zA-Z0-9_]+, the names tfsctl promote and rollback"
            " manage (TF Serving itself accepts any name)"
        )
    return name


@dataclass(frozen=True)
class ModelState:
    """What a model's config says: its version policy and its labels."""

    policy: VersionPolicy
    labels: Mapping[str, int] = field(default_factory=dict)

    def with_labels(self, labels: Mapping[str, int]) -> ModelState:
        return ModelState(self.policy, dict(labels))

    def with_policy(self, policy: VersionPolicy) -> ModelState:
        return ModelState(policy, dict(self.labels))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelState):
            return NotImplemented
        return self.policy == other.policy and dict(self.labels) == dict(other.labels)

    def __hash__(self) -> int:
        return hash((self.policy, tuple(sorted(self.labels.items()))))


@dataclass(frozen=True)
class Step:
    """One config revision to push, and what must hold on every replica before the next."""

    name: Literal["load", "label", "retire", "load+label"]
    state: ModelState
    served: frozenset[int]
    wait_available: frozenset[int]
    verify_labels: Mapping[str, int]
    description: str

    def __hash__(self) -> int:
        return hash((self.name, self.state, self.served))


@dataclass(frozen=True)
class Plan:
    """Steps from ``before`` to ``after`` for one model; empty when nothing changes."""

    model: str
    before: ModelState
    after: ModelState
    served_before: frozenset[int]
    served_after: frozenset[int]
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()


def _versions(vs: Iterable[int]) -> str:
    return ", ".join(str(v) for v in sorted(vs)) or "none"


def _union_policy(before: ModelState, after: ModelState, served: frozenset[int]) -> VersionPolicy:
    if before.policy == after.policy:
        return before.policy
    return VersionPolicy.specific(*served)


def plan_transition(
    model: str,
    before: ModelState,
    after: ModelState,
    served_before: frozenset[int],
    served_after: frozenset[int],
    *,
    allow_unavailable: bool = False,
    notes: Iterable[str] = (),
) -> Plan:
    """Plan the safe sequence of config revisions that takes ``before`` to ``after``.

    ``served_*`` are the concrete versions each state loads. Every label of
    ``after`` must name a version of ``served_after``. With ``allow_unavailable``
    (the server runs with ``--allow_version_labels_for_unavailable_models``) the
    load and label steps are one revision, but only for labels that are *new*:
    ``ServerCore::UpdateModelVersionLabelMap`` assigns labels before the revision's
    versions load and refuses to move an existing label to a version that is not
    AVAILABLE yet, failing the whole reload. Moving one is refused here, before
    anything is written.
    """
    for label, version in after.labels.items():
        validate_label_name(label)
        if version not in served_after:
            raise PromotionRejected(
                f"{model}: label {label} -> {version} but the target policy {after.policy.describe()} "
                f"serves {_versions(served_after)}"
            )
    steps: list[Step] = []
    union = served_before | served_after
    union_policy = _union_policy(before, after, union)
    # Versions the labels will need that are not loaded yet, plus the rest of the target set.
    to_load = (served_after | frozenset(after.labels.values())) - served_before
    moved_existing = sorted(
        f"{k} (-> {before.labels[k]})"
        for k, v in after.labels.items()
        if k in before.labels and before.labels[k] != v
    )
    if allow_unavailable and to_load and moved_existing:
        raise PromotionRejected(
            f"{model}: --allow-unavailable only applies to a new label, and {', '.join(moved_existing)} "
            "already exists: TF Serving refuses to move an existing label to a version that is not "
            "loaded yet; promote without --allow-unavailable (load, wait, then move the label)"
        )
    if to_load:
        if allow_unavailable:
            state = ModelState(union_policy, dict(after.labels))
            steps.append(
                Step(
                    "load+label",
                    state,
                    union,
                    to_load,
                    dict(after.labels),
                    f"load {_versions(to_load)} and add the new label(s) in one revision (new labels on "
                    "unavailable versions allowed)",
                )
            )
        else:
            state = ModelState(union_policy, dict(before.labels))
            steps.append(
                Step(
                    "load",
                    state,
                    union,
                    to_load,
                    dict(before.labels),
                    f"load version(s) {_versions(to_load)}",
                )
            )
    current = steps[-1].state if steps else before
    if dict(current.labels) != dict(after.labels):
        state = ModelState(current.policy if steps else union_policy, dict(after.labels))
        moved = {k: v for k, v in after.labels.items() if before.labels.get(k) != v}
        removed = sorted(set(before.labels) - set(after.labels))
        what = ", ".join(f"{k} -> {v}" for k, v in sorted(moved.items()))
        if removed:
            what = (what + "; " if what else "") + "drop " + ", ".join(removed)
        steps.append(Step("label", state, union, frozenset(), dict(after.labels), f"move label(s) {what}"))
        current = state
    if current != after:
        retired = union - served_after
        desc = (
            f"retire version(s) {_versions(retired)}" if retired else f"set policy {after.policy.describe()}"
        )
        steps.append(Step("retire", after, served_after, frozenset(), dict(after.labels), desc))
    return Plan(model, before, after, served_before, served_after, tuple(steps), tuple(notes))


def promotion_target(
    model: str,
    current: ModelState,
    label: str,
    version: int,
    served_now: frozenset[int],
    *,
    repository: Iterable[int] | None = None,
    keep_previous: bool = False,
) -> tuple[ModelState, frozenset[int], list[str]]:
    """The state after moving ``label`` to ``version``, its served set and notes for the user.

    The previous version of the label is retired when no other label names it,
    unless ``keep_previous`` (faster rollback at the cost of memory). Under
    ``latest``/``all`` a version outside what the policy serves cannot carry a
    label, so the policy becomes ``specific`` (said in the notes).
    """
    validate_label_name(label)
    if version < 0:
        raise InvalidInput(f"version must be a non-negative integer, got {version}")
    repo = frozenset(repository) if repository is not None else None
    if repo is not None and version not in repo:
        raise NotFound(f"{model}: version {version} is not in the model repository (has {_versions(repo)})")
    notes: list[str] = []
    labels = dict(current.labels)
    previous = labels.get(label)
    labels[label] = version
    still_named = set(labels.values())
    policy = current.policy
    if policy.kind == "specific":
        keep = set(policy.versions) | {version}
        if previous is not None and previous != version and not keep_previous and previous not in still_named:
            keep.discard(previous)
        policy = VersionPolicy.specific(*keep)
        served = frozenset(policy.versions)
    else:
        served_by_policy = policy.served(repo) if repo is not None else served_now
        assert served_by_policy is not None
        if version in served_by_policy:
            served = served_by_policy
        else:
            keep = set(served_by_policy) | {version}
            if previous is not None and not keep_previous and previous not in still_named:
                keep.discard(previous)
            policy = VersionPolicy.specific(*keep)
            served = frozenset(keep)
            notes.append(
                f"{model}: version {version} is outside what policy {current.policy.describe()} serves "
                f"({_versions(served_by_policy)}); the policy becomes {policy.describe()}"
            )
    return ModelState(policy, labels), served, notes


def plan_promotion(
    model: str,
    current: ModelState,
    label: str,
    version: int,
    served_now: frozenset[int],
    *,
    repository: Iterable[int] | None = None,
    keep_previous: bool = False,
    allow_unavailable: bool = False,
) -> Plan:
    """Plan moving ``label`` of ``model`` to ``version`` (see module docstring)."""
    after, served_after, notes = promotion_target(
        model, current, label, version, served_now, repository=repository, keep_previous=keep_previous
    )
    return plan_transition(
        model, current, after, served_now, served_after, allow_unavailable=allow_unavailable, notes=notes
    )


def plan_restore(
    model: str,
    reached: ModelState,
    served_reached: frozenset[int],
    original: ModelState,
    served_original: frozenset[int],
) -> Plan:
    """The inverse: from whatever step was reached back to the pre-promotion state, safely."""
    return plan_transition(model, reached, original, served_reached, served_original)
