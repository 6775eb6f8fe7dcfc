"""The Promoter against replicas that follow TF Serving's label rules, with no cluster and no TensorFlow.

Each replica is a ``ServerCore`` (the stand-in's own core: labels assigned before a
config's models load, GetModelStatus blind to labels) behind a client with
``ServingClient``'s interface. The store behaves as Kubernetes mode's
``ReleaseStore`` does (not strict, no repository listing), so these tests cover the
Kubernetes-mode promotion path that the cluster e2e tests run with the real pods.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.canary_fleet import MemoryStore
from tfsbed.serve.core import ServerCore
from tfsctl.errors import Conflict, PromotionRejected
from tfsctl.release.promote import Promoter, PromotionRequest
from tfsctl.release.replicas import FleetClient, Replica
from tfsctl.serving.client import Endpoint, VersionStatus, error_for
from tfsctl.serving.config import ModelConfig, ServerConfig, VersionPolicy
from tfsctl.serving.rules import ServingError


class _Servable:
    def __init__(self, version: int) -> None:
        self.version = version

    def close(self) -> None:
        pass


class CoreClient:
    """``ServingClient``'s calls the fleet makes, answered by a ``ServerCore`` as TF Serving would."""

    def __init__(self, core: ServerCore) -> None:
        self.core = core
        self.reload_errors: list[str] = []
        self.status_by_label_calls = 0

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ServingError as exc:
            raise error_for(exc.code, exc.message) from None

    def model_status(
        self, model: str, version: int | None = None, label: str | None = None, transport: str = "grpc"
    ) -> list[VersionStatus]:
        if label is not None:
            self.status_by_label_calls += 1  # the real server ignores it
        rows = self._call(self.core.status, model, version)
        return [VersionStatus(r.version, r.state) for r in rows]

    def label_version(self, model: str, label: str, transport: str = "grpc") -> int:
        return int(self._call(self.core.servable, model, None, label).version)

    def reload_config(self, config: ServerConfig) -> None:
        try:
            self.core.apply_config(config, wait_seconds=10)
        except ServingError as exc:
            self.reload_errors.append(exc.message)
            raise error_for(exc.code, exc.message) from None

    def close(self) -> None:
        pass


def _repository(tmp_path: Path) -> Path:
    for version in (1, 2, 3):
        (tmp_path / "fashion" / str(version)).mkdir(parents=True)
        (tmp_path / "fashion" / str(version) / "saved_model.pb").write_bytes(b"")
    return tmp_path / "fashion"


class Fleet:
    def __init__(self, tmp_path: Path, versions: tuple[int, ...], labels: dict[str, int], replicas: int = 2):
        base = _repository(tmp_path)
        self.config = ServerConfig(
            {
                "fashion": ModelConfig(
                    "fashion", str(base), policy=VersionPolicy.specific(*versions), labels=labels
                )
            }
        )
        self.clients: dict[Endpoint, CoreClient] = {}
        self.replicas: list[Replica] = []
        for i in range(replicas):
            core = ServerCore(
                lambda name, version, path: _Servable(version), allow_labels_for_unavailable=True
            )
            core.apply_config(self.config, initial=True)
            core.wait_until_settled(timeout=10)
            endpoint = Endpoint(f"10.0.0.{i + 1}")
            self.clients[endpoint] = CoreClient(core)
            self.replicas.append(Replica(f"tfs-{i}", endpoint, node="process"))
        self.store = MemoryStore(self.config, self.replicas)
        self.fleet = FleetClient(client_factory=lambda endpoint, timeout: self.clients[endpoint])  # type: ignore[arg-type,return-value]

    def promoter(self) -> Promoter:
        return Promoter(self.store, self.fleet)

    def label(self, label: str) -> list[int]:
        return [c.label_version("fashion", label) for c in self.clients.values()]

    def loaded(self) -> list[list[int]]:
        return [
            sorted(r.version for r in c.core.status("fashion") if r.state == "AVAILABLE")
            for c in self.clients.values()
        ]

    def close(self) -> None:
        self.fleet.close()
        for c in self.clients.values():
            c.core.close()


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Fleet] = []

    def make(versions: tuple[int, ...], labels: dict[str, int]) -> Fleet:
        fleet = Fleet(tmp_path / str(len(made)), versions, labels)
        made.append(fleet)
        return fleet

    yield make
    for fleet in made:
        fleet.close()


