"""An in-memory fleet for canary unit tests: replicas that follow TF Serving's label rules and
answer predict with a function per version, with no cluster and no TensorFlow.

Each replica is a ``ServerCore`` (the stand-in's own core: labels, two-phase reloads,
version states, a failed load ending in END with an error) behind a client with the calls
``FleetClient`` and ``Shadow`` make. ``functions`` maps a version to what it computes from
the input rows; a version missing from it fails to load.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tfsbed.serve.core import ServerCore
from tfsctl.release.history import PromotionRecord
from tfsctl.release.replicas import FleetClient, Replica
from tfsctl.serving.client import Endpoint, VersionStatus, error_for
from tfsctl.serving.config import ModelConfig, ServerConfig, VersionPolicy
from tfsctl.serving.rules import ServingError

MODEL = "clf"
METADATA = {
    "model_spec": {"name": MODEL},
    "metadata": {
        "signature_def": {
            "signature_def": {
                "serving_default": {
                    "inputs": {
                        "x": {"dtype": "DT_FLOAT", "tensor_shape": {"dim": [{"size": "-1"}, {"size": "4"}]}}
                    },
                    "outputs": {"scores": {"dtype": "DT_FLOAT"}},
                }
            }
        }
    },
}

Function = Callable[[np.ndarray], np.ndarray]


def softmax_classifier(shift: float = 0.0) -> Function:
    weights = np.random.default_rng(7).normal(size=(4, 3))

    def f(x: np.ndarray) -> np.ndarray:
        z = x @ weights + np.array([shift, 0.0, -shift])
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return f


class _Servable:
    def __init__(self, version: int, fn: Function) -> None:
        self.version = version
        self.fn = fn

    def close(self) -> None:
        pass


class CoreClient:
    def __init__(self, core: ServerCore) -> None:
        self.core = core
        self.predicts: dict[str, int] = {}

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except ServingError as exc:
            raise error_for(exc.code, exc.message) from None

    def model_status(
        self, model: str, version: int | None = None, label: str | None = None, transport: str = "grpc"
    ) -> list[VersionStatus]:
        rows = self._call(self.core.status, model, version)
        return [VersionStatus(r.version, r.state, r.error_code, r.error_message) for r in rows]

    def label_version(self, model: str, label: str, transport: str = "grpc") -> int:
        return int(self._call(self.core.servable, model, None, label).version)

    def metadata(
        self, model: str, version: int | None = None, label: str | None = None, transport: str = "grpc"
    ) -> dict[str, Any]:
        self._call(self.core.servable, model, version, label)
        return METADATA

    def predict(
        self,
        model: str,
        inputs: Any,
        version: int | None = None,
        label: str | None = None,
        signature: str = "serving_default",
        transport: str = "rest",
        columnar: bool = False,
    ) -> dict[str, Any]:
        servable = self._call(self.core.servable, model, version, label)
        self.predicts[label or ""] = self.predicts.get(label or "", 0) + 1
        x = np.asarray(inputs["x"] if isinstance(inputs, dict) else inputs, dtype=np.float64)
        return {"outputs": {"scores": servable.fn(x).tolist()}}

    def reload_config(self, config: ServerConfig) -> None:
        try:
            self.core.apply_config(config, wait_seconds=10)
        except ServingError as exc:
            raise error_for(exc.code, exc.message) from None

    def close(self) -> None:
        pass


class MemoryStore:
    """A ConfigStore shaped like Kubernetes mode's ``ReleaseStore``: in memory, not strict."""

    strict = False
    settle_seconds = 0.0

    def __init__(self, config: ServerConfig, replicas: list[Replica]) -> None:
        self.config = config
        self.live = list(replicas)
        self.writes: list[str] = []
        self.history: list[PromotionRecord] = []
        self.locked = 0

    def describe(self) -> str:
        return "memory/clf"

    def read(self) -> ServerConfig:
        return self.config

    def write(self, config: ServerConfig, reason: str) -> ServerConfig:
        self.config = config
        self.writes.append(reason)
        return config

    def replicas(self) -> list[Replica]:
        return list(self.live)

    def repository_versions(self, model: str) -> list[int] | None:
        return None

    @contextlib.contextmanager
    def lock(self, timeout: float) -> Any:
        self.locked += 1
        try:
            yield
        finally:
            self.locked -= 1

    def read_history(self) -> list[PromotionRecord]:
        return list(self.history)

    def append_history(self, record: PromotionRecord) -> None:
        self.history.append(record)

    def revision(self) -> int | None:
        return len(self.writes)


class MemoryFleet:
    """``replicas`` ServerCores serving ``MODEL`` with ``functions``; stable -> 1 to start."""

    def __init__(self, root: Path, functions: dict[int, Function], replicas: int = 2) -> None:
        for version in (1, 2, 3, 4, 5):
            (root / MODEL / str(version)).mkdir(parents=True, exist_ok=True)
        self.config = ServerConfig(
            {
                MODEL: ModelConfig(
                    MODEL, str(root / MODEL), policy=VersionPolicy.specific(1), labels={"stable": 1}
                )
            }
        )

        def loader(name: str, version: int, path: str) -> _Servable:
            if version not in functions:
                raise ServingError("INVALID_ARGUMENT", f"Could not parse saved_model.pb of version {version}")
            return _Servable(version, functions[version])

        self.clients: dict[Endpoint, CoreClient] = {}
        replica_list: list[Replica] = []
        for i in range(replicas):
            core = ServerCore(loader, allow_labels_for_unavailable=True, load_retries=0)
            core.apply_config(self.config, initial=True)
            core.wait_until_settled(timeout=10)
            endpoint = Endpoint(f"10.0.0.{i + 1}")
            self.clients[endpoint] = CoreClient(core)
            replica_list.append(Replica(f"pod-{i}", endpoint))
        self.store = MemoryStore(self.config, replica_list)
        self.fleet = FleetClient(client_factory=lambda endpoint, timeout: self.clients[endpoint])  # type: ignore[arg-type,return-value]

    def labels(self) -> list[dict[str, int]]:
        out = []
        for c in self.clients.values():
            seen = {}
            for label in ("stable", "canary"):
                with contextlib.suppress(Exception):
                    seen[label] = c.label_version(MODEL, label)
            out.append(seen)
        return out

    def loaded(self) -> list[list[int]]:
        return [
            sorted(r.version for r in c.core.status(MODEL) if r.state == "AVAILABLE")
            for c in self.clients.values()
        ]

    def close(self) -> None:
        self.fleet.close()
        for c in self.clients.values():
            c.core.close()
