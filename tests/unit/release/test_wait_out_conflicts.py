"""``ops.wait_out_conflicts``: a release held by another operation is waited for, within a bound."""

from __future__ import annotations

import pytest

from tfsctl.errors import Conflict, NotFound
from tfsctl.release import ops


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _pending_for(calls: int) -> tuple[list[int], object]:
    seen: list[int] = []

    def build() -> str:
        seen.append(1)
        if len(seen) <= calls:
            raise Conflict("release tfs/tfs is pending-install (revision 1)")
        return "store"

    return seen, build


def test_a_pending_release_is_waited_for_until_it_is_deployed() -> None:
    clock = Clock()
    seen, build = _pending_for(3)
    assert ops.wait_out_conflicts(build, 60, clock, clock.sleep) == "store"  # type: ignore[arg-type]
    assert len(seen) == 4 and clock.slept == [2.0, 2.0, 2.0]


def test_the_wait_is_bounded_and_ends_with_the_conflict() -> None:
    clock = Clock()
    seen, build = _pending_for(100)
    with pytest.raises(Conflict, match="pending-install"):
        ops.wait_out_conflicts(build, 5, clock, clock.sleep)  # type: ignore[arg-type]
    assert clock.now == pytest.approx(5.0) and len(seen) == 4  # at 0, 2, 4 and 5 s


def test_no_wait_fails_at_once_and_other_errors_are_not_retried() -> None:
    clock = Clock()
    seen, build = _pending_for(1)
    with pytest.raises(Conflict):
        ops.wait_out_conflicts(build, 0, clock, clock.sleep)  # type: ignore[arg-type]
    assert clock.slept == []

    def missing() -> str:
        seen.append(1)
        raise NotFound("release tfs/tfs not found")

    with pytest.raises(NotFound):
        ops.wait_out_conflicts(missing, 60, clock, clock.sleep)
    assert clock.slept == []
