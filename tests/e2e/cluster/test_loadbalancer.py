"""MetalLB on the real node: a ``type: LoadBalancer`` Service gets a pool address the host reaches.

The metallb add-on (``tfsbed.cluster.addons.metallb``) runs upstream's controller and L2
speaker; its pool is ``.200``-``.250`` of the uplink /24 the real node's ``eth0`` sits on.
A busybox ``httpd`` Deployment on the real node behind a LoadBalancer Service must get
``status.loadBalancer.ingress[0].ip`` from that pool (the controller's allocation,
``controller/service.go``, ``convergeBalancer``), the host must get the pod's answer from
that address (the speaker answers the host's ARP for it, ``internal/layer2``; kube-proxy in
the node forwards), and deleting the Service must give the address back to the pool
(``SetBalancer`` with a nil Service unassigns it; the pool's status counts it free again).
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.request
from typing import Any

import pytest

from support.cluster_helpers import Cluster, RealNode, wait_for
from tfsbed.cluster.addons import metallb as M
from tfsbed.cluster.node import config as nconfig

pytestmark = [pytest.mark.e2e]

APP = "lb-web"
PORT = 80
ADDRESS_WITHIN = 30.0  # seconds from the Service's creation to its pool address


def _json(cluster: Cluster, *args: str) -> Any:
    return json.loads(cluster.kubectl("get", *args, "-o", "json").stdout)


def _served_class(cluster: Cluster) -> str | None:
    """The ``--lb-class`` MetalLB's controller serves (None: Services without a class)."""
    done = cluster.kubectl("get", "deployment", M.CONTROLLER, "-n", M.NAMESPACE, "-o", "json", check=False)
    assert done.returncode == 0, (
        f"no MetalLB controller in {M.NAMESPACE}: `tfsctl cluster up --real-nodes 1` installs the metallb "
        f"add-on (`tfsctl cluster down` first if the cluster was started before it existed): {done.stderr}"
    )
    (container,) = json.loads(done.stdout)["spec"]["template"]["spec"]["containers"]
    classes = [a.split("=", 1)[1] for a in container.get("args", []) if a.startswith("--lb-class=")]
    return classes[0] if classes else None


def _pool(cluster: Cluster) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address, dict[str, int]]:
    doc = _json(cluster, "ipaddresspool", M.POOL, "-n", M.NAMESPACE)
    first, last = (ipaddress.IPv4Address(a) for a in doc["spec"]["addresses"][0].split("-"))
    return first, last, doc.get("status", {})


def _node_ip(cluster: Cluster, node: str) -> ipaddress.IPv4Address:
    addresses = _json(cluster, "node", node)["status"]["addresses"]
    return ipaddress.IPv4Address(next(a["address"] for a in addresses if a["type"] == "InternalIP"))


def _objects(namespace: str, placement: dict[str, Any], lb_class: str | None) -> list[dict[str, Any]]:
    labels = {"app": APP}
    script = (
        'mkdir -p /tmp/www && echo "served-by $POD_NAME" > /tmp/www/index.html '
        "&& exec httpd -f -p 8080 -h /tmp/www"
    )
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    **placement,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "httpd",
                            "image": nconfig.BUSYBOX_IMAGE,
                            "command": ["sh", "-c", script],
                            "env": [
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                }
                            ],
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "selector": labels,
        "ports": [{"name": "http", "port": PORT, "targetPort": "http"}],
    }
    if lb_class:
        spec["loadBalancerClass"] = lb_class
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": spec,
    }
    return [deployment, service]


def _ingress_ip(cluster: Cluster, namespace: str) -> str | None:
    status = _json(cluster, "service", APP, "-n", namespace).get("status", {})
    ingress = status.get("loadBalancer", {}).get("ingress") or []
    return ingress[0].get("ip") if ingress else None


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read().decode().strip()
    except OSError:
        return None


def test_a_loadbalancer_service_gets_a_pool_address_the_host_reaches_and_gives_it_back(
    cluster: Cluster, namespace: str, real_node: RealNode
) -> None:
    lb_class = _served_class(cluster)
    first, last, before = _pool(cluster)
    node_ip = _node_ip(cluster, real_node.name)
    # the pool is .200-.250 of the /24 the node's eth0 (and the host's bridge) is on
    uplink = ipaddress.IPv4Network(f"{node_ip}/24", strict=False)
    assert (first, last) == (uplink.network_address + M.POOL_FIRST, uplink.network_address + M.POOL_LAST)

    docs = _objects(namespace, real_node.placement, lb_class)
    created = time.monotonic()
    cluster.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
    ip = wait_for(
        lambda: _ingress_ip(cluster, namespace),
        timeout=ADDRESS_WITHIN,
        what=f"{namespace}/{APP}'s ingress IP",
    )
    took = time.monotonic() - created
    print(f"ingress {ip} after {took:.1f}s (class {lb_class or 'none'})")
    assert first <= ipaddress.IPv4Address(ip) <= last, f"{ip} is not in the pool {first}-{last}"
    assert _pool(cluster)[2].get("assignedIPv4") == before.get("assignedIPv4", 0) + 1

    cluster.kubectl("rollout", "status", f"deployment/{APP}", "-n", namespace, "--timeout=60s", timeout=70)
    (pod,) = _json(cluster, "pods", "-n", namespace, "-l", f"app={APP}")["items"]
    assert pod["spec"]["nodeName"] == real_node.name
    # from the host: ARP on the bridge answered by the speaker, kube-proxy on the node forwards
    body = wait_for(lambda: _get(f"http://{ip}:{PORT}/"), timeout=30, what=f"HTTP answer from {ip}:{PORT}")
    assert body == f"served-by {pod['metadata']['name']}"

    cluster.kubectl("delete", "service", APP, "-n", namespace, "--wait=true")
    wait_for(
        lambda: _pool(cluster)[2].get("assignedIPv4") == before.get("assignedIPv4", 0),
        timeout=30,
        what=f"pool {M.POOL} to count {ip} free again",
    )
    assert _pool(cluster)[2].get("availableIPv4") == before.get("availableIPv4")
