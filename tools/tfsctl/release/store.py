"""Where a fleet's model config lives and who serves it: the seam promote runs against.

``EndpointStore`` is the plain-servers flavour (a model config file shared by
several servers, e.g. ``tfsctl serve`` processes or PAI-EAS services): each
revision is written atomically and pushed to every endpoint. The Kubernetes
flavour (``tfsctl.release.kube.ReleaseStore``) persists through ``helm upgrade``
and finds replicas through the Service's endpoints.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from tfsctl.errors import Conflict, InvalidInput, NotFound
from tfsctl.release import history
from tfsctl.release.history import PromotionRecord
from tfsctl.release.replicas import Replica
from tfsctl.serving.config import ServerConfig

log = logging.getLogger(__name__)


class ConfigStore(Protocol):
    """The persisted model config of a fleet, its replicas, its lock and its history."""

    #: unreachable replicas fail a step at once (fixed endpoints) or are waited for (pods come and go)
    strict: bool
    #: how long a pushed step must hold on every replica before the next one (servers that poll a
    #: file that lags the store re-apply the older file within one poll period); 0 when the file
    #: is written before every push
    settle_seconds: float
    #: whether each step is pushed to the servers (TF Serving's HandleReloadConfigRequest, gRPC
    #: only) after it is written; False where the servers take the written config themselves
    push_reload: bool

    def describe(self) -> str: ...

    def read(self) -> ServerConfig: ...

    def write(self, config: ServerConfig, reason: str) -> ServerConfig:
        """Persist ``config``; return it as the servers will read it."""
        ...

    def replicas(self) -> list[Replica]: ...

    def repository_versions(self, model: str) -> list[int] | None: ...

    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]: ...

    def read_history(self) -> list[PromotionRecord]: ...

    def append_history(self, record: PromotionRecord) -> None: ...

    def revision(self) -> int | None: ...


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def file_lock(path: Path, timeout: float, what: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``; waits up to ``timeout`` seconds, then Conflict."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = Path(path).read_text().strip() or "another tfsctl"
                    raise Conflict(
                        f"{what}: a promotion is in progress ({holder}); waited {timeout:.0f}s"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def list_repository_versions(base_path: Path) -> list[int] | None:
    """Numeric version directories under a local model base path; None when not a local directory."""
    if not base_path.is_dir():
        return None
    return sorted(int(p.name) for p in base_path.iterdir() if p.is_dir() and p.name.isdigit())


class EndpointStore:
    """A model config file shared by plain servers, and the servers' endpoints."""

    strict = True
    settle_seconds = 0.0  # the shared file is replaced before each push: no older file can come back
    push_reload = True  # plain servers may not poll the file: the push is what applies it

    def __init__(self, config_file: Path, replicas: list[Replica]) -> None:
        self.path = Path(config_file)
        self._replicas = replicas
        if not self.path.is_file():
            raise NotFound(f"--model-config {self.path}: no such file")

    def describe(self) -> str:
        return str(self.path)

    def read(self) -> ServerConfig:
        return ServerConfig.parse(self.path.read_text(), source=str(self.path))

    def write(self, config: ServerConfig, reason: str) -> ServerConfig:
        log.info("%s: writing revision (%s)", self.path, reason)
        write_atomic(self.path, config.to_text())
        return config

    def replicas(self) -> list[Replica]:
        return list(self._replicas)

    def repository_versions(self, model: str) -> list[int] | None:
        config = self.read()
        if model not in config.models:
            return None
        base = Path(config.models[model].base_path)
        if not base.is_absolute():
            base = self.path.parent / base
        return list_repository_versions(base)

    def lock(self, timeout: float) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.path.with_name(self.path.name + ".lock"), timeout, str(self.path))

    @property
    def history_path(self) -> Path:
        return self.path.with_name(self.path.name + ".history.json")

    def read_history(self) -> list[PromotionRecord]:
        if not self.history_path.exists():
            return []
        return history.loads(self.history_path.read_text())

    def append_history(self, record: PromotionRecord) -> None:
        write_atomic(self.history_path, history.dumps(history.append(self.read_history(), record)))

    def revision(self) -> int | None:
        return None


def require_model(config: ServerConfig, model: str, where: str) -> None:
    if model not in config.models:
        names = ", ".join(sorted(config.models)) or "none"
        raise NotFound(f"model {model!r} is not in {where} (models: {names})")


def require_label(config: ServerConfig, model: str, label: str, where: str) -> None:
    labels = config.models[model].labels
    if label not in labels:
        names = ", ".join(sorted(labels)) or "none"
        raise NotFound(f"label {label!r} of model {model} is not in {where} (labels: {names})")


__all__ = ["ConfigStore", "EndpointStore", "InvalidInput", "file_lock", "write_atomic"]
