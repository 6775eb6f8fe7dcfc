"""The server core: which model versions are served, their states and labels.

Mirrors TF Serving's ServerCore + AspiredVersionsManager closely enough for a
drop-in: the version policy picks *aspired* versions among the integer directories
of each base path; new versions load before old ones unload (availability
preserving); every version moves START -> LOADING -> AVAILABLE -> UNLOADING -> END
(END with an error when loading failed); labels follow ``rules.check_labels`` and are
assigned before the models of a config change, as ``ServerCore::ReloadConfig`` does.
Loading is delegated to a ``loader`` callable given in the constructor, so this
module does not import TensorFlow.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tfsctl.serving.config import ModelConfig, ServerConfig
from tfsctl.serving.rules import ServingError, check_labels, unsupported_base_path, version_dirs

log = logging.getLogger(__name__)

Loader = Callable[[str, int, str], Any]  # (model, version, path) -> servable with .close()


@dataclass
class VersionEntry:
    version: int
    state: str = "START"
    error_code: str = "OK"
    error_message: str = ""
    servable: Any = None


@dataclass
class ModelEntry:
    config: ModelConfig
    versions: dict[int, VersionEntry] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)  # not retried until the directory goes away
    warned_missing: bool = False


class ServerCore:
    """Thread-safe model/version/label state of one server."""

    def __init__(
        self,
        loader: Loader,
        allow_labels_for_unavailable: bool = False,
        load_threads: int = 1,
        load_retries: int = 5,
        load_retry_interval: float = 60.0,
    ) -> None:
        self._loader = loader
        # --max_num_load_retries / --load_retry_interval_micros (LoaderHarness::LoadWithRetries).
        self._load_retries = max(0, load_retries)
        self._load_retry_interval = max(0.0, load_retry_interval)
        self._allow_unavailable = allow_labels_for_unavailable
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._models: dict[str, ModelEntry] = {}
        self._retired: dict[str, dict[int, VersionEntry]] = {}  # states of removed models
        self._labels: dict[str, dict[str, int]] = {}
        self._config = ServerConfig()
        self._executor = ThreadPoolExecutor(max_workers=max(1, load_threads), thread_name_prefix="load")
        self._closed = False

    # ------------------------------------------------------------------ config
    @property
    def config(self) -> ServerConfig:
        with self._lock:
            return self._config

    def apply_config(self, config: ServerConfig, initial: bool = False, wait_seconds: float = 300.0) -> None:
        """Make ``config`` the whole served config; raises ``ServingError`` on a rejected label."""
        for model in config.models.values():
            if model.platform != "tensorflow":
                raise ServingError(
                    "INVALID_ARGUMENT", f"Model platform {model.platform} not found for model {model.name}"
                )
        with self._lock:
            # ServerCore::ReloadConfig assigns labels (UpdateModelVersionLabelMap) before it adds
            # or updates models (AddModelsViaModelConfigList), on the first config and on every
            # reload: a label is checked against what is loaded *now*, and a rejected label fails
            # the whole reload before any model changes.
            self._set_labels(config)
            added = [n for n in config.models if n not in self._models]
            for name in list(self._models):
                if name not in config.models:
                    self._remove_model(name)
            for name, model in config.models.items():
                entry = self._models.get(name)
                if entry is None or entry.config.base_path != model.base_path:
                    if entry is not None:
                        self._remove_model(name)
                    self._models[name] = ModelEntry(model)
                    self._retired.pop(name, None)
                else:
                    entry.config = model
            self._config = config
        self.poll_filesystem()
        if not initial:
            # WaitUntilModelsAvailable: only models new to the config are waited for.
            self.wait_until_settled(added, wait_seconds)

    def _set_labels(self, config: ServerConfig) -> None:
        for name, model in config.models.items():
            states = (
                {v: e.state for v, e in self._models[name].versions.items()} if name in self._models else {}
            )
            check_labels(name, model.labels, self._labels.get(name, {}), states, self._allow_unavailable)
        self._labels = {name: dict(m.labels) for name, m in config.models.items() if m.labels}

    def _remove_model(self, name: str) -> None:
        entry = self._models.pop(name)
        for version in list(entry.versions.values()):
            self._unload(name, version)
        self._retired[name] = entry.versions

    # ------------------------------------------------------------------ versions
    def poll_filesystem(self) -> None:
        """Rescan every base path and start loads/unloads to match the version policies."""
        with self._lock:
            names = list(self._models)
        for name in names:
            with self._lock:
                entry = self._models.get(name)
                if entry is None:
                    continue
                base = entry.config.base_path
            present = self._list_versions(name, base, entry)
            with self._lock:
                if self._models.get(name) is entry:
                    self._reconcile(name, entry, base, present)

    def _list_versions(self, name: str, base: str, entry: ModelEntry) -> list[int]:
        unsupported = unsupported_base_path(base)
        if unsupported is not None:
            log.error("FileSystemStoragePathSource encountered a filesystem access error: %s", unsupported)
            return []
        try:
            names = os.listdir(base)
        except OSError as exc:
            if not entry.warned_missing:
                log.warning("No versions of servable %s found under base path %s: %s", name, base, exc)
                entry.warned_missing = True
            return []
        # FileSystemStoragePathSource: a version is any child whose name parses as a number, whatever
        # it holds; a half-copied directory is a version too (its load fails and is retried).
        ready = version_dirs(names)
        if not ready and not entry.warned_missing:
            log.warning("No versions of servable %s found under base path %s", name, base)
            entry.warned_missing = True
        return ready

    def _reconcile(self, name: str, entry: ModelEntry, base: str, present: list[int]) -> None:
        entry.failed &= set(present)
        aspired = [v for v in entry.config.policy.select(present) if v not in entry.failed]
        for version in aspired:
            current = entry.versions.get(version)
            if current is None or current.state in ("END",):
                vdir = os.path.join(base, _dir_name(base, version))
                new = VersionEntry(version, "LOADING")
                entry.versions[version] = new
                self._executor.submit(self._load, name, entry, new, vdir)
        settled = all(entry.versions[v].state in ("AVAILABLE", "END") for v in aspired if v in entry.versions)
        if settled:
            for version, ventry in list(entry.versions.items()):
                if version not in aspired and ventry.state == "AVAILABLE":
                    self._unload(name, ventry)
        self._changed.notify_all()

    def _load(self, name: str, entry: ModelEntry, ventry: VersionEntry, path: str) -> None:
        log.info("Loading servable: {name: %s version: %s} from %s", name, ventry.version, path)
        attempt = 0
        while True:
            try:
                servable = self._loader(name, ventry.version, path)
                break
            except ServingError as exc:
                code, message = exc.code, exc.message
            except Exception as exc:  # a loader bug must not kill the loading thread
                log.exception("loading %s version %s", name, ventry.version)
                code, message = "UNKNOWN", str(exc)
            if attempt >= self._load_retries or not self._still_loading(name, entry, ventry):
                self._fail(name, entry, ventry, code, message)
                return
            attempt += 1
            log.warning(
                "Retrying load on servable version {name: %s version: %s} (retry %d of %d): %s",
                name,
                ventry.version,
                attempt,
                self._load_retries,
                message,
            )
            with self._lock:
                self._changed.wait_for(lambda: self._closed, timeout=self._load_retry_interval)
        with self._lock:
            if self._closed or self._models.get(name) is not entry or ventry.state != "LOADING":
                servable.close()
                return
            ventry.servable = servable
            ventry.state = "AVAILABLE"
            log.info("Successfully loaded servable version {name: %s version: %s}", name, ventry.version)
            self._changed.notify_all()
        self.poll_filesystem()  # unload versions the new one replaces

    def _still_loading(self, name: str, entry: ModelEntry, ventry: VersionEntry) -> bool:
        with self._lock:
            return not self._closed and self._models.get(name) is entry and ventry.state == "LOADING"

    def _fail(self, name: str, entry: ModelEntry, ventry: VersionEntry, code: str, message: str) -> None:
        log.error("%s", message)
        with self._lock:
            ventry.state, ventry.error_code, ventry.error_message = "END", code, message
            entry.failed.add(ventry.version)
            self._changed.notify_all()

    def _unload(self, name: str, ventry: VersionEntry) -> None:
        if ventry.state in ("AVAILABLE", "LOADING"):
            log.info("Unloading servable version {name: %s version: %s}", name, ventry.version)
        servable, ventry.servable = ventry.servable, None
        ventry.state = "END"
        if servable is not None:
            # Requests holding the servable finish first: sessions close when unreferenced.
            del servable

    def wait_until_settled(self, models: list[str] | None = None, timeout: float | None = None) -> None:
        """Block until every aspired version of ``models`` (default all) is AVAILABLE or failed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                pending = [
                    n
                    for n, e in self._models.items()
                    if (models is None or n in models)
                    and (not e.versions or any(v.state in ("START", "LOADING") for v in e.versions.values()))
                    and not (e.failed and not e.versions)
                ]
                if not pending:
                    return
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                self._changed.wait(timeout=min(remaining or 1.0, 1.0))
                if not self._closed:
                    self._lock.release()
                    try:
                        self.poll_filesystem()
                    finally:
                        self._lock.acquire()

    def load_errors(self) -> list[str]:
        with self._lock:
            return [
                v.error_message
                for e in self._models.values()
                for v in e.versions.values()
                if v.state == "END" and v.error_code != "OK"
            ]

    # ------------------------------------------------------------------ queries
    def version_for_label(self, model: str, label: str) -> int:
        with self._lock:
            version = self._labels.get(model, {}).get(label)
        if version is None:
            raise ServingError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
        return version

    def status(self, model: str, version: int | None = None) -> list[VersionEntry]:
        """GetModelStatus: one version's row, or every version newest first (TF Serving's order).

        There is no label parameter: ``GetModelStatusImpl::GetModelStatusWithModelSpec`` only
        looks at ``model_spec.version``, so a request by label gets every version.
        """
        with self._lock:
            entry = self._models.get(model)
            versions = entry.versions if entry is not None else self._retired.get(model, {})
            if not versions:
                raise ServingError("NOT_FOUND", f"Could not find any versions of model {model}")
            if version is not None:
                if version not in versions:
                    raise ServingError("NOT_FOUND", f"Could not find version {version} of model {model}")
                rows = [versions[version]]
            else:
                rows = [versions[v] for v in sorted(versions, reverse=True)]
            return [VersionEntry(r.version, r.state, r.error_code, r.error_message) for r in rows]

    def servable(self, model: str, version: int | None = None, label: str | None = None) -> Any:
        """The servable a request for ``model`` (version/label) runs on, like GetServableHandle."""
        if label:
            version = self.version_for_label(model, label)
        with self._lock:
            entry = self._models.get(model)
            if entry is not None:
                available = {v: e for v, e in entry.versions.items() if e.state == "AVAILABLE"}
                if version is None and available:
                    return available[max(available)].servable
                if version is not None and version in available:
                    return available[version].servable
        request = f"Latest({model})" if version is None else f"Specific({model}, {version})"
        raise ServingError("NOT_FOUND", f"Servable not found for request: {request}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for name, entry in self._models.items():
                for ventry in entry.versions.values():
                    self._unload(name, ventry)
            self._changed.notify_all()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _dir_name(base: str, version: int) -> str:
    """The directory of ``version`` (names may be zero-padded, e.g. ``00000123``)."""
    try:
        return names_for(os.listdir(base), version)
    except OSError:
        return str(version)


def names_for(names: list[str], version: int) -> str:
    for name in names:
        if name.isdigit() and int(name) == version:
            return name
    return str(version)
