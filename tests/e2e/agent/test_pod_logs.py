"""pods/log through the API server for pods on a process node (kubectl logs, the python client).

Runs a private process node from this working tree (see ``support.agent_private_node``):
the API server reaches its kubelet endpoint exactly as it reaches ``tfsctl-process-0``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from support.agent_node import create, pod_spec, wait_for
from support.agent_private_node import PrivateNode, private_process_node

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("requires_process_node")]

LINES = [f"line {i}" for i in range(6)]
# prints its lines, then stays up (kubectl logs on a running container)
STAY = "import time\nfor i in range(6): print('line', i, flush=True)\ntime.sleep(600)"


@pytest.fixture(scope="module")
def node(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateNode]:
    with private_process_node(cluster.api, cluster.kubeconfig, tmp_path_factory.mktemp("agent")) as node:
        yield node


def pod(name: str, node: PrivateNode, script: str, **extra: Any) -> dict[str, Any]:
    container = {"name": "main", "command": ["python3", "-c", script]}
    spec = pod_spec([container], restartPolicy="Never", **extra)
    spec["nodeSelector"] = node.selector
    spec["terminationGracePeriodSeconds"] = 2
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def logs(api: client.ApiClient, namespace: str, name: str, **kw: Any) -> str:
    return str(client.CoreV1Api(api).read_namespaced_pod_log(name, namespace, _request_timeout=30, **kw))


@pytest.fixture
def running(cluster: Any, namespace: str, node: PrivateNode) -> str:
    create(cluster.api, namespace, pod("talker", node, STAY))
    wait_for(lambda: logs(cluster.api, namespace, "talker").count("\n") >= len(LINES), 90, "talker's 6 lines")
    return namespace


def test_python_client_reads_the_whole_log_and_a_tail(cluster: Any, running: str) -> None:
    assert logs(cluster.api, running, "talker").splitlines() == LINES
    assert logs(cluster.api, running, "talker", tail_lines=2).splitlines() == LINES[-2:]
    assert logs(cluster.api, running, "talker", limit_bytes=4) == "line"


def test_kubectl_logs_returns_the_output_tail_and_timestamps(cluster: Any, running: str) -> None:
    assert cluster.kubectl("logs", "-n", running, "talker").stdout.splitlines() == LINES
    assert cluster.kubectl("logs", "-n", running, "talker", "--tail=3").stdout.splitlines() == LINES[-3:]
    stamped = cluster.kubectl("logs", "-n", running, "talker", "--timestamps", "--tail=1").stdout
    stamp, _, text = stamped.strip().partition(" ")
    assert text == "line 5" and stamp.endswith("Z") and "T" in stamp


def test_kubectl_logs_follow_ends_when_the_container_exits(
    cluster: Any, namespace: str, node: PrivateNode
) -> None:
    script = "import time\nfor i in range(6):\n    print('line', i, flush=True); time.sleep(0.5)"
    create(cluster.api, namespace, pod("ticker", node, script))
    core = client.CoreV1Api(cluster.api)
    wait_for(
        lambda: (core.read_namespaced_pod("ticker", namespace).status.container_statuses or [None])[0],
        60,
        "ticker started",
    )
    wait_for(
        lambda: core.read_namespaced_pod("ticker", namespace).status.phase != "Pending", 60, "ticker running"
    )
    followed = cluster.kubectl("logs", "-n", namespace, "ticker", "-f", timeout=60).stdout
    assert followed.splitlines()[-1] == "line 5"
    assert wait_for(
        lambda: core.read_namespaced_pod("ticker", namespace).status.phase == "Succeeded", 30, "ticker done"
    )
    assert logs(cluster.api, namespace, "ticker").splitlines() == LINES


def test_unknown_container_is_an_error_naming_it(cluster: Any, running: str) -> None:
    done = cluster.kubectl("logs", "-n", running, "talker", "-c", "nope", check=False)
    assert done.returncode != 0
    assert "nope" in done.stderr
