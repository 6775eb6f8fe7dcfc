"""Canary judgement (pure): measured data in, checks with thresholds and a verdict out.

Nothing here talks to a server. ``shadow`` measures ``Pair`` s (the same input sent to the
stable and the canary label on one replica), ``run`` samples ``HealthSample`` s, and
``prometheus`` reads ``LiveStats`` per label; ``judge`` turns them into ``Check`` s, each
naming its measured value and its threshold, and the analysis passes only when every check
that ran passed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tfsctl.canary.spec import CanarySpec, OutputsSpec


@dataclass(frozen=True)
class Sample:
    """One request to one label on one replica: its latency, outputs or error."""

    replica: str
    label: str
    input_index: int
    seconds: float | None
    outputs: Mapping[str, Any] | None = None  # output name -> numpy array
    error: str | None = None


@dataclass(frozen=True)
class Pair:
    """The same input to ``stable`` and ``canary`` on the same replica, back to back."""

    stable: Sample
    canary: Sample


@dataclass(frozen=True)
class HealthSample:
    """One look at the fleet: replica -> {version: state}; ``expected`` replicas that answered nothing."""

    at: float
    versions: Mapping[str, Mapping[int, str]]
    errors: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveStats:
    """Live traffic for one label over the window, from Prometheus."""

    requests: float
    errors: float
    p99_seconds: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests > 0 else 0.0


@dataclass(frozen=True)
class Check:
    """One check: what it measured, the threshold it is held to, whether it held."""

    name: str
    passed: bool
    value: float | None
    threshold: float | None
    comparison: str  # "<=" or ">=" (value against threshold) or "" for a yes/no check
    detail: str

    def __str__(self) -> str:
        state = "ok" if self.passed else "FAILED"
        if self.value is None or self.threshold is None:
            return f"{self.name}: {state}: {self.detail}"
        measured = f"{_fmt(self.value)} {self.comparison} {_fmt(self.threshold)}"
        return f"{self.name}: {state}: {measured} ({self.detail})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "value": self.value,
            "threshold": self.threshold,
            "comparison": self.comparison,
            "detail": self.detail,
        }


def _fmt(x: float) -> str:
    return f"{x:.4g}"


# ------------------------------------------------------------------ outputs


@dataclass(frozen=True)
class OutputStats:
    compared: int  # pairs where both labels answered
    max_abs: float
    max_rel: float
    differing: int  # inputs with an element beyond tolerance (or a shape/output mismatch)
    top_k_rows: int
    top_k_agree: int
    per_input_max_abs: tuple[float, ...] = ()

    @property
    def differing_share(self) -> float:
        return self.differing / self.compared if self.compared else 0.0

    @property
    def top_k_agreement(self) -> float | None:
        return self.top_k_agree / self.top_k_rows if self.top_k_rows else None


def _numeric(value: Any) -> np.ndarray | None:
    array = np.asarray(value)
    if array.dtype.kind in "fiub":
        return array.astype(np.float64)
    return None


def _score_output(outputs: Mapping[str, Any], wanted: str | None) -> str | None:
    """The output holding class scores: ``wanted``, else the only float [batch, classes>1] one."""
    if wanted is not None:
        return wanted if wanted in outputs else None
    candidates = [
        name
        for name, value in outputs.items()
        if (a := np.asarray(value)).dtype.kind == "f" and a.ndim == 2 and a.shape[1] > 1
    ]
    return candidates[0] if len(candidates) == 1 else None


def compare_outputs(pairs: Sequence[Pair], spec: OutputsSpec) -> OutputStats:
    """Element-wise differences of every output, and top-k agreement of the class scores.

    An element differs beyond tolerance when ``|c - s| > absTolerance + relTolerance * |s|``
    (numpy's ``isclose`` rule, stable as the reference); an input differs when any element of
    any output does, or when the outputs' names, shapes or non-numeric values differ.
    """
    compared = differing = rows = agree = 0
    max_abs = max_rel = 0.0
    per_input: list[float] = []
    for pair in pairs:
        s, c = pair.stable.outputs, pair.canary.outputs
        if s is None or c is None:
            continue
        compared += 1
        worst = 0.0
        beyond = set(s) != set(c)
        for name in sorted(set(s) & set(c)):
            a, b = _numeric(s[name]), _numeric(c[name])
            if a is None or b is None:
                beyond |= not np.array_equal(np.asarray(s[name]), np.asarray(c[name]))
                continue
            if a.shape != b.shape:
                beyond = True
                continue
            if a.size == 0:
                continue
            diff = np.abs(b - a)
            rel = diff / np.maximum(np.abs(a), np.finfo(np.float64).tiny)
            rel = np.where(diff == 0, 0.0, rel)
            worst = max(worst, float(np.max(diff)))
            max_abs = max(max_abs, float(np.max(diff)))
            max_rel = max(max_rel, float(np.max(rel)))
            if bool(np.any(diff > spec.abs_tolerance + spec.rel_tolerance * np.abs(a))):
                beyond = True
        per_input.append(worst)
        differing += int(beyond)
        if spec.top_k is not None:
            scores = _score_output(s, spec.top_k.output)
            if scores is not None and scores in c:
                a, b = np.asarray(s[scores], dtype=np.float64), np.asarray(c[scores], dtype=np.float64)
                if a.shape == b.shape and a.ndim == 2:
                    k = min(spec.top_k.k, a.shape[1])
                    for ra, rb in zip(a, b, strict=True):
                        rows += 1
                        agree += int(set(_top(ra, k)) == set(_top(rb, k)))
    return OutputStats(compared, max_abs, max_rel, differing, rows, agree, tuple(per_input))


def _top(row: np.ndarray, k: int) -> list[int]:
    # stable order: ties broken by index, so equal rows always agree
    return [int(i) for i in np.argsort(-row, kind="stable")[:k]]


# ------------------------------------------------------------------ latency and errors


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def latencies(pairs: Sequence[Pair], label: str) -> list[float]:
    out = []
    for pair in pairs:
        sample = pair.stable if label == "stable" else pair.canary
        if sample.error is None and sample.seconds is not None:
            out.append(sample.seconds)
    return out


def error_rate(pairs: Sequence[Pair], label: str) -> float:
    if not pairs:
        return 0.0
    samples = [p.stable if label == "stable" else p.canary for p in pairs]
    return sum(1 for s in samples if s.error is not None) / len(samples)


# ------------------------------------------------------------------ the checks


def _limit(
    name: str, value: float | None, threshold: float | None, detail: str, at_least: bool = False
) -> Check:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Check(name, False, None, threshold, ">=" if at_least else "<=", f"no data: {detail}")
    assert threshold is not None
    passed = value >= threshold if at_least else value <= threshold
    return Check(name, passed, value, threshold, ">=" if at_least else "<=", detail)


def output_checks(stats: OutputStats, spec: OutputsSpec, total: int) -> list[Check]:
    checks: list[Check] = []
    where = f"{stats.compared} of {total} paired inputs answered by both labels"
    if stats.compared == 0:
        return [
            Check("outputs", False, None, None, "", f"no input was answered by both labels ({total} sent)")
        ]
    if spec.max_abs_diff is not None:
        checks.append(_limit("outputs.maxAbsDiff", stats.max_abs, spec.max_abs_diff, where))
    if spec.max_rel_diff is not None:
        checks.append(_limit("outputs.maxRelDiff", stats.max_rel, spec.max_rel_diff, where))
    if spec.max_differing_share is not None:
        checks.append(
            _limit(
                "outputs.maxDifferingShare",
                stats.differing_share,
                spec.max_differing_share,
                f"{stats.differing} of {stats.compared} inputs beyond abs {spec.abs_tolerance:g} + "
                f"rel {spec.rel_tolerance:g}",
            )
        )
    if spec.top_k is not None:
        agreement = stats.top_k_agreement
        if agreement is None:
            checks.append(
                Check(
                    "outputs.topK",
                    False,
                    None,
                    spec.top_k.min_agreement,
                    ">=",
                    "no class-score output found (a float [batch, classes] output, or set "
                    "outputs.topK.output; a regressor: profile regressor or topK: null)",
                )
            )
        else:
            checks.append(
                _limit(
                    "outputs.topK",
                    agreement,
                    spec.top_k.min_agreement,
                    f"top-{spec.top_k.k} classes agree on {stats.top_k_agree} of {stats.top_k_rows} rows",
                    at_least=True,
                )
            )
    return checks


def latency_checks(pairs: Sequence[Pair], spec: CanarySpec) -> list[Check]:
    checks: list[Check] = []
    lat = spec.latency
    stable, canary = latencies(pairs, "stable"), latencies(pairs, "canary")
    for q, threshold, name in (
        (50, lat.max_p50_ratio, "latency.maxP50Ratio"),
        (99, lat.max_p99_ratio, "latency.maxP99Ratio"),
    ):
        if threshold is None:
            continue
        if min(len(stable), len(canary)) < lat.min_samples:
            checks.append(
                Check(
                    name,
                    False,
                    None,
                    threshold,
                    "<=",
                    f"too few samples: {len(stable)} stable, {len(canary)} canary, want "
                    f"latency.minSamples {lat.min_samples} (a longer bake or a higher maxRequestRate)",
                )
            )
            continue
        ps, pc = percentile(stable, q), percentile(canary, q)
        assert ps is not None and pc is not None
        ratio = pc / ps if ps > 0 else math.inf
        checks.append(
            _limit(name, ratio, threshold, f"p{q} canary {pc * 1000:.2f} ms / stable {ps * 1000:.2f} ms")
        )
    if spec.max_canary_error_rate is not None:
        rate = error_rate(pairs, "canary")
        failed = [p.canary.error for p in pairs if p.canary.error is not None]
        detail = f"{len(failed)} of {len(pairs)} canary requests failed" + (
            f", first: {failed[0]}" if failed else ""
        )
        checks.append(_limit("errors.maxCanaryErrorRate", rate, spec.max_canary_error_rate, detail))
    return checks


def health_check(samples: Sequence[HealthSample], expected: Sequence[str], versions: Sequence[int]) -> Check:
    """Every expected replica answered every sample with every version in ``versions`` AVAILABLE."""
    problems: list[str] = []
    for sample in samples:
        for replica in expected:
            if replica in sample.errors:
                problems.append(f"replica {replica} unreachable: {sample.errors[replica]}")
                continue
            seen = sample.versions.get(replica)
            if seen is None:
                problems.append(f"replica {replica} lost (no longer in the fleet)")
                continue
            for v in versions:
                state = seen.get(v)
                if state != "AVAILABLE":
                    problems.append(f"replica {replica}: version {v} is {state or 'absent'}")
        if problems:
            break
    if not samples:
        return Check("health", False, None, None, "", "the fleet was never observed")
    if problems:
        return Check("health", False, None, None, "", problems[0])
    return Check(
        "health",
        True,
        None,
        None,
        "",
        f"versions {', '.join(map(str, versions))} AVAILABLE on {len(expected)} replica(s) in "
        f"{len(samples)} sample(s)",
    )


def lost_replicas(samples: Sequence[HealthSample], expected: Sequence[str]) -> set[str]:
    """Expected replicas that were missing from, or unreachable in, some health sample."""
    return {
        name
        for sample in samples
        for name in expected
        if name in sample.errors or name not in sample.versions
    }


def live_checks(before: LiveStats, during: LiveStats, spec: CanarySpec) -> list[Check]:
    """The model's live traffic over the bake (``during``) against the same-length window before it.

    TF Serving's metrics carry the model name only, never the version or label, so live
    traffic cannot be split by label: the bake window as a whole is judged.
    """
    prom = spec.prometheus
    checks: list[Check] = []
    if during.requests < prom.min_requests:
        return [
            Check(
                "prometheus",
                True,
                during.requests,
                prom.min_requests,
                ">=",
                f"only {during.requests:.0f} live request(s) in the window (minRequests "
                f"{prom.min_requests:g}): live checks not judged",
            )
        ]
    if prom.max_error_rate is not None:
        checks.append(
            _limit(
                "prometheus.maxErrorRate",
                during.error_rate,
                prom.max_error_rate,
                f"{during.errors:.0f} of {during.requests:.0f} live requests failed during the bake",
            )
        )
    if prom.max_p99_ratio is not None:
        if before.p99_seconds is None or during.p99_seconds is None or before.p99_seconds <= 0:
            checks.append(
                Check(
                    "prometheus.maxP99Ratio",
                    False,
                    None,
                    prom.max_p99_ratio,
                    "<=",
                    "no request_latency histogram for the model before and during the bake",
                )
            )
        else:
            checks.append(
                _limit(
                    "prometheus.maxP99Ratio",
                    during.p99_seconds / before.p99_seconds,
                    prom.max_p99_ratio,
                    f"live p99 during the bake {during.p99_seconds * 1000:.1f} ms / before "
                    f"{before.p99_seconds * 1000:.1f} ms",
                )
            )
    return checks


@dataclass(frozen=True)
class Verdict:
    passed: bool
    checks: tuple[Check, ...]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        failed = self.failed
        if not failed:
            return f"all {len(self.checks)} checks passed"
        return "; ".join(str(c) for c in failed)


def judge(
    spec: CanarySpec,
    pairs: Sequence[Pair],
    health: Sequence[HealthSample],
    expected_replicas: Sequence[str],
    versions: Sequence[int],
    live: tuple[LiveStats, LiveStats] | None = None,
    extra: Sequence[Check] = (),
) -> Verdict:
    """Every check of ``spec`` on the measured data; passed only if all of them hold."""
    checks: list[Check] = list(extra)
    if spec.health_required:
        checks.append(health_check(health, expected_replicas, versions))
    # Requests to a replica that went away fail for that reason, which health names: they are
    # not the canary's errors (nor its outputs or latencies).
    gone = lost_replicas(health, expected_replicas)
    pairs = [p for p in pairs if p.stable.replica not in gone]
    checks += output_checks(compare_outputs(pairs, spec.outputs), spec.outputs, len(pairs))
    checks += latency_checks(pairs, spec)
    if live is not None:
        checks += live_checks(live[0], live[1], spec)
    return Verdict(all(c.passed for c in checks), tuple(checks))
