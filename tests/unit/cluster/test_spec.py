"""The local cluster's description: kwokctl configuration, nodes, ports (pure, no processes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tfsbed.cluster import spec as cspec

BIN = cspec.Binaries(
    kube_apiserver=Path("/b/kube-apiserver"),
    kube_controller_manager=Path("/b/kube-controller-manager"),
    kube_scheduler=Path("/b/kube-scheduler"),
    kubectl=Path("/b/kubectl"),
    etcd=Path("/b/etcd"),
    kwok=Path("/b/kwok"),
    kwokctl=Path("/b/kwokctl"),
    metrics_server=Path("/b/metrics-server"),
)


def _config(**kw: object) -> dict:
    return cspec.kwokctl_config(cspec.ClusterSpec(**kw), BIN, Path("/m"), Path("/c"))  # type: ignore[arg-type]


def test_kwokctl_config_points_every_binary_at_a_local_build_and_downloads_nothing() -> None:
    config = _config()
    opts = config["options"]
    assert opts["runtime"] == "binary"
    for key in (
        "kubeApiserverBinary",
        "kubeControllerManagerBinary",
        "kubeSchedulerBinary",
        "kubectlBinary",
        "etcdBinary",
        "kwokControllerBinary",
        "metricsServerBinary",
    ):
        assert opts[key].startswith("/b/"), key
    assert opts["metricsServerManifests"] == ["/m"]
    assert "http" not in json.dumps(config)


def test_kwokctl_config_enables_admission_rbac_metrics_server_and_usage_crds() -> None:
    opts = _config()["options"]
    assert opts["kubeAdmission"] is True and opts["kubeAuthorization"] is True
    assert opts["enable"] == ["metrics-server"]
    assert set(opts["enableCRDs"]) == {"ResourceUsage", "ClusterResourceUsage"}
    assert opts["kubeVersion"] == "v1.35.4"


def test_the_apiserver_certificate_names_the_kubernetes_service_ip_pods_dial() -> None:
    """In-cluster config dials the ``kubernetes`` Service IP (client-go's InClusterConfig); kubeadm
    puts that address in the apiserver certificate, kwokctl takes it as kubeApiserverCertSANs."""
    import ipaddress

    opts = _config()["options"]
    assert opts["kubeApiserverCertSANs"] == [cspec.KUBERNETES_SERVICE_IP]
    # the first address of kube-apiserver's default --service-cluster-ip-range (10.0.0.0/24)
    default_range = ipaddress.ip_network("10.0.0.0/24")
    assert ipaddress.ip_address(cspec.KUBERNETES_SERVICE_IP) == next(default_range.hosts())
    assert not any(
        p["name"] == "kube-apiserver" and "service-cluster-ip-range" in str(p)
        for p in _config()["componentsPatches"]
    )


def test_kwok_manages_only_annotated_nodes_so_real_nodes_are_left_alone() -> None:
    patches = {p["name"]: p["extraArgs"] for p in _config()["componentsPatches"]}
    kwok = {a["key"]: a for a in patches["kwok-controller"]}
    assert kwok["manage-all-nodes"] == {"key": "manage-all-nodes", "value": "false", "override": True}
    assert kwok["manage-nodes-with-annotation-selector"]["value"] == "kwok.x-k8s.io/node=fake"
    for node in cspec.ClusterSpec().kwok_nodes():
        assert cspec.node_manifest(node)["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_metrics_server_resolution_stays_above_its_request_timeout() -> None:
    args = {
        a["key"]: a["value"]
        for a in {p["name"]: p for p in _config()["componentsPatches"]}["metrics-server"]["extraArgs"]
    }
    assert int(args["metric-resolution"].rstrip("s")) > int(args["kubelet-request-timeout"].rstrip("s"))


def test_ports_derive_from_one_base_and_are_distinct() -> None:
    ports = cspec.Ports(30000).by_component
    assert ports["kube-apiserver"] == 30043
    assert len(set(ports.values())) == len(ports)
    assert _config(ports=cspec.Ports(30000))["options"]["kubeApiserverPort"] == 30043


@pytest.mark.parametrize("base", [80, 70000])
def test_port_base_outside_the_usable_range_is_rejected(base: int) -> None:
    with pytest.raises(ValueError, match="port base"):
        cspec.Ports(base)


def test_default_nodes_are_two_cpu_two_gpu_one_eci_simulated_and_one_real_node() -> None:
    types = [n.node_type for n in cspec.default_nodes()]
    assert sorted(types) == ["cpu", "cpu", "eci", "gpu", "gpu"]
    assert {n.provider for n in cspec.default_nodes()} == {"kwok"}
    real = [(n.name, n.provider) for n in cspec.ClusterSpec().kubelet_nodes()]
    assert real == [("tfsctl-node-0", "kubelet")]


def test_gpu_node_offers_four_gpus_with_ack_and_nvidia_labels() -> None:
    node = cspec.node_manifest(cspec.gpu_node(0))
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    labels = node["metadata"]["labels"]
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["aliyun.accelerator/nvidia_name"] == "Tesla-T4"
    assert labels["node.tfsctl.dev/type"] == "gpu"
    assert node["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def test_eci_node_is_a_tainted_virtual_kubelet_like_ack_registers() -> None:
    node = cspec.node_manifest(cspec.eci_node())
    assert node["metadata"]["labels"]["type"] == "virtual-kubelet"
    assert node["spec"]["taints"] == [
        {"key": "virtual-kubelet.io/provider", "value": "alibabacloud", "effect": "NoSchedule"}
    ]
    assert int(node["status"]["capacity"]["pods"]) >= 1000


def test_each_kwok_node_points_metrics_server_at_its_own_metrics_path() -> None:
    node = cspec.node_manifest(cspec.cpu_node(1))
    assert node["metadata"]["annotations"]["metrics.k8s.io/resource-metrics-path"] == (
        "/metrics/nodes/tfsctl-cpu-1/metrics/resource"
    )


def test_real_nodes_have_no_manifest_they_register_themselves() -> None:
    (real,) = cspec.ClusterSpec().kubelet_nodes()
    with pytest.raises(ValueError, match="tfsctl-node-0"):
        cspec.node_manifest(real)


def test_metrics_server_manifests_register_the_metrics_api() -> None:
    files = cspec.metrics_server_manifests()
    kust = yaml.safe_load(files["kustomization.yaml"])
    assert sorted(kust["resources"]) == sorted(f for f in files if f != "kustomization.yaml")
    api = yaml.safe_load(files["apiservice.yaml"])
    assert (api["kind"], api["spec"]["group"], api["spec"]["version"]) == (
        "APIService",
        "metrics.k8s.io",
        "v1beta1",
    )


def test_pod_resource_usage_is_named_after_the_pod() -> None:
    usage = cspec.pod_resource_usage("ns", "web-1", "300m")
    assert usage["metadata"] == {"name": "web-1", "namespace": "ns"}
    assert usage["spec"]["usages"][0]["usage"] == {"cpu": {"value": "300m"}, "memory": {"value": "16Mi"}}


def test_fingerprint_changes_with_the_configuration_only() -> None:
    a = cspec.fingerprint(cspec.ClusterSpec(), BIN)
    assert a == cspec.fingerprint(cspec.ClusterSpec(), BIN)
    assert a != cspec.fingerprint(cspec.ClusterSpec(ports=cspec.Ports(30000)), BIN)


@pytest.mark.parametrize("component", ["kube-controller-manager", "kube-scheduler"])
def test_single_control_plane_components_do_not_elect_a_leader(component: str) -> None:
    # a lost Lease makes an electing component exit, and nothing restarts it
    patches = {p["name"]: p["extraArgs"] for p in _config()["componentsPatches"]}
    args = {a["key"]: a for a in patches[component]}
    assert args["leader-elect"] == {"key": "leader-elect", "value": "false", "override": True}
