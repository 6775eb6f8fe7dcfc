"""A real worker node (containerd + kubelet + kube-proxy) on a cluster of its own.

The module starts ``tfsctl cluster up --real-nodes 1 --proxy-mode nftables`` on port base
30400 (away from the shared cluster, whose node runs kube-proxy in iptables mode, so both
modes carry Service traffic in every run), with no add-ons: it checks the node itself, with
busybox pods. It ends with ``down``, checking that no process, mount, interface, route,
iptables rule or cgroup of the node remains. The real node needs root (namespaces, cgroups,
interfaces). The chart's ``local`` preset on a real node runs on the shared cluster
(``tests/e2e/presets/test_local_preset_real_node.py``), where the serving image is already
pulled.

Measured here and printed (``-s``): node Ready after ``up`` and how long a ConfigMap
change takes to reach a mounted file under the real kubelet's defaults.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from support.cluster_helpers import Cluster, RealNode, pinned, wait_for
from tfsbed.cluster import spec as cspec
from tfsbed.cluster.local import LocalCluster
from tfsbed.cluster.node import config as nconfig
from tfsbed.cluster.node import runtime

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BASE = 30400
NS = "real-node-e2e"
PLAN = nconfig.plan(BASE, 1)
NODE = PLAN.nodes[0]
ON_REAL_NODE = RealNode(NODE.name).placement


def _iptables() -> str:
    out = ""
    for tool in ("iptables-save", "iptables-legacy-save"):
        with_tool = subprocess.run([tool], capture_output=True, text=True, check=False)
        out += with_tool.stdout
    return out


@pytest.fixture(scope="module")
def host_before() -> dict[str, str]:
    """The host's iptables rules and routes before the node exists."""
    return {
        "iptables": _iptables(),
        "routes": subprocess.run(["ip", "route"], capture_output=True, text=True).stdout,
    }


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory, host_before: dict[str, str]) -> Iterator[LocalCluster]:
    if os.geteuid() != 0:
        pytest.fail("the real node needs root (namespaces, cgroups, interfaces): run this test as root")
    state = tmp_path_factory.mktemp("real-node")
    lc = LocalCluster(
        cspec.ClusterSpec(ports=cspec.Ports(BASE), real_nodes=1, proxy_mode="nftables", addons=()),
        state_dir=state,
        kubeconfig=state / "kubeconfig",
        progress=lambda line: print(f"cluster: {line}", flush=True),
    )
    started = time.monotonic()
    result = lc.up(timeout=420)
    print(
        f"measured: cluster up --real-nodes 1 took {time.monotonic() - started:.1f}s, "
        f"steps {json.dumps({k: round(v, 1) for k, v in result.steps.items()})}"
    )
    yield lc
    lc.down(timeout=30)


@pytest.fixture(scope="module")
def kube(real: LocalCluster) -> Cluster:
    from kubernetes import config as kconfig

    api = kconfig.new_client_from_config(config_file=str(real.kubeconfig))
    handle = Cluster(kubeconfig=real.kubeconfig, api=api, local=True)
    handle.kubectl("create", "namespace", NS)
    wait_for(
        lambda: handle.kubectl("get", "serviceaccount", "default", "-n", NS, check=False).returncode == 0,
        timeout=30,
        what="the default ServiceAccount",
    )
    return handle


def _alive_since(pid: int, created: float) -> bool:
    """The same process (not a reused pid) still runs and is not a zombie."""
    try:
        proc = psutil.Process(pid)
        return proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pod(name: str, command: str, **extra: object) -> dict:
    container = {"name": "main", "image": nconfig.BUSYBOX_IMAGE, "command": ["sh", "-c", command]}
    container.update(extra.pop("container", {}))  # type: ignore[call-overload]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": name}},
        "spec": {**ON_REAL_NODE, "containers": [container], **extra},
    }


def _apply(kube: Cluster, *docs: dict) -> None:
    kube.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)})
    )


