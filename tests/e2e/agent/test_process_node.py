"""The process node runs pods for real: networking, probes, volumes, deletion, LB, metrics."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from support.agent_node import (
    create,
    deployment,
    http_server,
    is_ready,
    pod_spec,
    pods_of,
    require_process_node,
    wait_for,
    wait_ready_pods,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("requires_process_node", "requires_local_loadbalancer"),
]


@pytest.fixture
def api(cluster: Any) -> client.ApiClient:
    require_process_node(cluster.api)
    return cluster.api


def get(url: str, timeout: float = 3) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def web_with_config(name: str, replicas: int, **container: Any) -> list[dict[str, Any]]:
    """A ConfigMap ``<name>`` served over HTTP by a Deployment ``<name>``, ready when /ready exists."""
    spec = pod_spec(
        [
            http_server(
                readinessProbe={"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1},
                volumeMounts=[{"name": "www", "mountPath": "/www"}],
                **container,
            )
        ],
        volumes=[{"name": "www", "configMap": {"name": name}}],
    )
    return [config_map(name, {"ready": "yes", "greeting": "hello v1"}), deployment(name, replicas, spec)]


def test_deployment_pods_become_ready_with_pod_ip_reachable_from_host(
    api: client.ApiClient, namespace: str
) -> None:
    create(api, namespace, *web_with_config("web", 2))
    pods = wait_ready_pods(api, namespace, "app=web", 2)
    for pod in pods:
        assert pod.spec.node_name == "tfsctl-process-0"
        assert pod.status.pod_ip.startswith("10.244.100.")
        assert pod.status.host_ip == "127.0.0.1"
        assert get(f"http://{pod.status.pod_ip}:8080/greeting") == (200, "hello v1")
    assert len({p.status.pod_ip for p in pods}) == 2


def test_readiness_failure_flips_ready_and_back(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    create(api, namespace, *web_with_config("flip", 1))
    (pod,) = wait_ready_pods(api, namespace, "app=flip", 1)
    core.replace_namespaced_config_map("flip", namespace, config_map("flip", {"greeting": "no ready file"}))
    wait_for(
        lambda: not is_ready(core.read_namespaced_pod(pod.metadata.name, namespace)), 30, "pod not Ready"
    )
    core.replace_namespaced_config_map("flip", namespace, config_map("flip", {"ready": "yes"}))
    wait_for(lambda: is_ready(core.read_namespaced_pod(pod.metadata.name, namespace)), 30, "pod Ready again")
    assert (
        core.read_namespaced_pod(pod.metadata.name, namespace).status.container_statuses[0].restart_count == 0
    )


def test_config_map_update_appears_in_mounted_dir_without_restart(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    create(api, namespace, *web_with_config("cfg", 1))
    (pod,) = wait_ready_pods(api, namespace, "app=cfg", 1)
    url = f"http://{pod.status.pod_ip}:8080/greeting"
    core.patch_namespaced_config_map("cfg", namespace, {"data": {"greeting": "hello v2"}})
    wait_for(lambda: get(url) == (200, "hello v2"), 20, "the new ConfigMap content over HTTP")
    status = core.read_namespaced_pod(pod.metadata.name, namespace).status
    assert status.container_statuses[0].restart_count == 0


@pytest.fixture
def host_volume(api: client.ApiClient, namespace: str, tmp_path: Path):
    """A PVC in ``namespace`` bound to a hostPath PV on ``tmp_path`` (the claim is named ``data``)."""
    core = client.CoreV1Api(api)
    pv_name = f"{namespace}-data"
    tmp_path.chmod(0o777)
    core.create_persistent_volume({
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": str(tmp_path)},
                 "claimRef": {"namespace": namespace, "name": "data"}},
    })  # fmt: skip
    core.create_namespaced_persistent_volume_claim(namespace, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": pv_name,
                 "resources": {"requests": {"storage": "1Gi"}}},
    })  # fmt: skip
    yield tmp_path
    core.delete_persistent_volume(pv_name)


def test_deletion_runs_pre_stop_then_sigterm_within_grace_period(
    api: client.ApiClient, namespace: str, host_volume: Path
) -> None:
    core = client.CoreV1Api(api)
    log = '"$TFSCTL_FS_ROOT/data/events"'
    container = {
        "name": "main",
        "command": ["sh", "-c", f"trap 'echo TERM >> {log}; exit 0' TERM; echo START >> {log}; "
                    "while true; do sleep 0.2; done"],
        "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", f"echo PRESTOP >> {log}; sleep 2"]}}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }  # fmt: skip
    spec = pod_spec([container], volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}])
    create(
        api, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "graceful"}, "spec": spec}
    )
    events = host_volume / "events"
    wait_for(lambda: events.exists() and "START" in events.read_text(), 60, "the pod to start")
    core.delete_namespaced_pod("graceful", namespace)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("graceful", namespace)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, 30, "the pod object to be deleted by the agent")
    assert events.read_text().split() == ["START", "PRESTOP", "TERM"]


def test_crashing_container_is_restarted_and_run_once_pods_finish(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    crash = pod_spec([{"name": "crash", "command": ["sh", "-c", "sleep 1; exit 3"]}])
    once = pod_spec([{"name": "once", "command": ["sh", "-c", "exit 0"]}], restartPolicy="Never")
    failing = pod_spec([{"name": "fail", "command": ["sh", "-c", "exit 2"]}], restartPolicy="Never")
    create(api, namespace, *({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n}, "spec": s}
                             for n, s in (("crash", crash), ("once", once), ("fail", failing))))  # fmt: skip

    def restarted() -> client.V1ContainerStatus | None:
        statuses = core.read_namespaced_pod("crash", namespace).status.container_statuses or []
        return statuses[0] if statuses and statuses[0].restart_count >= 1 else None

    status = wait_for(restarted, 60, "the crashing container to be restarted")
    assert status.last_state.terminated.exit_code == 3
    phase = lambda name: core.read_namespaced_pod(name, namespace).status.phase  # noqa: E731
    assert wait_for(
        lambda: phase("once") if phase("once") in ("Succeeded", "Failed") else None, 60, "once"
    ) == ("Succeeded")
    assert wait_for(
        lambda: phase("fail") if phase("fail") in ("Succeeded", "Failed") else None, 60, "fail"
    ) == ("Failed")


def test_load_balancer_service_gets_loopback_ip_and_balances_over_both_replicas(
    api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    writer = {
        "name": "name",
        "command": ["sh", "-c", 'echo -n "$POD_NAME" > "$TFSCTL_FS_ROOT/www/name"'],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "volumeMounts": [{"name": "www", "mountPath": "/www"}],
        "image": "process",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    spec = pod_spec(
        [http_server(volumeMounts=[{"name": "www", "mountPath": "/www"}])],
        initContainers=[writer],
        volumes=[{"name": "www", "emptyDir": {}}],
    )
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "selector": {"app": "lb"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }  # fmt: skip
    create(api, namespace, deployment("lb", 2, spec), service)
    pods = wait_ready_pods(api, namespace, "app=lb", 2)

    def ingress_ip() -> str | None:
        ingress = core.read_namespaced_service("lb", namespace).status.load_balancer.ingress
        return ingress[0].ip if ingress else None

    ip = wait_for(ingress_ip, 30, "the LoadBalancer ingress IP")
    assert ip.startswith("127.0.100.")
    expected = {p.metadata.name for p in pods}

    def both_seen() -> set[str] | None:
        seen = {get(f"http://{ip}:80/name")[1] for _ in range(6)}
        return seen if seen == expected else None

    assert wait_for(both_seen, 30, f"responses from both replicas through {ip}") == expected


def test_metrics_api_reports_cpu_of_process_pods(api: client.ApiClient, namespace: str) -> None:
    burn = "import time\nwhile True:\n    sum(range(200000))\n    time.sleep(0.05)\n"
    spec = pod_spec([{"name": "burn", "command": ["python3", "-c", burn]}])
    create(api, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "burn"}, "spec": spec})
    custom = client.CustomObjectsApi(api)

    def usage() -> dict[str, Any] | None:
        try:
            metrics = custom.get_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", namespace, "pods", "burn"
            )
        except client.ApiException as exc:
            if exc.status in (404, 503):
                return None
            raise
        containers = metrics.get("containers") or []
        return containers[0]["usage"] if containers else None

    found = wait_for(usage, 120, "metrics.k8s.io usage of pod burn", interval=2)
    assert found["cpu"] not in ("0", "0n")
    assert int(found["memory"].rstrip("Ki")) > 0


def test_pod_ip_accepts_tcp_from_host_only_while_pod_runs(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    create(api, namespace, *web_with_config("tcp", 1))
    (pod,) = wait_ready_pods(api, namespace, "app=tcp", 1)
    with socket.create_connection((pod.status.pod_ip, 8080), timeout=3):
        pass
    client.AppsV1Api(api).patch_namespaced_deployment_scale("tcp", namespace, {"spec": {"replicas": 0}})
    wait_for(lambda: not pods_of(api, namespace, "app=tcp"), 30, "the pod to be gone after scale to 0")
    with pytest.raises(OSError):
        socket.create_connection((pod.status.pod_ip, 8080), timeout=2).close()
    assert core.list_namespaced_pod(namespace, label_selector="app=tcp").items == []
