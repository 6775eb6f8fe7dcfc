"""``LocalServer``: a real ``tfsctl serve`` process for tests and benchmarks.

    with LocalServer(model_name="hp2", base_path=path) as server:
        with server.client() as client:
            client.predict("hp2", [1.0, 2.0])

Starts ``python -m tfsctl serve`` on free loopback ports, waits until every model
has an AVAILABLE version (bounded), and stops it with SIGTERM (``stop()`` returns
the exit status). The child gets SIGTERM if the test process dies, so no server
outlives its test run.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfsctl.errors import Timeout, ToolkitError
from tfsctl.serving.client import Endpoint, ServingClient
from tfsctl.serving.config import ServerConfig

TOOLS_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class LocalServer:
    """A ``tfsctl serve`` child process; a context manager."""

    def __init__(
        self,
        model_name: str | None = None,
        base_path: str | Path | None = None,
        config: ServerConfig | str | Path | None = None,
        flags: Sequence[str] = (),
        config_poll_seconds: int = 0,
        fs_poll_seconds: int = 1,
        allow_labels_for_unavailable: bool = False,
        wait_models: bool = True,
        start_timeout: float = 240.0,
        env: dict[str, str] | None = None,
        workdir: str | Path | None = None,
    ) -> None:
        if (config is None) == (base_path is None):
            raise ValueError("give either config or model_name + base_path")
        self._tmp = tempfile.TemporaryDirectory(prefix="tfsctl-serve-")
        self.workdir = Path(workdir) if workdir else Path(self._tmp.name)
        self.grpc_port = free_port()
        self.rest_port = free_port()
        while self.rest_port == self.grpc_port:
            self.rest_port = free_port()
        self.config_file: Path | None = None
        if isinstance(config, ServerConfig):
            self.config_file = self.workdir / "model_config.pbtxt"
            self.config_file.write_text(config.to_text())
        elif config is not None:
            self.config_file = Path(config)
        self.models = self._model_names(model_name, config)
        args = [f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}"]
        if self.config_file is not None:
            args += [f"--model_config_file={self.config_file}"]
            args += [f"--model_config_file_poll_wait_seconds={config_poll_seconds}"]
        else:
            args += [f"--model_name={model_name}", f"--model_base_path={base_path}"]
        args += [f"--file_system_poll_wait_seconds={fs_poll_seconds}"]
        if allow_labels_for_unavailable:
            args += ["--allow_version_labels_for_unavailable_models=true"]
        # CPU is scarce on shared machines: one TF thread pool thread each unless told otherwise.
        if not any("parallelism" in f for f in flags):
            args += ["--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=1"]
        self.args = [*args, *flags]
        self.env = env
        self.wait_models = wait_models
        self.start_timeout = start_timeout
        self.log_path = self.workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _model_names(model_name: str | None, config: ServerConfig | str | Path | None) -> list[str]:
        if isinstance(config, ServerConfig):
            return list(config.models)
        if config is not None:
            try:
                return list(ServerConfig.parse(Path(config).read_text()).models)
            except (OSError, ToolkitError):
                return []
        return [model_name or "default"]

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.grpc_port, self.rest_port)

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("server not started")
        return self.process.pid

    def client(self, timeout: float = 30.0) -> ServingClient:
        return ServingClient(self.endpoint, timeout=timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOOLS_DIR), env.get("PYTHONPATH", "")]))
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env.update(self.env or {})
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tfsctl", "serve", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        log.close()
        try:
            self.wait_ready(self.start_timeout)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self, timeout: float) -> None:
        """Until the REST port answers and (with ``wait_models``) every model has an AVAILABLE version."""
        deadline = time.monotonic() + timeout
        with ServingClient(self.endpoint, timeout=5.0) as client:
            while True:
                if self.process is not None and self.process.poll() is not None:
                    raise ToolkitError(
                        f"tfsctl serve exited with status {self.process.returncode} during start-up:\n"
                        + self.log_text()[-3000:]
                    )
                if self._ready(client):
                    return
                if time.monotonic() > deadline:
                    raise Timeout(f"tfsctl serve not ready within {timeout:g}s:\n" + self.log_text()[-3000:])
                time.sleep(0.3)

    def _ready(self, client: ServingClient) -> bool:
        models = self.models if self.wait_models else self.models[:1]
        try:
            for model in models:
                rows = client.model_status(model, transport="rest")
                if self.wait_models and not any(r.state == "AVAILABLE" for r in rows):
                    return False
        except ToolkitError as exc:
            # Any answer from the server means it listens; without wait_models that is enough.
            return not self.wait_models and "cannot reach" not in str(exc)
        return True

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, wait (bounded), SIGKILL if needed; returns the exit status."""
        process, status = self.process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            status = process.returncode
        return status

    def cleanup(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __del__(self) -> None:
        process: Any = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            process.kill()