def _running(kube: Cluster, name: str, timeout: float = 120) -> None:
    kube.kubectl(
        "wait",
        "--for=condition=Ready",
        f"pod/{name}",
        "-n",
        NS,
        f"--timeout={timeout:.0f}s",
        timeout=timeout + 10,
    )


def test_the_real_node_registers_with_its_node_credentials_and_is_ready(
    real: LocalCluster, kube: Cluster
) -> None:
    node = json.loads(kube.kubectl("get", "node", NODE.name, "-o", "json").stdout)
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == f"v{real.spec.kube_version}"
    assert info["containerRuntimeVersion"].startswith("containerd://1.")
    assert {"type": "InternalIP", "address": NODE.ip} in node["status"]["addresses"]
    # its pod range, where kube-controller-manager's node IPAM would have recorded it
    assert node["spec"]["podCIDR"] == NODE.pod_cidr and node["spec"]["podCIDRs"] == [NODE.pod_cidr]
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "True"
    states = {c.name: c for c in real.status().components}
    for comp in ("registry", f"{NODE.name}/containerd", f"{NODE.name}/kubelet", f"{NODE.name}/kube-proxy"):
        assert states[comp].running, f"{comp}: {states[comp].detail}"
    # the Node authorizer: the kubelet's credentials may not read another node's pods' secrets,
    # and it is not an administrator (listing all secrets is refused)
    kubelet_kcfg = real.state_dir / "nodes" / NODE.name / "kubelet.kubeconfig"
    user = Cluster(kubeconfig=kubelet_kcfg, api=None, local=True)
    assert user.kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == (
        f"system:node:{NODE.name}"
    )
    assert user.kubectl("get", "secrets", "-A", check=False).returncode != 0


def test_a_busybox_pod_runs_and_kubectl_logs_and_exec_reach_it(kube: Cluster) -> None:
    _apply(kube, _pod("hello", "echo started-on-real-node; exec sleep 3600"))
    _running(kube, "hello")
    logs = kube.kubectl("logs", "hello", "-n", NS).stdout
    assert "started-on-real-node" in logs
    out = kube.kubectl("exec", "hello", "-n", NS, "--", "sh", "-c", "hostname; cat /proc/1/cgroup").stdout
    assert out.splitlines()[0] == "hello"
    assert f"/{NODE.cgroup}/kubepods" in out  # the real kubelet's cgroup, under the node's root


