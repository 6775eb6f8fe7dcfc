"""ServerCore's label and reload rules, with a loader that needs no TensorFlow.

Each test names the TF Serving function whose behaviour it pins (see
tests/e2e/serving/FIDELITY.md).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tfsbed.serve.core import ServerCore
from tfsctl.serving.config import ModelConfig, ServerConfig, VersionPolicy
from tfsctl.serving.rules import ServingError


class _Servable:
    def __init__(self, version: int) -> None:
        self.version = version

    def close(self) -> None:
        pass


class _Loader:
    """Loads instantly, except versions in ``held``, which wait until released."""

    def __init__(self) -> None:
        self.held: dict[int, threading.Event] = {}

    def __call__(self, name: str, version: int, path: str) -> _Servable:
        gate = self.held.get(version)
        if gate is not None:
            gate.wait(timeout=30)
        return _Servable(version)


def _repo(tmp_path: Path, *versions: int) -> Path:
    for version in versions:
        (tmp_path / "m" / str(version)).mkdir(parents=True, exist_ok=True)
        (tmp_path / "m" / str(version) / "saved_model.pb").write_bytes(b"")
    return tmp_path / "m"


def _config(base: Path, versions: tuple[int, ...], labels: dict[str, int]) -> ServerConfig:
    return ServerConfig(
        {"m": ModelConfig("m", str(base), policy=VersionPolicy.specific(*versions), labels=labels)}
    )


@pytest.fixture
def loader() -> _Loader:
    return _Loader()


@pytest.fixture
def core(loader: _Loader) -> Iterator[ServerCore]:
    c = ServerCore(loader)
    yield c
    for gate in loader.held.values():
        gate.set()
    c.close()


def _available(core: ServerCore) -> dict[int, str]:
    return {r.version: r.state for r in core.status("m")}


def test_status_has_no_label_parameter_and_lists_every_version_newest_first(
    core: ServerCore, tmp_path: Path
) -> None:
    """GetModelStatusImpl::GetModelStatusWithModelSpec only reads model_spec.version."""
    base = _repo(tmp_path, 1, 2)
    core.apply_config(_config(base, (1, 2), {}), initial=True)
    core.wait_until_settled(timeout=10)
    core.apply_config(_config(base, (1, 2), {"stable": 1}))
    assert [r.version for r in core.status("m")] == [2, 1]
    assert core.version_for_label("m", "stable") == 1


def test_labels_at_start_up_need_the_allow_flag(loader: _Loader, tmp_path: Path) -> None:
    """ServerCore::ReloadConfig assigns labels before the first models load."""
    base = _repo(tmp_path, 1)
    core = ServerCore(loader)
    try:
        with pytest.raises(ServingError) as info:
            core.apply_config(_config(base, (1,), {"stable": 1}), initial=True)
        assert info.value.code == "FAILED_PRECONDITION"
        assert core.config.models == {}  # nothing was added: the reload failed as a whole
    finally:
        core.close()
    allowed = ServerCore(loader, allow_labels_for_unavailable=True)
    try:
        allowed.apply_config(_config(base, (1,), {"stable": 1}), initial=True)
        allowed.wait_until_settled(timeout=10)
        assert allowed.version_for_label("m", "stable") == 1
    finally:
        allowed.close()


def test_a_reload_that_loads_a_version_and_moves_a_label_to_it_fails_whole(
    core: ServerCore, tmp_path: Path
) -> None:
    """UpdateModelVersionLabelMap runs before AddModelsViaModelConfigList: version 2 is not
    loaded when the label is checked, so the reload fails and version 2 is never loaded."""
    base = _repo(tmp_path, 1, 2)
    core.apply_config(_config(base, (1,), {}), initial=True)
    core.wait_until_settled(timeout=10)
    core.apply_config(_config(base, (1,), {"stable": 1}))
    with pytest.raises(ServingError) as info:
        core.apply_config(_config(base, (1, 2), {"stable": 2}))
    assert info.value.code == "FAILED_PRECONDITION"
    assert info.value.message == (
        "Request to assign label to version 2 of model m, which is not currently available for inference"
    )
    assert _available(core) == {1: "AVAILABLE"}
    assert core.version_for_label("m", "stable") == 1


def test_two_phase_promotion_loads_then_moves_the_label(core: ServerCore, tmp_path: Path) -> None:
    """The only sequence TF Serving accepts: add the version (labels unchanged), then move."""
    base = _repo(tmp_path, 1, 2)
    core.apply_config(_config(base, (1,), {}), initial=True)
    core.wait_until_settled(timeout=10)
    core.apply_config(_config(base, (1,), {"stable": 1}))
    core.apply_config(_config(base, (1, 2), {"stable": 1}))
    core.wait_until_settled(timeout=10)
    assert _available(core) == {2: "AVAILABLE", 1: "AVAILABLE"}
    core.apply_config(_config(base, (1, 2), {"stable": 2}))
    assert core.version_for_label("m", "stable") == 2


def test_allow_flag_moving_an_existing_label_to_a_loading_version_still_fails(
    loader: _Loader, tmp_path: Path
) -> None:
    """--allow_version_labels_for_unavailable_models: only a new label, or one that already points
    at the version, may name a version that is not AVAILABLE."""
    base = _repo(tmp_path, 1, 2)
    core = ServerCore(loader, allow_labels_for_unavailable=True)
    try:
        core.apply_config(_config(base, (1,), {"stable": 1}), initial=True)
        core.wait_until_settled(timeout=10)
        with pytest.raises(ServingError, match="version 2 of model m"):
            core.apply_config(_config(base, (1, 2), {"stable": 2}))
        assert _available(core) == {1: "AVAILABLE"}
        loader.held[2] = threading.Event()
        core.apply_config(_config(base, (1, 2), {"stable": 1, "canary": 2}), wait_seconds=0)
        assert core.version_for_label("m", "canary") == 2  # new label on a version still LOADING
        assert _available(core)[2] == "LOADING"
        core.apply_config(_config(base, (1, 2), {"stable": 1, "canary": 2}), wait_seconds=0)  # unchanged
        loader.held[2].set()
        core.wait_until_settled(timeout=10)
        assert _available(core) == {2: "AVAILABLE", 1: "AVAILABLE"}
    finally:
        for gate in loader.held.values():
            gate.set()
        core.close()


def test_a_failed_reload_leaves_models_and_labels_as_they_were(core: ServerCore, tmp_path: Path) -> None:
    """The label check fails the reload before any model is added or removed."""
    base = _repo(tmp_path, 1)
    other = tmp_path / "other"
    core.apply_config(_config(base, (1,), {}), initial=True)
    core.wait_until_settled(timeout=10)
    bad = ServerConfig(
        {"n": ModelConfig("n", str(other), labels={"stable": 5})}  # m removed, n added with a bad label
    )
    with pytest.raises(ServingError):
        core.apply_config(bad)
    assert set(core.config.models) == {"m"}
    assert _available(core) == {1: "AVAILABLE"}


class _NeedsSavedModel:
    """Fails like TensorFlow's loader while a version directory has no saved_model.pb yet."""

    def __init__(self) -> None:
        self.attempts: dict[int, int] = {}
        self.tried = threading.Event()

    def __call__(self, name: str, version: int, path: str) -> _Servable:
        self.attempts[version] = self.attempts.get(version, 0) + 1
        if not (Path(path) / "saved_model.pb").exists():
            self.tried.set()
            raise ServingError("NOT_FOUND", f"SavedModel file does not exist at: {path}")
        return _Servable(version)


