"""Promotion history records (pure): who moved which label from what to what, and when.

Records are kept newest last, serialised as JSON (a ConfigMap key in Kubernetes
mode, a file beside the model config in endpoint mode). ``rollback_target``
treats them as a stack per (model, label): a promotion pushes, a rollback pops,
so repeated rollbacks walk back through the promotions instead of flip-flopping.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tfsctl.errors import InvalidInput, NotFound

MAX_RECORDS = 200
Action = Literal["promote", "rollback"]


@dataclass(frozen=True)
class PromotionRecord:
    """One completed label move."""

    model: str
    label: str
    from_version: int | None
    to_version: int
    action: Action
    who: str
    when: str  # ISO 8601, UTC
    revision: int | None = None  # the Helm revision that carries the final config (Kubernetes mode)
    target: str = ""  # release/namespace or model config file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PromotionRecord:
        try:
            return PromotionRecord(
                model=str(data["model"]),
                label=str(data["label"]),
                from_version=None if data.get("from_version") is None else int(data["from_version"]),
                to_version=int(data["to_version"]),
                action=data.get("action", "promote"),
                who=str(data.get("who", "")),
                when=str(data.get("when", "")),
                revision=None if data.get("revision") is None else int(data["revision"]),
                target=str(data.get("target", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"history record is malformed ({exc}): {data!r}") from None


def dumps(records: Sequence[PromotionRecord]) -> str:
    return json.dumps([r.to_dict() for r in records[-MAX_RECORDS:]], indent=1)


def loads(text: str | None) -> list[PromotionRecord]:
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"promotion history is not valid JSON: {exc.msg}") from None
    if not isinstance(data, list):
        raise InvalidInput("promotion history must be a JSON list")
    return [PromotionRecord.from_dict(d) for d in data]


def append(records: Iterable[PromotionRecord], record: PromotionRecord) -> list[PromotionRecord]:
    return [*records, record][-MAX_RECORDS:]


def rollback_target(records: Sequence[PromotionRecord], model: str, label: str) -> PromotionRecord:
    """The promotion a rollback of (model, label) undoes; NotFound when there is none."""
    stack: list[PromotionRecord] = []
    for r in records:
        if r.model != model or r.label != label:
            continue
        if r.action == "promote":
            stack.append(r)
        elif stack:
            stack.pop()
    while stack and stack[-1].from_version is None:
        stack.pop()  # a label created by a promotion has nothing to go back to
    if not stack:
        raise NotFound(f"no promotion of {model}@{label} recorded: nothing to roll back")
    return stack[-1]
