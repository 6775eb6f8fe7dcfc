"""Helpers for tests that run pods on the process node (``tfsctl-process-0``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from kubernetes import client, utils

from support import polling
from tfsbed.cluster.agent import DEFAULT_NODE_NAME, PROCESS_TOLERATION

T = TypeVar("T")

# What PodSecurity "restricted" demands; the agent ignores it (processes run as the agent's user).
POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll ``check`` until it returns something truthy (an API error means not yet)."""
    return polling.wait_for(check, timeout, what, interval, retry_on=(client.ApiException,))


def require_process_node(api: client.ApiClient, timeout: float = 60) -> dict[str, Any]:
    """The process node once Ready; fail with how to get one when it never shows up."""
    core = client.CoreV1Api(api)

    def ready() -> dict[str, Any] | None:
        try:
            node = core.read_node(DEFAULT_NODE_NAME)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        conditions = {c.type: c.status for c in node.status.conditions or []}
        return api.sanitize_for_serialization(node) if conditions.get("Ready") == "True" else None

    try:
        return wait_for(ready, timeout, f"node {DEFAULT_NODE_NAME} Ready")
    except AssertionError:
        pytest.fail(
            f"node {DEFAULT_NODE_NAME} is not Ready: start the local cluster (`tfsctl cluster up`) or run "
            "the agent against your cluster: `python -m tfsbed.cluster.agent --kubeconfig K --state-dir D`",
            pytrace=False,
        )


def pod_spec(containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A restricted-compliant pod spec pinned to the process node (tolerating its taint)."""
    for container in containers:
        container.setdefault("image", "process")
        container.setdefault("securityContext", CONTAINER_SECURITY)
    return {
        "nodeSelector": {"node.tfsctl.dev/type": "process"},
        "tolerations": [dict(PROCESS_TOLERATION)],
        "securityContext": POD_SECURITY,
        "terminationGracePeriodSeconds": 10,
        "containers": containers,
        **extra,
    }


def create(api: client.ApiClient, namespace: str, *manifests: dict[str, Any]) -> None:
    for manifest in manifests:
        utils.create_from_dict(api, manifest, namespace=namespace)


def pods_of(api: client.ApiClient, namespace: str, selector: str) -> list[client.V1Pod]:
    return list(client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector).items)


def is_ready(pod: client.V1Pod) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def wait_ready_pods(api: client.ApiClient, namespace: str, selector: str, count: int, timeout: float = 90):
    def ready() -> list[client.V1Pod] | None:
        pods = [p for p in pods_of(api, namespace, selector) if not p.metadata.deletion_timestamp]
        return pods if len(pods) == count and all(is_ready(p) for p in pods) else None

    return wait_for(ready, timeout, f"{count} ready pods {selector} in {namespace}")


def deployment(name: str, replicas: int, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def http_server(port: int = 8080, directory: str = "/www", **extra: Any) -> dict[str, Any]:
    """A container serving ``directory`` (a mount) with ``python3 -m http.server``."""
    return {
        "name": "web",
        "command": [
            "python3",
            "-m",
            "http.server",
            str(port),
            "--directory",
            f"$(TFSCTL_FS_ROOT){directory}",
        ],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"name": "http", "containerPort": port}],
        **extra,
    }
