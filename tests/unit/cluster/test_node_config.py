"""The real node's description: addresses, credentials' subjects, configuration files (pure)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import tomllib
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from support.pki_ca import self_signed_ca
from tfsbed.cluster import NODE_TYPE_LABEL
from tfsbed.cluster import spec as cspec
from tfsbed.cluster.node import config as nconfig
from tfsbed.cluster.node import pki

DIRS = nconfig.NodeDirs(Path("/state/nodes/tfsctl-node-0"))


def test_plan_gives_each_node_its_own_address_pod_range_and_host_names() -> None:
    plan = nconfig.plan(30400, 3)
    assert [n.name for n in plan.nodes] == ["tfsctl-node-0", "tfsctl-node-1", "tfsctl-node-2"]
    assert len({n.ip for n in plan.nodes}) == 3
    assert all(ipaddress.ip_address(n.ip) in plan.uplink.network for n in plan.nodes)
    assert plan.uplink.host_ip not in {n.ip for n in plan.nodes}
    ranges = [ipaddress.ip_network(n.pod_cidr) for n in plan.nodes]
    assert all(r.subnet_of(plan.pods) for r in ranges)
    assert not any(a.overlaps(b) for i, a in enumerate(ranges) for b in ranges[i + 1 :])
    # Linux interface names are at most 15 characters
    assert all(len(n.veth) <= 15 for n in plan.nodes) and len(plan.uplink.bridge) <= 15


def test_two_port_bases_share_no_interface_range_or_cgroup() -> None:
    a, b = nconfig.plan(26400, 1), nconfig.plan(30400, 1)
    assert a.uplink.bridge != b.uplink.bridge
    assert not a.uplink.network.overlaps(b.uplink.network)
    assert not a.pods.overlaps(b.pods)
    assert a.nodes[0].cgroup != b.nodes[0].cgroup and a.nodes[0].netns != b.nodes[0].netns
    assert a.registry != b.registry


def test_plan_rejects_a_node_count_out_of_range() -> None:
    with pytest.raises(ValueError, match="between 0 and 8"):
        nconfig.plan(30400, 9)


def test_spec_names_the_real_nodes_as_the_plan_does() -> None:
    spec = cspec.ClusterSpec(real_nodes=2)
    assert [n.name for n in spec.kubelet_nodes()] == [n.name for n in nconfig.plan(26400, 2).nodes]
    assert all(n.provider == "kubelet" and n.labels[NODE_TYPE_LABEL] == "real" for n in spec.kubelet_nodes())
    assert cspec.ClusterSpec(real_nodes=0).kubelet_nodes() == ()


def test_kubelet_certificate_subject_is_what_the_node_authorizer_expects() -> None:
    node = nconfig.plan(30400, 1).nodes[0]
    assert nconfig.kubelet_subject(node) == ("system:node:tfsctl-node-0", ("system:nodes",))
    assert nconfig.KUBE_PROXY_SUBJECT[0] == "system:kube-proxy"


def _ca() -> tuple[bytes, bytes]:
    return self_signed_ca("kwok-ca")


def test_issued_client_certificate_carries_user_and_group_and_is_signed_by_the_ca() -> None:
    ca_pem, ca_key = _ca()
    issued = pki.issue(ca_pem, ca_key, "system:node:tfsctl-node-0", ("system:nodes",))
    assert pki.subject_of(issued.cert_pem) == ("system:node:tfsctl-node-0", ("system:nodes",))
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_issued_serving_certificate_names_the_node_address() -> None:
    ca_pem, ca_key = _ca()
    issued = pki.issue(ca_pem, ca_key, "n", client=False, server_ips=("172.31.48.10",), server_names=("n",))
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("172.31.48.10")]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_containerd_config_has_the_settings_this_machine_needs() -> None:
    doc = tomllib.loads(nconfig.containerd_config(DIRS))
    cri = doc["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == nconfig.PAUSE_IMAGE
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["registry"]["config_path"] == str(DIRS.certs_d)
    assert doc["grpc"]["address"] == str(DIRS.containerd_socket)
    assert doc["root"].startswith(str(DIRS.root))
    # inside the node's private /run: unix socket paths must stay under 108 bytes
    assert doc["state"] == "/run/containerd" and len(doc["grpc"]["address"]) < 100


@pytest.mark.parametrize("upstream", nconfig.MIRRORED_REGISTRIES)
def test_mirror_hosts_send_pulls_to_the_local_registry(upstream: str) -> None:
    doc = tomllib.loads(nconfig.mirror_hosts("172.31.48.1:30461", upstream))
    assert doc["host"]["http://172.31.48.1:30461"]["capabilities"] == ["pull", "resolve"]
    assert doc["server"] == (
        "https://registry-1.docker.io" if upstream == "docker.io" else f"https://{upstream}"
    )


def test_kubelet_config_has_the_settings_this_machine_needs_and_keeps_sync_defaults() -> None:
    node = nconfig.plan(30400, 1).nodes[0]
    cfg = nconfig.kubelet_config(node, DIRS, Path("/ca.crt"), "10.0.0.10")
    assert cfg["failCgroupV1"] is False and cfg["cgroupDriver"] == "cgroupfs" and cfg["oomScoreAdj"] == 0
    assert cfg["cgroupRoot"] == f"/{node.cgroup}"
    assert cfg["clusterDNS"] == ["10.0.0.10"] and cfg["address"] == node.ip
    assert cfg["authentication"]["anonymous"]["enabled"] is False
    # what decides ConfigMap propagation stays kubelet's default
    assert "syncFrequency" not in cfg and "configMapAndSecretChangeDetectionStrategy" not in cfg
    # the host's shared disk: absolute eviction thresholds and no image GC (percentages of it evicted pods)
    assert cfg["evictionHard"]["imagefs.available"] == cfg["evictionHard"]["nodefs.available"] == "1Gi"
    assert cfg["imageGCHighThresholdPercent"] == 100
    assert nconfig.kubelet_config(node, DIRS, Path("/ca.crt"), "10.0.0.10", "10s")["syncFrequency"] == "10s"
    args = nconfig.kubelet_args(node, Path("/k.yaml"), Path("/k.kubeconfig"))
    assert f"--node-ip={node.ip}" in args and f"--hostname-override={node.name}" in args


def test_kube_proxy_runs_iptables_mode_and_leaves_host_conntrack_alone() -> None:
    node = nconfig.plan(30400, 1).nodes[0]
    cfg = nconfig.kube_proxy_config(node, Path("/kp"), "10.176.0.0/16")
    assert cfg["mode"] == "iptables"
    assert cfg["conntrack"]["maxPerCore"] == 0
    assert cfg["hostnameOverride"] == node.name


def test_kube_proxy_takes_nftables_mode_and_refuses_a_mode_this_kernel_lacks() -> None:
    node = nconfig.plan(30400, 1).nodes[0]
    assert nconfig.kube_proxy_config(node, Path("/kp"), "10.176.0.0/16", "nftables")["mode"] == "nftables"
    with pytest.raises(ValueError, match="'ipvs'"):
        nconfig.kube_proxy_config(node, Path("/kp"), "10.176.0.0/16", "ipvs")


def test_cni_network_allocates_from_the_node_range_into_node_state() -> None:
    node = nconfig.plan(30400, 2).nodes[1]
    doc = json.loads(nconfig.cni_conflist(node, DIRS))
    ipam = doc["plugins"][0]["ipam"]
    assert ipam["ranges"] == [[{"subnet": node.pod_cidr}]]
    assert ipam["dataDir"] == str(DIRS.cni_ipam)


def test_holder_masks_each_kubelet_sysctl_and_makes_run_lib_log_private() -> None:
    script = nconfig.holder_script(DIRS, nconfig.plan(30400, 1).uplink)
    for name in nconfig.KUBELET_SYSCTLS:
        assert f"/proc/sys/{name}" in script
    assert "mount -t tmpfs -o mode=755 tmpfs /run" in script
    assert f"mount --bind {DIRS.var_lib} /var/lib" in script
    assert script.rstrip().endswith("exec sleep infinity")


@pytest.mark.parametrize(
    ("image", "path"),
    [
        ("docker.io/library/busybox:1.35.0", "library/busybox:1.35.0"),
        ("docker.io/busybox:1.35.0", "library/busybox:1.35.0"),
        ("docker.io/locustio/locust:2.0", "locustio/locust:2.0"),
        ("registry.k8s.io/pause:3.10.1", "pause:3.10.1"),
        ("registry.k8s.io/coredns/coredns:v1.14.7", "coredns/coredns:v1.14.7"),
        ("quay.io/metallb/speaker:v0.15.2", "metallb/speaker:v0.15.2"),
    ],
)
def test_mirror_path_is_the_path_the_upstream_registry_serves(image: str, path: str) -> None:
    assert nconfig.mirror_path(image) == path


def test_mirror_path_refuses_an_unmirrored_registry() -> None:
    with pytest.raises(ValueError, match="not on a mirrored registry"):
        nconfig.mirror_path("ghcr.io/x/y:1")


def test_coredns_runs_on_the_real_node_and_reads_the_api_with_its_token() -> None:
    docs = {d["kind"]: d for d in nconfig.coredns_manifests("https://172.31.48.1:30443", "localhost")}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {NODE_TYPE_LABEL: "real"}
    assert pod["containers"][0]["image"] == nconfig.COREDNS_IMAGE
    kcfg = json.loads(docs["ConfigMap"]["data"]["kubeconfig"])
    assert kcfg["users"][0]["user"]["tokenFile"].endswith("serviceaccount/token")
    assert kcfg["clusters"][0]["cluster"]["tls-server-name"] == "localhost"
    assert "kubeconfig /etc/coredns/kubeconfig" in docs["ConfigMap"]["data"]["Corefile"]


def test_the_registry_is_published_as_kep_1755_local_registry_hosting() -> None:
    import yaml

    plan = nconfig.plan(31900, 1)
    cm = nconfig.registry_hosting(plan)
    assert (cm["metadata"]["namespace"], cm["metadata"]["name"]) == ("kube-public", "local-registry-hosting")
    hosting = yaml.safe_load(cm["data"]["localRegistryHosting.v1"])
    assert hosting["host"] == hosting["hostFromContainerRuntime"] == plan.registry
