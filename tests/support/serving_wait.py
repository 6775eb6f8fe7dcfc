"""Bounded polling for the serving e2e tests (no timing assertions, only deadlines)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T], timeout: float = 60.0, interval: float = 0.3, what: str = "condition"
) -> T:
    """Call ``probe`` until it returns something truthy (exceptions: not yet); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g}s; last: {last!r}")
        time.sleep(interval)