def test_a_half_copied_version_directory_is_a_version_whose_load_is_retried(tmp_path: Path) -> None:
    """FileSystemStoragePathSource finds versions by directory name alone; LoaderHarness retries a
    failed load --max_num_load_retries times, --load_retry_interval_micros apart."""
    base = _repo(tmp_path, 1)
    (base / "2" / "variables").mkdir(parents=True)  # copy under way: no saved_model.pb yet
    loader = _NeedsSavedModel()
    core = ServerCore(loader, load_retries=50, load_retry_interval=0.05)
    try:
        config = ServerConfig({"m": ModelConfig("m", str(base), policy=VersionPolicy.all())})
        core.apply_config(config, initial=True)
        assert loader.tried.wait(timeout=10)
        assert _available(core).get(2) == "LOADING"
        (base / "2" / "saved_model.pb").write_bytes(b"")  # the copy completes while it retries
        core.wait_until_settled(timeout=10)
        assert _available(core) == {2: "AVAILABLE", 1: "AVAILABLE"}
        assert loader.attempts[2] >= 2
    finally:
        core.close()


def test_without_retries_a_half_copied_version_ends_in_error_and_is_not_reloaded(tmp_path: Path) -> None:
    base = _repo(tmp_path, 1)
    (base / "2").mkdir()
    core = ServerCore(_NeedsSavedModel(), load_retries=0)
    try:
        core.apply_config(
            ServerConfig({"m": ModelConfig("m", str(base), policy=VersionPolicy.all())}), initial=True
        )
        core.wait_until_settled(timeout=10)
        (row,) = [r for r in core.status("m") if r.version == 2]
        assert (row.state, row.error_code) == ("END", "NOT_FOUND")
        assert "SavedModel file does not exist" in row.error_message
        (base / "2" / "saved_model.pb").write_bytes(b"")
        core.poll_filesystem()
        core.wait_until_settled(timeout=10)
        assert [r.state for r in core.status("m") if r.version == 2] == ["END"]
    finally:
        core.close()
