"""Faults of ``cluster up --real-nodes``: one clear line each, and nothing half-started left.

Port base 30500, away from the shared cluster and from ``test_real_node.py``. Needs root.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tfsbed.cluster import spec as cspec
from tfsbed.cluster.local import LocalCluster
from tfsbed.cluster.node import config as nconfig
from tfsctl.errors import Conflict, Unavailable

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BASE = 30500
PLAN = nconfig.plan(BASE, 1)


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[LocalCluster]:
    if os.geteuid() != 0:
        pytest.fail("the real node needs root (namespaces, cgroups, interfaces): run this test as root")
    lc = LocalCluster(
        cspec.ClusterSpec(ports=cspec.Ports(BASE), real_nodes=1, addons=()),
        state_dir=tmp_path / "state",
        kubeconfig=tmp_path / "kubeconfig",
    )
    yield lc
    lc.down(timeout=20)


def _nothing_of_ours_left(lc: LocalCluster) -> None:
    node = PLAN.nodes[0]
    assert [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(str(lc.state_dir) in part for part in p.info.get("cmdline") or [])
    ] == []
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{node.cgroup}"))
    assert not Path(f"/run/netns/{node.netns}").exists()
    assert not Path(f"/sys/class/net/{PLAN.uplink.bridge}").exists()
    assert node.pod_cidr not in subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert not lc.exists()


def test_a_taken_registry_port_is_named_before_anything_starts(scratch: LocalCluster) -> None:
    port = BASE + nconfig.REGISTRY_PORT_OFFSET
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen()
        with pytest.raises(Conflict, match=rf"port {port} for the local registry is already in use"):
            scratch.up(timeout=120)
    _nothing_of_ours_left(scratch)


def test_a_kubelet_that_exits_is_named_with_its_log_and_the_start_is_undone(
    scratch: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "kubelet"
    fake.write_text("#!/bin/sh\necho 'E0000 run.go:72] command failed: injected fault' >&2\nexit 1\n")
    fake.chmod(0o755)
    real_ensure = LocalCluster._ensure_node_binaries

    def broken(self: LocalCluster, k8s: Path) -> object:
        return dataclasses.replace(real_ensure(self, k8s), kubelet=fake)

    monkeypatch.setattr(LocalCluster, "_ensure_node_binaries", broken)
    with pytest.raises(
        Unavailable, match=r"tfsctl-node-0/kubelet exited: .*injected fault \(log: .*kubelet\.log\)"
    ):
        scratch.up(timeout=180)
    _nothing_of_ours_left(scratch)
