"""Bounded polling for every suite: deadlines only, never timing assertions."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    fn: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.5,
    retry_on: tuple[type[BaseException], ...] = (AssertionError,),
) -> T:
    """Call ``fn`` until it returns something truthy; ``retry_on`` exceptions mean "not yet".

    After ``timeout`` seconds, fail naming ``what`` and the last value or error.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except retry_on as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r:.300})")
        time.sleep(interval)
