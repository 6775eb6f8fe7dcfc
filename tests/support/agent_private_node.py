"""A private process node for e2e tests of the agent code in this working tree.

The cluster's own ``tfsctl-process-0`` agent is long-running (started by ``tfsctl
cluster up``) and may run older code; restarting it would kill everyone's pods.
``private_process_node`` starts a second agent from this tree on its own bridge,
pod CIDR, LoadBalancer range and kubelet port, with a node type label of its own
(``node.tfsctl.dev/type: <node name>``) so no other workload lands on it (pods
also need ``tolerations``: the agent taints every process node), and
removes the agent, the Node and the bridge afterwards.

Pods on different bridges do not reach each other (the host does not forward),
so a test puts everything that must talk (server and clients) on the same node.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from support.agent_node import wait_for
from tfsbed.cluster.agent import NODE_TYPE_LABEL, PROCESS_TOLERATION
from tfsctl import paths


@dataclass(frozen=True)
class PrivateNode:
    name: str
    pod_cidr: str
    log: Path

    @property
    def selector(self) -> dict[str, str]:
        return {NODE_TYPE_LABEL: self.name}

    @property
    def tolerations(self) -> list[dict[str, str]]:
        """Every agent taints its node ``node.tfsctl.dev/process=true:NoSchedule``."""
        return [dict(PROCESS_TOLERATION)]


def _free_slot() -> int:
    """A /24 (10.244.<n>.0, 127.0.<n>.0) and bridge tfsbr<n> no other agent on this host uses."""
    used = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=15).stdout
    start = 110 + os.getpid() % 80
    for n in [*range(start, 200), *range(110, start)]:
        if f" tfsbr{n}:" not in used:
            return n
    raise AssertionError("no free bridge tfsbr110..199 for a private process node")


@contextmanager
def private_process_node(api: client.ApiClient, kubeconfig: Path, state_dir: Path) -> Iterator[PrivateNode]:
    n = _free_slot()
    name = f"tfsctl-process-t{n}"
    node = PrivateNode(name=name, pod_cidr=f"10.244.{n}.0/24", log=state_dir / "agent.log")
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "tfsbed.cluster.agent", "--kubeconfig", str(kubeconfig),
        "--state-dir", str(state_dir), "--node-name", name, "--node-type", name,
        "--bridge", f"tfsbr{n}", "--pod-cidr", node.pod_cidr, "--lb-cidr", f"127.0.{n}.0/24",
        "--metrics-port", "0", "--shutdown-grace", "10",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(paths.REPO_ROOT / "tools"), os.environ.get("PYTHONPATH", "")]),
    }
    with node.log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    core = client.CoreV1Api(api)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(
                    f"private process node agent exited {proc.returncode}: {node.log.read_text()[-1500:]}",
                    pytrace=False,
                )
            try:
                conditions = {c.type: c.status for c in core.read_node(name).status.conditions or []}
            except client.ApiException:
                return False
            return conditions.get("Ready") == "True"

        wait_for(ready, 60, f"private node {name} Ready")
        yield node
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        with suppress(client.ApiException):
            core.delete_node(name)
        with suppress(client.ApiException):
            client.CoordinationV1Api(api).delete_namespaced_lease(name, "kube-node-lease")
        subprocess.run(["ip", "link", "delete", f"tfsbr{n}"], capture_output=True, timeout=15)
