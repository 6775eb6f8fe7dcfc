"""The canary flow against in-memory replicas that follow TF Serving's label rules.

Each test starts with stable -> 1 on two replicas and runs a short bake; latency checks are
off here (in-process calls have no meaningful latency; ``test_judge`` pins them on fixed data).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.canary_fleet import MODEL, MemoryFleet, softmax_classifier
from tfsctl.canary import spec as S
from tfsctl.canary.run import CanaryRequest, CanaryRunner
from tfsctl.errors import InvalidInput, NotFound

SAME = softmax_classifier()
SHIFTED = softmax_classifier(shift=3.0)


def quick(**extra: Any) -> S.CanarySpec:
    doc = {
        "bakeSeconds": 0.3,
        "intervalSeconds": 0.1,
        "maxRequestRate": 1000,
        "loadTimeoutSeconds": 3,
        "inputs": {"count": 4, "batchSize": 2},
        "latency": {"maxP50Ratio": None, "maxP99Ratio": None},
    }
    doc.update(extra)
    return S.parse(doc)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Any]:
    made: list[MemoryFleet] = []

    def make(functions: dict[int, Any], replicas: int = 2) -> MemoryFleet:
        f = MemoryFleet(tmp_path / str(len(made)), functions, replicas)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


def run(f: MemoryFleet, version: int, spec: S.CanarySpec | None = None, runner: Any = None) -> Any:
    runner = runner or CanaryRunner(f.store, f.fleet)
    return runner.run(CanaryRequest(MODEL, version, spec or quick(), timeout=20))


def test_a_canary_computing_the_same_function_is_promoted(fleet: Any) -> None:
    f = fleet({1: SAME, 2: SAME})
    result = run(f, 2)
    assert result.decision == "promoted", result.reason
    assert f.labels() == [{"stable": 2, "canary": 2}] * 2
    assert f.loaded() == [[2], [2]]
    assert [(r.label, r.from_version, r.to_version, r.action) for r in f.store.history] == [
        ("canary", None, 2, "promote"),
        ("stable", 1, 2, "promote"),
    ]
    assert result.pairs and all(p.canary.error is None for p in result.pairs)
    assert {p.stable.replica for p in result.pairs} == {"pod-0", "pod-1"}
    assert f.store.locked == 0


def test_a_canary_with_shifted_outputs_is_reverted_and_retired(fleet: Any) -> None:
    f = fleet({1: SAME, 2: SHIFTED})
    result = run(f, 2)
    assert result.decision == "reverted"
    assert "outputs.maxAbsDiff" in [c.name for c in result.verdict.failed]
    # canary did not exist: it goes back to stable; stable never moved; version 2 unloaded
    assert f.labels() == [{"stable": 1, "canary": 1}] * 2
    assert f.loaded() == [[1], [1]]
    assert [(r.label, r.from_version, r.to_version, r.action) for r in f.store.history] == [
        ("canary", None, 2, "promote"),
        ("canary", 2, 1, "rollback"),
    ]
    assert (result.stable_after, result.canary_after) == (1, 1)


def test_a_version_that_fails_to_load_is_reverted_by_the_load_check(fleet: Any) -> None:
    f = fleet({1: SAME})  # version 3 is not loadable
    result = run(f, 3, quick(loadTimeoutSeconds=60))
    assert result.decision == "reverted"
    assert [c.name for c in result.verdict.failed] == ["load"]
    # the server's own error, not the end of loadTimeoutSeconds
    assert "version 3 failed to load: INVALID_ARGUMENT: Could not parse saved_model.pb" in result.reason
    assert f.labels() == [{"stable": 1}] * 2 and f.loaded() == [[1], [1]]
    assert f.store.history == []
    assert str(f.store.config.models[MODEL].policy.versions) == "(1,)"


def test_a_replica_lost_during_the_bake_fails_health_and_the_rest_end_consistent(fleet: Any) -> None:
    f = fleet({1: SAME, 2: SAME}, replicas=3)
    runner = CanaryRunner(f.store, f.fleet)
    original = runner._health
    calls = {"n": 0}

    def losing(model: str, expected: list[str]) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            f.store.live = f.store.live[:2]  # pod-2 deleted
        return original(model, expected)

    runner._health = losing  # type: ignore[method-assign]
    result = run(f, 2, quick(bakeSeconds=2.0), runner)
    assert result.decision == "reverted"
    assert result.verdict.failed[0].detail == "replica pod-2 lost (no longer in the fleet)"
    survivors = list(f.clients.values())[:2]
    assert [c.label_version(MODEL, "stable") for c in survivors] == [1, 1]
    assert [c.label_version(MODEL, "canary") for c in survivors] == [1, 1]


def test_ctrl_c_during_the_bake_moves_canary_back_then_stops(fleet: Any) -> None:
    f = fleet({1: SAME, 2: SAME})
    runner = CanaryRunner(f.store, f.fleet)
    calls = {"n": 0}
    original = runner._health

    def interrupted(model: str, expected: list[str]) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(model, expected)

    runner._health = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run(f, 2, quick(bakeSeconds=2.0), runner)
    assert f.labels() == [{"stable": 1, "canary": 1}] * 2 and f.loaded() == [[1], [1]]
    assert f.store.history[-1].action == "rollback"


def test_an_existing_canary_label_goes_back_to_its_own_version(fleet: Any) -> None:
    f = fleet({1: SAME, 2: SAME, 3: SHIFTED})
    from tfsctl.release.promote import Promoter, PromotionRequest

    Promoter(f.store, f.fleet).run(PromotionRequest(MODEL, "canary", 2, timeout=20, create_label=True))
    result = run(f, 3)
    assert result.decision == "reverted" and result.canary_before == 2
    assert f.labels() == [{"stable": 1, "canary": 2}] * 2 and f.loaded() == [[1, 2], [1, 2]]


def test_the_analysis_stays_under_the_request_rate(fleet: Any) -> None:
    f = fleet({1: SAME, 2: SAME})
    result = run(f, 2, quick(bakeSeconds=1.0, maxRequestRate=40))
    assert result.requests_sent == 2 * len(result.pairs)
    # a burst of 2 tokens, then 40/s
    assert result.requests_sent <= 2 + 40 * result.bake_seconds + 2


def test_refusals_change_nothing(fleet: Any) -> None:
    f = fleet({1: SAME, 2: SAME})
    with pytest.raises(InvalidInput, match="already stable"):
        run(f, 1)
    with pytest.raises(NotFound, match="no 'gold' label"):
        run(f, 2, quick(stableLabel="gold"))
    assert f.store.writes == [] and f.store.history == []


def test_promote_to_a_version_that_fails_to_load_fails_with_the_servers_error(fleet: Any) -> None:
    """END with an error status (the server gave up) ends the load step before the timeout."""
    from tfsctl.errors import VersionNotAvailable
    from tfsctl.release.promote import Promoter, PromotionRequest

    f = fleet({1: SAME})
    with pytest.raises(VersionNotAvailable, match=r"version 4 failed to load: INVALID_ARGUMENT") as info:
        Promoter(f.store, f.fleet).run(PromotionRequest(MODEL, "stable", 4, timeout=300))
    assert "restored the pre-promotion state" in str(info.value)
    assert f.labels() == [{"stable": 1}] * 2 and f.loaded() == [[1], [1]]


def test_ctrl_c_between_the_load_and_the_label_step_takes_the_fleet_back(fleet: Any) -> None:
    """The load step was written and verified, the label step not: the undo starts from the
    persisted config (versions 1 and 2 loaded) and retires 2; no label was moved or added."""
    f = fleet({1: SAME, 2: SAME})
    runner = CanaryRunner(f.store, f.fleet)
    original = runner.promoter._apply
    calls = {"n": 0}

    def apply(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args)

    runner.promoter._apply = apply  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run(f, 2, runner=runner)
    runner.promoter._apply = original  # type: ignore[method-assign]
    assert f.labels() == [{"stable": 1}] * 2 and f.loaded() == [[1], [1]]
    assert dict(f.store.config.models[MODEL].labels) == {"stable": 1}
    assert f.store.history == []
