"""Several real ``tfsctl serve`` processes sharing one model config file, and a probe.

Used by the release e2e tests and the release benchmark (endpoint mode); it lives in
the test bed, not under ``tests/``, because the benchmark needs it and nothing under
``tools/`` imports from ``tests/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tfsbed import REPO_ROOT
from tfsctl.serving.client import Endpoint, ServingClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def model_config_text(
    base: Path, versions: tuple[int, ...], labels: dict[str, int], name: str = "fashion"
) -> str:
    vs = " ".join(f"versions: {v}" for v in versions)
    ls = "\n".join(f'    version_labels {{ key: "{k}" value: {v} }}' for k, v in sorted(labels.items()))
    return (
        "model_config_list {\n  config {\n"
        f'    name: "{name}"\n    base_path: "{base / name}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ {vs} }} }}\n{ls}\n  }}\n}}\n"
    )


@dataclass
class Server:
    """One ``python -m tfsctl serve`` process on free loopback ports."""

    config_file: Path
    poll_seconds: int = 1
    grpc_port: int = field(default_factory=free_port)
    rest_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}:{self.rest_port}"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.grpc_port, self.rest_port)

    def start(self) -> None:
        self.log = self.config_file.parent / f"server-{self.grpc_port}.log"
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "tools"))
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tfsctl",
                "serve",
                f"--port={self.grpc_port}",
                f"--rest_api_port={self.rest_port}",
                f"--model_config_file={self.config_file}",
                f"--model_config_file_poll_wait_seconds={self.poll_seconds}",
                # Like tensorflow_model_server, tfsctl serve assigns labels before anything has
                # loaded at start-up; a server restarted on a labelled config needs this flag.
                "--allow_version_labels_for_unavailable_models=true",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
        )

    def wait_available(self, model: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        with ServingClient(self.endpoint, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"tfsctl serve exited {self.proc.returncode}; log {self.log}")
                try:
                    if any(s.state == "AVAILABLE" for s in client.model_status(model)):
                        return
                except Exception as exc:
                    last = str(exc)
                time.sleep(0.3)
        raise TimeoutError(
            f"{self.address}: {model} not AVAILABLE within {timeout}s ({last}); log {self.log}"
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@contextlib.contextmanager
def fleet(config_file: Path, count: int, model: str = "fashion") -> Iterator[list[Server]]:
    servers = [Server(config_file) for _ in range(count)]
    try:
        for s in servers:
            s.start()
        for s in servers:
            s.wait_available(model)
        yield servers
    finally:
        for s in servers:
            s.stop()


def endpoints_flag(servers: list[Server]) -> str:
    return ",".join(s.address for s in servers)


class Probe(threading.Thread):
    """Sends predict requests to ``/v1/models/<m>/labels/<label>`` round-robin until stopped."""

    def __init__(self, servers: list[Server], model: str = "fashion", label: str = "stable") -> None:
        super().__init__(daemon=True, name="probe")
        self.urls = [
            f"http://127.0.0.1:{s.rest_port}/v1/models/{model}/labels/{label}:predict" for s in servers
        ]
        self.body = json.dumps({"instances": [[[[0.5]] * 28] * 28]}).encode()
        self.ok = 0
        self.failed: list[str] = []
        self.skip: set[str] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        i = 0
        while not self._stop_event.is_set():
            url = self.urls[i % len(self.urls)]
            i += 1
            if url in self.skip:
                continue
            req = urllib.request.Request(url, self.body, {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    json.loads(resp.read())
                self.ok += 1
            except (urllib.error.URLError, OSError, ValueError) as exc:
                if url not in self.skip:
                    self.failed.append(f"{url}: {exc}")
            self._stop_event.wait(0.01)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(30)