def test_a_service_name_resolves_through_coredns_and_nftables_kube_proxy_reaches_it(kube: Cluster) -> None:
    web = _pod(
        "web", "mkdir -p /www && echo served-by-web > /www/index.html && exec httpd -f -p 8080 -h /www"
    )
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    _apply(kube, web, svc, _pod("client", "exec sleep 3600"))
    _running(kube, "web")
    _running(kube, "client")
    cluster_ip = kube.kubectl("get", "svc", "web", "-n", NS, "-o", "jsonpath={.spec.clusterIP}").stdout
    resolv = kube.kubectl("exec", "client", "-n", NS, "--", "cat", "/etc/resolv.conf").stdout
    assert f"search {NS}.svc.cluster.local" in resolv
    looked_up = kube.kubectl(
        "exec", "client", "-n", NS, "--", "nslookup", f"web.{NS}.svc.cluster.local"
    ).stdout
    assert cluster_ip in looked_up
    # busybox-static 1.35's `wget -T` segfaults: busybox `timeout` bounds each try instead
    body = wait_for(
        lambda: (
            kube.kubectl(
                "exec", "client", "-n", NS, "--", "timeout", "5", "wget", "-qO-", "http://web/", check=False
            ).stdout
        ),
        timeout=30,
        what="http://web/ through the Service",
    )
    assert body.strip() == "served-by-web"
    # kube-proxy in nftables mode: the Service is an element of its table in the node's netns
    table = subprocess.run(
        ["ip", "netns", "exec", NODE.netns, "nft", "list", "table", "ip", "kube-proxy"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert f"{cluster_ip} . tcp . 80" in table


def test_kubectl_port_forward_and_the_python_clients_reach_the_pod_through_the_kubelet(
    kube: Cluster,
) -> None:
    """pods/portforward through the API server to the real kubelet, as ``tfsctl status --connect
    port-forward`` uses it: kubectl's tunnel and the Python client's both get the pod's answer."""
    from kubernetes import client
    from kubernetes.stream import portforward

    _running(kube, "web")  # from the Service test above
    proc = subprocess.Popen(
        [pinned("kubectl"), "port-forward", "-n", NS, "pod/web", ":8080"],
        # with HOME, or kubectl writes its discovery cache to ./.kube in the checkout
        env={"KUBECONFIG": str(kube.kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 8080"
        port = int(line.split("127.0.0.1:", 1)[1].split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            assert resp.read().decode().strip() == "served-by-web"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    forward = portforward(
        client.CoreV1Api(kube.api).connect_get_namespaced_pod_portforward, "web", NS, ports="8080"
    )
    sock = forward.socket(8080)
    sock.settimeout(10)
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    sock.close()
    assert answer.startswith(b"HTTP/1.") and b"served-by-web" in answer


def test_a_configmap_update_reaches_the_mounted_file(kube: Cluster) -> None:
    """How long the real kubelet takes (sync period + cache TTL): what label promotions wait for."""
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "conf", "namespace": NS},
        "data": {"label": "one"},
    }
    pod = _pod(
        "reader",
        "exec sleep 3600",
        container={"volumeMounts": [{"name": "conf", "mountPath": "/conf"}]},
        volumes=[{"name": "conf", "configMap": {"name": "conf"}}],
    )
    _apply(kube, cm, pod)
    _running(kube, "reader")
    assert kube.kubectl("exec", "reader", "-n", NS, "--", "cat", "/conf/label").stdout == "one"
    kube.kubectl("patch", "configmap", "conf", "-n", NS, "--type=merge", "-p", '{"data":{"label":"two"}}')
    changed = time.monotonic()

    def seen() -> bool:
        return (
            kube.kubectl("exec", "reader", "-n", NS, "--", "cat", "/conf/label", check=False).stdout == "two"
        )

    wait_for(seen, timeout=180, what="the ConfigMap change in the pod's file", interval=0.5)
    took = time.monotonic() - changed
    print(f"measured: ConfigMap change reached the mounted file after {took:.1f}s on the real kubelet")
    assert took < 150  # kubelet's default syncFrequency (1m) plus jitter and the watch cache


def test_down_leaves_no_process_mount_interface_rule_or_cgroup(
    real: LocalCluster, kube: Cluster, host_before: dict[str, str]
) -> None:
    procs = [psutil.Process(p) for p in runtime.cgroup_pids(NODE.cgroup)]
    assert procs, "the node's cgroup should hold its processes while it runs"
    started = {p.pid: p.create_time() for p in procs}
    real.down(timeout=30)
    state = str(real.state_dir)
    leftovers = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(state in part for part in p.info.get("cmdline") or [])
    ]
    assert leftovers == []
    assert [pid for pid, t in started.items() if _alive_since(pid, t)] == []
    assert runtime.mounts_under(real.state_dir) == []
    assert not list(Path("/sys/fs/cgroup").glob(f"*/{NODE.cgroup}"))
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert PLAN.uplink.bridge not in links and NODE.veth not in links
    assert NODE.netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    # other engineers' clusters change the host's routes and rules meanwhile: look for ours
    ours = (NODE.pod_cidr, str(PLAN.pods), str(PLAN.uplink.network), PLAN.uplink.bridge, NODE.veth, NODE.ip)
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert [line for line in routes.splitlines() if any(o in line for o in ours)] == []
    rules = _iptables()
    assert [line for line in rules.splitlines() if any(o in line for o in ours)] == []
    assert rules.count("KUBE-") == host_before["iptables"].count("KUBE-")  # kube-proxy's stay in the node
