"""Load shapes as tables of stages (pure: no Locust import, no clock).

A shape answers ``tick(run_time)`` with ``(users, spawn_rate)`` or ``None``
when the test is over, exactly what ``locust.LoadTestShape.tick`` returns, and
lists its ``phases()`` so reports can mark them on the plot. The locustfile's
``SelectedShape`` (a ``LoadTestShape``) delegates to the shape named by
``--shape``; ``tfsctl loadtest`` and ``verify-autoscaling`` build the same one.

Shapes and their parameters (``--shape-params k=v,k=v``; ``users``,
``duration`` and ``spawn_rate`` come from the common options):

- ``constant``: ``users`` for ``duration`` seconds.
- ``step``: ``steps`` equal steps (default 4) up to ``users``; each step lasts
  ``duration / steps``.
- ``spike``: ``users`` as the base load; ``spike_users`` (default 4x base)
  from ``spike_at`` (default 30 % of ``duration``) for ``spike_for`` seconds
  (default 20 % of ``duration``), then back to the base.
- ``soak``: a linear ramp to ``users`` over ``ramp`` seconds (default 10 % of
  ``duration``, at most 60), then ``users`` held until ``duration``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tfsctl.errors import InvalidInput

SHAPES = ("constant", "step", "spike", "soak")


@dataclass(frozen=True)
class Stage:
    """``users`` (reached at ``spawn_rate`` users/s) held until ``end`` seconds into the run."""

    name: str
    end: float
    users: int
    spawn_rate: float


@dataclass(frozen=True)
class Phase:
    """A named interval of the run, for reports: ``[start, end)`` seconds, target ``users``."""

    name: str
    start: float
    end: float
    users: int


@dataclass(frozen=True)
class Shape:
    """A load shape: consecutive stages; ``duration`` is ``None`` for an open-ended run."""

    kind: str
    stages: tuple[Stage, ...]

    @property
    def duration(self) -> float | None:
        end = self.stages[-1].end
        return None if math.isinf(end) else end

    @property
    def peak_users(self) -> int:
        return max(stage.users for stage in self.stages)

    def tick(self, run_time: float) -> tuple[int, float] | None:
        """Users and spawn rate wanted at ``run_time`` seconds, ``None`` once the run is over."""
        for stage in self.stages:
            if run_time < stage.end:
                return stage.users, stage.spawn_rate
        return None

    def phases(self) -> list[Phase]:
        phases: list[Phase] = []
        start = 0.0
        for stage in self.stages:
            phases.append(Phase(stage.name, start, stage.end, stage.users))
            start = stage.end
        return phases

    def peak_reached_at(self) -> float:
        """Start of the first stage that asks for the peak user count."""
        return next(p.start for p in self.phases() if p.users == self.peak_users)


def _positive_int(params: Mapping[str, str], key: str, default: int) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"--shape-params {key}={raw!r}: expected an integer") from None
    if value < 1:
        raise InvalidInput(f"--shape-params {key}={value}: must be at least 1")
    return value


def _seconds(params: Mapping[str, str], key: str, default: float) -> float:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = parse_duration(raw)
    except InvalidInput:
        raise InvalidInput(f"--shape-params {key}={raw!r}: expected seconds (30, 30s, 2m)") from None
    return value


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"2m"``, ``"1h30m"`` -> seconds. Raises ``InvalidInput``."""
    text = text.strip().lower()
    if not text:
        raise InvalidInput("duration: empty")
    try:
        return float(text)
    except ValueError:
        pass
    total, number = 0.0, ""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total += float(number) * units[char]
            number = ""
        else:
            raise InvalidInput(f"duration {text!r}: expected e.g. 30s, 2m, 1h30m")
    if number:
        raise InvalidInput(f"duration {text!r}: number without unit at the end")
    return total


def parse_params(text: str) -> dict[str, str]:
    """``"steps=4,spike_users=40"`` -> ``{"steps": "4", "spike_users": "40"}``."""
    params: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--shape-params: {item!r} is not key=value")
        params[key.strip()] = value.strip()
    return params


def _constant(users: int, duration: float, rate: float, params: Mapping[str, str]) -> tuple[Stage, ...]:
    return (Stage("constant", duration, users, rate),)


