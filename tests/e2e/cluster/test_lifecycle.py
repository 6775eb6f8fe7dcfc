"""``up``/``down`` of a second, throw-away local cluster: port clashes, stale state, clean removal."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tfsbed.cluster import spec as cspec
from tfsbed.cluster.local import LocalCluster
from tfsctl.errors import Conflict

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BASE = 27500  # away from the shared cluster (26400) and the external-cluster test (27400)


def _processes_under(path: Path) -> list[int]:
    out = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(str(path) in part for part in proc.info.get("cmdline") or []):
            out.append(proc.info["pid"])
    return out


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[LocalCluster]:
    lc = LocalCluster(
        cspec.ClusterSpec(name="tfsctl-scratch", ports=cspec.Ports(BASE), real_nodes=0),
        state_dir=tmp_path / "state",
        kubeconfig=tmp_path / "kubeconfig",
    )
    yield lc
    lc.down(timeout=20)


def _listen(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_up_refuses_a_taken_port_naming_it_and_starts_nothing(scratch: LocalCluster) -> None:
    port = scratch.spec.ports.apiserver
    with _listen(port), pytest.raises(Conflict, match=rf"port {port} for kube-apiserver .*--port-base"):
        scratch.up(timeout=60)
    assert not scratch.exists()
    assert _processes_under(scratch.state_dir) == []


def test_stale_cluster_is_restarted_or_refused_with_the_way_out_and_down_removes_all(
    scratch: LocalCluster,
) -> None:
    first = scratch.up(timeout=180)
    assert first.created and first.status.state == "running"
    apiserver = next(c for c in first.status.components if c.name == "kube-apiserver")
    assert apiserver.pid is not None
    os.kill(apiserver.pid, signal.SIGKILL)
    psutil.Process(apiserver.pid).wait(timeout=10)
    assert scratch.status().state == "degraded"

    with _listen(scratch.spec.ports.apiserver), pytest.raises(Conflict, match=r"stale .*tfsctl cluster down"):
        scratch.up(timeout=60)

    again = scratch.up(timeout=180)
    assert not again.created
    assert again.status.state == "running"
    assert all(c.running for c in again.status.components)

    stopped = scratch.down(timeout=20)
    assert "kube-apiserver" in stopped and "etcd" in stopped
    assert scratch.status().state == "absent"
    assert not scratch.kubeconfig.exists()
    assert _processes_under(scratch.state_dir) == []
