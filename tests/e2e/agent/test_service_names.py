"""Pods on the process node reach Services by their DNS names (service VIP + /etc/hosts)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from support.agent_node import (
    create,
    deployment,
    http_server,
    pod_spec,
    require_process_node,
    wait_for,
    wait_ready_pods,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("requires_process_node")]

CLIENT_SCRIPT = """
set -eu
for name in web web.$NS web.$NS.svc web.$NS.svc.cluster.local; do
  body=$(curl -sS --max-time 5 --retry 10 --retry-delay 1 --retry-all-errors "http://$name:8080/greeting")
  echo "$name -> $body"
done
getent hosts web.$NS.svc
getent hosts "$HOSTNAME" || true
"""


def _service(name: str, port: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": port, "targetPort": "http"}],
            **spec,
        },
    }


def test_a_pod_reaches_a_cluster_ip_service_by_every_dns_name_form(cluster: Any, namespace: str) -> None:
    api = cluster.api
    require_process_node(api)
    core = client.CoreV1Api(api)
    web = pod_spec(
        [http_server(volumeMounts=[{"name": "www", "mountPath": "/www"}])],
        volumes=[{"name": "www", "configMap": {"name": "web"}}],
    )
    create(
        api,
        namespace,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"greeting": "hi"}},
        deployment("web", 1, web),
        _service("web", 8080),
    )
    wait_ready_pods(api, namespace, "app=web", 1)
    probe = pod_spec(
        [
            {
                "name": "curl",
                "command": ["sh", "-c", CLIENT_SCRIPT],
                "env": [{"name": "NS", "value": namespace}],
            }
        ],
        restartPolicy="Never",
    )
    create(api, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"}, "spec": probe})

    def finished() -> str | None:
        phase = core.read_namespaced_pod("client", namespace).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(finished, 90, "the client pod to finish")
    out = core.read_namespaced_pod_log("client", namespace)
    assert phase == "Succeeded", out
    for name in ("web", f"web.{namespace}", f"web.{namespace}.svc", f"web.{namespace}.svc.cluster.local"):
        assert f"{name} -> hi" in out, out
    service_line, own_line = [line.split() for line in out.splitlines() if line.startswith("10.244.100.")]
    assert 224 < int(service_line[0].rsplit(".", 1)[1]) < 255, f"not a VIP of the reserved slice: {out}"
    assert own_line[1:] == ["client"], out


def test_a_pod_on_the_process_node_cannot_see_other_names_through_dns(cluster: Any, namespace: str) -> None:
    """Unknown names fail at once (the resolver asks only the pod's loopback): nothing leaves the node."""
    api = cluster.api
    require_process_node(api)
    core = client.CoreV1Api(api)
    spec = pod_spec(
        [
            {
                "name": "lookup",
                "command": [
                    "sh",
                    "-c",
                    "if getent hosts no-such-service.example.org; then exit 1; fi; echo none",
                ],
            }
        ],
        restartPolicy="Never",
    )
    create(api, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lookup"}, "spec": spec})

    def finished() -> str | None:
        phase = core.read_namespaced_pod("lookup", namespace).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    assert wait_for(finished, 60, "the lookup pod to finish") == "Succeeded"
    assert core.read_namespaced_pod_log("lookup", namespace).strip() == "none"


def test_a_running_pod_sees_a_service_created_after_it_started(cluster: Any, namespace: str) -> None:
    api = cluster.api
    require_process_node(api)
    core = client.CoreV1Api(api)
    script = (
        "curl -sS --max-time 3 --retry 60 --retry-delay 1 --retry-all-errors "
        f"http://late.{namespace}.svc:8080/greeting"
    )
    spec = pod_spec([{"name": "curl", "command": ["sh", "-c", script]}], restartPolicy="Never")
    create(api, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "early"}, "spec": spec})
    wait_for(
        lambda: core.read_namespaced_pod("early", namespace).status.phase == "Running",
        60,
        "the early client pod to run",
    )
    web = pod_spec(
        [http_server(volumeMounts=[{"name": "www", "mountPath": "/www"}])],
        volumes=[{"name": "www", "configMap": {"name": "late"}}],
    )
    create(
        api,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "late"},
            "data": {"greeting": "late hi"},
        },
        deployment("late", 1, web),
        _service("late", 8080),
    )

    def finished() -> str | None:
        phase = core.read_namespaced_pod("early", namespace).status.phase
        return phase if phase in ("Succeeded", "Failed") else None

    phase = wait_for(finished, 120, "the early client pod to finish")
    out = core.read_namespaced_pod_log("early", namespace)
    # curl's first tries fail to resolve the name (no such Service yet); then its hosts entry appears
    assert (phase, out.strip().splitlines()[-1]) == ("Succeeded", "late hi"), out


def test_the_process_node_is_tainted_and_untolerating_pods_stay_off_it(cluster: Any, namespace: str) -> None:
    api = cluster.api
    node = require_process_node(api)
    assert {"key": "node.tfsctl.dev/process", "value": "true", "effect": "NoSchedule"} in [
        {k: t.get(k) for k in ("key", "value", "effect")} for t in node["spec"].get("taints") or []
    ]
    core = client.CoreV1Api(api)
    spec = pod_spec([{"name": "c", "command": ["sleep", "30"]}])
    del spec["tolerations"]
    create(api, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray"}, "spec": spec})

    def unschedulable() -> str | None:
        pod = core.read_namespaced_pod("stray", namespace)
        cond = [c for c in pod.status.conditions or [] if c.type == "PodScheduled"]
        return cond[0].message if cond and cond[0].reason == "Unschedulable" else None

    message = wait_for(unschedulable, 60, "the scheduler to refuse the pod")
    assert "untolerated taint" in message
    assert core.read_namespaced_pod("stray", namespace).spec.node_name is None
