"""The kubelet endpoint's /containerLogs over HTTPS, fed by real processes through the agent's copier."""

from __future__ import annotations

import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tfsbed.cluster.agent.runtime import copy_output, index_path, previous_log_path, rotate_log
from tfsbed.cluster.agent.server import KubeletServer, LogHandle
from tfsctl.errors import NotFound

INSECURE = ssl._create_unverified_context()  # the API server does not verify the kubelet either


class Runs:
    """Container runs of pod ns/web container main: each one a real process writing through the copier."""

    def __init__(self, log_dir: Path) -> None:
        self.path = log_dir / "ns_web_main.log"
        self.copier: threading.Thread | None = None
        self.started = 0.0

    def start(self, script: str) -> subprocess.Popen[bytes]:
        rotate_log(self.path)
        proc = subprocess.Popen(
            [sys.executable, "-u", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        self.started = time.time()
        self.copier = threading.Thread(target=copy_output, args=(proc.stdout, self.path), daemon=True)
        self.copier.start()
        return proc

    def provide(self, namespace: str, pod: str, container: str, previous: bool) -> LogHandle:
        if (namespace, pod) != ("ns", "web"):
            raise NotFound(f"pod {namespace}/{pod} is not running on node test")
        if container != "main":
            raise NotFound(f"container {container} is not valid for pod {pod}")
        assert self.copier is not None
        if previous:
            prev = previous_log_path(self.path)
            return LogHandle(prev, index_path(prev), lambda: False, 0.0)
        return LogHandle(self.path, index_path(self.path), self.copier.is_alive, self.started)


@pytest.fixture
def runs(tmp_path: Path) -> Runs:
    return Runs(tmp_path / "logs")


@pytest.fixture
def base(runs: Runs, tmp_path: Path) -> Iterator[str]:
    server = KubeletServer("127.0.0.1", 0, tmp_path / "pki", lambda: "", runs.provide)
    server.start()
    yield f"https://127.0.0.1:{server.port}"
    server.stop()


def get(url: str, timeout: float = 20) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=INSECURE) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def finished(runs: Runs, proc: subprocess.Popen[bytes]) -> None:
    proc.wait(timeout=20)
    assert runs.copier is not None
    runs.copier.join(timeout=20)


def test_logs_return_the_container_output_and_tail(runs: Runs, base: str) -> None:
    finished(runs, runs.start("for i in range(5): print('line', i)"))
    url = f"{base}/containerLogs/ns/web/main"
    assert get(url) == (200, b"".join(f"line {i}\n".encode() for i in range(5)))
    assert get(url + "?tailLines=2") == (200, b"line 3\nline 4\n")
    assert get(url + "?limitBytes=3") == (200, b"lin")


def test_timestamps_date_each_line_at_its_arrival(runs: Runs, base: str) -> None:
    before = time.time()
    finished(runs, runs.start("print('hello')"))
    status, body = get(f"{base}/containerLogs/ns/web/main?timestamps=true")
    stamp, _, rest = body.decode().partition(" ")
    from tfsbed.cluster.agent.logs import parse_rfc3339

    assert status == 200 and rest == "hello\n"
    assert before - 1 <= parse_rfc3339(stamp) <= time.time() + 1


def test_follow_streams_until_the_container_exits(runs: Runs, base: str) -> None:
    proc = runs.start("import time\nfor i in range(3):\n    print('tick', i); time.sleep(0.3)")
    status, body = get(f"{base}/containerLogs/ns/web/main?follow=true")
    assert status == 200
    assert body == b"tick 0\ntick 1\ntick 2\n"
    assert proc.wait(timeout=10) == 0


def test_previous_returns_the_last_run_after_a_restart(runs: Runs, base: str) -> None:
    finished(runs, runs.start("print('first run')"))
    finished(runs, runs.start("print('second run')"))
    assert get(f"{base}/containerLogs/ns/web/main") == (200, b"second run\n")
    assert get(f"{base}/containerLogs/ns/web/main?previous=true") == (200, b"first run\n")


def test_unknown_pods_and_containers_are_404_naming_them(runs: Runs, base: str) -> None:
    finished(runs, runs.start("print('x')"))
    status, body = get(f"{base}/containerLogs/ns/other/main")
    assert status == 404 and b"pod ns/other" in body
    status, body = get(f"{base}/containerLogs/ns/web/side")
    assert status == 404 and b"container side" in body


def test_bad_query_is_400_naming_the_parameter(runs: Runs, base: str) -> None:
    finished(runs, runs.start("print('x')"))
    status, body = get(f"{base}/containerLogs/ns/web/main?tailLines=-3")
    assert status == 400 and b"tailLines" in body
