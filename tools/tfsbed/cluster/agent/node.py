"""The Node object of the process node and its heartbeats (status + Lease in kube-node-lease)."""

from __future__ import annotations

import logging
import os
import platform
import threading
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from . import NODE_TYPE_LABEL, PROCESS_TAINT
from .kube import MERGE_PATCH, now_rfc3339

log = logging.getLogger(__name__)

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40
RENEW_SECONDS = 10.0
STATUS_SECONDS = 30.0
CAPACITY = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}


def arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)


def node_labels(name: str, node_type: str = "process") -> dict[str, str]:
    return {
        NODE_TYPE_LABEL: node_type,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch(),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": arch(),
        "type": "process",
    }


def with_process_taint(taints: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """``taints`` plus the process-node taint, or None when it is already there (pure)."""
    key, effect = PROCESS_TAINT["key"], PROCESS_TAINT["effect"]
    if any(
        t.get("key") == key and t.get("effect") == effect and t.get("value") == PROCESS_TAINT["value"]
        for t in taints
    ):
        return None
    kept = [t for t in taints if not (t.get("key") == key and t.get("effect") == effect)]
    return [*kept, dict(PROCESS_TAINT)]


def node_status(host_ip: str, port: int, ready: bool, reason: str = "KubeletReady") -> dict[str, Any]:
    stamp = now_rfc3339()

    def cond(ctype: str, status: str, why: str, message: str) -> dict[str, Any]:
        return {
            "type": ctype,
            "status": status,
            "reason": why,
            "message": message,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }

    uname = os.uname()
    return {
        "capacity": CAPACITY,
        "allocatable": CAPACITY,
        "conditions": [
            cond(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond(
                "Ready",
                "True" if ready else "False",
                reason,
                "process node agent is posting ready status" if ready else "process node agent stopped",
            ),
        ],
        "addresses": [{"type": "InternalIP", "address": host_ip}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {
            "architecture": arch(),
            "operatingSystem": "linux",
            "osImage": "tfsctl process node",
            "kernelVersion": uname.release,
            "kubeletVersion": "v1.35.4",
            "kubeProxyVersion": "",
            "containerRuntimeVersion": "process://tfsctl",
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
        },
    }


class NodeKeeper:
    """Registers the node and keeps it Ready while the agent runs."""

    def __init__(
        self,
        api: client.ApiClient,
        name: str,
        pod_cidr: str,
        host_ip: str,
        port: int,
        stop: threading.Event,
        node_type: str = "process",
    ) -> None:
        self.api_client = api
        self.core: Any = client.CoreV1Api(api)  # dict bodies: the typed stubs want models
        self.coordination: Any = client.CoordinationV1Api(api)
        self.name = name
        self.pod_cidr = pod_cidr
        self.host_ip = host_ip
        self.port = port
        self.stop = stop
        self.node_type = node_type
        self.uid = ""
        self.thread = threading.Thread(target=self._run, name="node-heartbeat", daemon=True)

    def register(self) -> None:
        labels = node_labels(self.name, self.node_type)
        try:
            node = self.core.read_node(self.name, _request_timeout=15)
            patch: dict[str, Any] = {"metadata": {"labels": labels}}
            if (node.metadata.annotations or {}).get(KWOK_ANNOTATION) is not None:
                patch["metadata"]["annotations"] = {KWOK_ANNOTATION: None}
            spec: dict[str, Any] = {}
            if not node.spec.pod_cidr:
                spec |= {"podCIDR": self.pod_cidr, "podCIDRs": [self.pod_cidr]}
            existing = self.api_client.sanitize_for_serialization(node.spec.taints or [])
            taints = with_process_taint(existing)
            if taints is not None:  # a merge patch replaces the list: send all of them
                spec["taints"] = taints
            if spec:
                patch["spec"] = spec
            node = self.core.patch_node(self.name, patch, _content_type=MERGE_PATCH, _request_timeout=15)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": self.name, "labels": labels},
                "spec": {
                    "podCIDR": self.pod_cidr,
                    "podCIDRs": [self.pod_cidr],
                    "taints": [dict(PROCESS_TAINT)],
                },
                "status": node_status(self.host_ip, self.port, True),
            }
            node = self.core.create_node(body, _request_timeout=15)
            log.info("registered node %s", self.name)
        self.uid = node.metadata.uid
        self.post_status(True)
        self.renew_lease()

    def start(self) -> None:
        self.thread.start()

    def post_status(self, ready: bool, reason: str = "KubeletReady") -> None:
        self.core.patch_node_status(
            self.name,
            {"status": node_status(self.host_ip, self.port, ready, reason)},
            _content_type=MERGE_PATCH,
            _request_timeout=15,
        )

    def renew_lease(self) -> None:
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": LEASE_SECONDS,
            "renewTime": now_rfc3339(True),
        }
        try:
            self.coordination.patch_namespaced_lease(
                self.name, LEASE_NAMESPACE, {"spec": spec}, _content_type=MERGE_PATCH, _request_timeout=10
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {
                "metadata": {
                    "name": self.name,
                    "namespace": LEASE_NAMESPACE,
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}
                    ],
                },
                "spec": spec,
            }
            self.coordination.create_namespaced_lease(LEASE_NAMESPACE, body, _request_timeout=10)

    def _run(self) -> None:
        since_status = 0.0
        while not self.stop.wait(RENEW_SECONDS):
            since_status += RENEW_SECONDS
            try:
                self.renew_lease()
                if since_status >= STATUS_SECONDS:
                    since_status = 0.0
                    self.post_status(True)
            except ApiException as exc:
                if exc.status == 404:  # someone deleted the node: register it again
                    try:
                        self.register()
                    except (ApiException, HTTPError, OSError) as again:
                        log.warning("node %s re-registration failed: %s", self.name, again)
                else:
                    log.warning("node %s heartbeat failed: %s", self.name, exc)
            except (HTTPError, OSError) as exc:
                log.warning("node %s heartbeat failed: %s", self.name, exc)
