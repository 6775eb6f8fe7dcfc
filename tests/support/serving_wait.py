"""Bounded polling for the serving e2e tests (no timing assertions, only deadlines)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from support import polling

T = TypeVar("T")


def eventually(
    probe: Callable[[], T], timeout: float = 60.0, interval: float = 0.3, what: str = "condition"
) -> T:
    """Call ``probe`` until it returns something truthy (any exception: not yet); fail after ``timeout``."""
    return polling.wait_for(probe, timeout, what, interval, retry_on=(Exception,))