def _step(users: int, duration: float, rate: float, params: Mapping[str, str]) -> tuple[Stage, ...]:
    steps = _positive_int(params, "steps", 4)
    if math.isinf(duration):
        raise InvalidInput("--shape step needs a duration (--duration / --run-time)")
    steps = min(steps, users)
    length = duration / steps
    return tuple(
        Stage(f"step {i}", length * i if i < steps else duration, math.ceil(users * i / steps), rate)
        for i in range(1, steps + 1)
    )


def _spike(users: int, duration: float, rate: float, params: Mapping[str, str]) -> tuple[Stage, ...]:
    if math.isinf(duration):
        raise InvalidInput("--shape spike needs a duration (--duration / --run-time)")
    spike_users = _positive_int(params, "spike_users", users * 4)
    spike_at = _seconds(params, "spike_at", duration * 0.3)
    spike_for = _seconds(params, "spike_for", duration * 0.2)
    if spike_at + spike_for > duration:
        raise InvalidInput(
            f"--shape-params spike_at ({spike_at:g}s) + spike_for ({spike_for:g}s) > duration ({duration:g}s)"
        )
    # a spike arrives all at once: spawn the difference within a second
    spike_rate = max(rate, float(spike_users))
    stages = [Stage("base", spike_at, users, rate)] if spike_at > 0 else []
    stages.append(Stage("spike", spike_at + spike_for, spike_users, spike_rate))
    if spike_at + spike_for < duration:
        stages.append(Stage("recovery", duration, users, spike_rate))
    return tuple(stages)


def _soak(users: int, duration: float, rate: float, params: Mapping[str, str]) -> tuple[Stage, ...]:
    default_ramp = 0.0 if math.isinf(duration) else min(60.0, duration * 0.1)
    ramp = _seconds(params, "ramp", default_ramp)
    if ramp >= duration:
        raise InvalidInput(
            f"--shape-params ramp ({ramp:g}s) must be shorter than the duration ({duration:g}s)"
        )
    if ramp <= 0:
        return (Stage("soak", duration, users, rate),)
    return (Stage("ramp", ramp, users, users / ramp), Stage("soak", duration, users, rate))


_BUILDERS: dict[str, Callable[[int, float, float, Mapping[str, str]], tuple[Stage, ...]]] = {
    "constant": _constant,
    "step": _step,
    "spike": _spike,
    "soak": _soak,
}

_KNOWN_PARAMS: dict[str, frozenset[str]] = {
    "constant": frozenset(),
    "step": frozenset({"steps"}),
    "spike": frozenset({"spike_users", "spike_at", "spike_for"}),
    "soak": frozenset({"ramp"}),
}


def build(
    kind: str,
    *,
    users: int,
    duration: float | None,
    spawn_rate: float | None = None,
    params: Mapping[str, str] | str = "",
) -> Shape:
    """Build the shape ``kind`` (one of ``SHAPES``). ``duration=None`` runs until stopped.

    ``spawn_rate`` defaults to ``users`` per second (full load within a second).
    """
    if kind not in _BUILDERS:
        raise InvalidInput(f"--shape {kind!r}: expected one of {', '.join(SHAPES)}")
    if users < 1:
        raise InvalidInput(f"--users {users}: must be at least 1")
    if duration is not None and duration <= 0:
        raise InvalidInput(f"--duration {duration:g}: must be positive")
    if spawn_rate is not None and spawn_rate <= 0:
        raise InvalidInput(f"--spawn-rate {spawn_rate:g}: must be positive")
    parsed = parse_params(params) if isinstance(params, str) else dict(params)
    unknown = sorted(set(parsed) - _KNOWN_PARAMS[kind])
    if unknown:
        known = ", ".join(sorted(_KNOWN_PARAMS[kind])) or "none"
        raise InvalidInput(f"--shape-params {', '.join(unknown)}: not a parameter of {kind} (known: {known})")
    rate = spawn_rate if spawn_rate is not None else float(users)
    stages = _BUILDERS[kind](users, math.inf if duration is None else duration, rate, parsed)
    return Shape(kind, stages)