def test_promotion_to_a_version_not_loaded_is_load_wait_then_move(fleet_factory: Any) -> None:
    """The two-phase procedure: no reload is refused by the replicas' label rule."""
    fleet = fleet_factory((1,), {"stable": 1})
    result = fleet.promoter().run(PromotionRequest("fashion", "stable", 2, timeout=30))
    assert [s.name for s in result.steps] == ["load", "label", "retire"]
    assert fleet.label("stable") == [2, 2]
    assert fleet.loaded() == [[2], [2]]
    assert all(not c.reload_errors for c in fleet.clients.values())
    assert all(c.status_by_label_calls == 0 for c in fleet.clients.values())


def test_labels_on_two_loaded_versions_are_not_a_conflict(fleet_factory: Any) -> None:
    """The multi-model preset (stable -> 1, canary -> 2, both loaded): promoting stable to 2 starts;
    with labels read from GetModelStatus both would look like 2 and the promotion was refused."""
    fleet = fleet_factory((1, 2), {"stable": 1, "canary": 2})
    result = fleet.promoter().run(PromotionRequest("fashion", "stable", 2, timeout=30))
    assert [s.name for s in result.steps] == ["label", "retire"]
    assert fleet.label("stable") == [2, 2] and fleet.label("canary") == [2, 2]


def test_rollback_reloads_the_previous_version_before_moving_the_label_back(fleet_factory: Any) -> None:
    fleet = fleet_factory((1,), {"stable": 1})
    fleet.promoter().run(PromotionRequest("fashion", "stable", 2, timeout=30))
    result = fleet.promoter().run(PromotionRequest("fashion", "stable", None, action="rollback", timeout=30))
    assert result.to_version == 1
    assert [s.name for s in result.steps] == ["load", "label", "retire"]
    assert fleet.label("stable") == [1, 1]
    assert all(not c.reload_errors for c in fleet.clients.values())


def test_allow_unavailable_for_an_existing_label_is_refused_before_anything_is_written(
    fleet_factory: Any,
) -> None:
    fleet = fleet_factory((1,), {"stable": 1})
    with pytest.raises(PromotionRejected, match="--allow-unavailable only applies to a new label"):
        fleet.promoter().run(PromotionRequest("fashion", "stable", 2, allow_unavailable=True, timeout=30))
    assert fleet.store.writes == []
    assert fleet.label("stable") == [1, 1]


def test_allow_unavailable_adds_a_new_label_in_the_revision_that_loads_its_version(
    fleet_factory: Any,
) -> None:
    fleet = fleet_factory((1,), {"stable": 1})
    request = PromotionRequest("fashion", "shadow", 3, allow_unavailable=True, create_label=True, timeout=30)
    result = fleet.promoter().run(request)
    assert [s.name for s in result.steps] == ["load+label"]
    assert fleet.label("shadow") == [3, 3] and fleet.label("stable") == [1, 1]
    assert all(not c.reload_errors for c in fleet.clients.values())


def test_a_replica_whose_label_resolves_elsewhere_blocks_the_start(fleet_factory: Any) -> None:
    """The pre-check compares each replica's label, as metadata resolves it, with the config."""
    fleet = fleet_factory((1, 2), {"stable": 1, "canary": 2})
    odd = next(iter(fleet.clients.values()))
    odd.core.apply_config(
        fleet.config.with_model(fleet.config.models["fashion"].with_labels({"stable": 2, "canary": 2}))
    )
    with pytest.raises(Conflict, match="label stable -> 2, want 1"):
        fleet.promoter().run(PromotionRequest("fashion", "canary", 1, timeout=30))
    assert fleet.store.writes == []
