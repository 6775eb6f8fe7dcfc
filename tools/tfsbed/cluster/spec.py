"""What the local cluster is made of, as data: ports, nodes and the kwokctl configuration.

Pure: no I/O. :mod:`tfsbed.cluster.local` turns this into running processes.

Nodes carry a ``provider``: ``kwok`` nodes are created here through the API and
simulated by the kwok controller; ``kubelet`` nodes (:mod:`tfsbed.cluster.node`)
register themselves, as real nodes do.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tfsbed.cluster import CLUSTER_NAME, NODE_TYPE_LABEL
from tfsbed.cluster.node.config import node_name

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# metrics-server reads a node's resource metrics from this path when annotated
# (kwok serves every node's metrics on one port, under a per-node path).
METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"
USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
USAGE_MEMORY_ANNOTATION = "kwok.x-k8s.io/usage-memory"
GPU_RESOURCE = "nvidia.com/gpu"
ECI_TAINT_KEY = "virtual-kubelet.io/provider"

NodeType = Literal["cpu", "gpu", "eci", "real"]
Provider = Literal["kwok", "kubelet"]

# The ``kubernetes`` Service's ClusterIP, which in-cluster clients dial (KUBERNETES_SERVICE_HOST): the
# first address of kube-apiserver's --service-cluster-ip-range, left at its default 10.0.0.0/24
# (k8s.io/kubernetes pkg/kubeapiserver/options.DefaultServiceIPCIDR; kwokctl's binary runtime sets no
# range). kubeadm names it in the apiserver certificate (pkiutil.GetAPIServerAltNames); kwokctl's own
# names (kubernetes.default.svc, localhost, the host's addresses) do not include it.
KUBERNETES_SERVICE_IP = "10.0.0.1"

# Components kwokctl starts, in start order; the names are kwokctl's.
CONTROL_PLANE = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
    "metrics-server",
)


@dataclass(frozen=True)
class Ports:
    """Host ports of the control plane, all derived from one base so a clash moves them together."""

    base: int = 26400

    def __post_init__(self) -> None:
        if not 1024 <= self.base <= 65535 - 100:
            raise ValueError(f"port base {self.base} must be between 1024 and 65435")

    @property
    def by_component(self) -> dict[str, int]:
        b = self.base
        return {
            "etcd": b + 1,
            "etcd-peer": b + 2,
            "kube-apiserver": b + 43,
            "metrics-server": b + 44,
            "kwok-controller": b + 47,
            "kube-controller-manager": b + 57,
            "kube-scheduler": b + 59,
        }

    @property
    def apiserver(self) -> int:
        return self.by_component["kube-apiserver"]


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"

    def to_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect}


@dataclass(frozen=True)
class NodeSpec:
    """One node of the local cluster; ``provider`` says who runs it."""

    name: str
    node_type: NodeType
    provider: Provider = "kwok"
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    capacity: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Binaries:
    """Paths of the pinned binaries kwokctl runs (nothing is downloaded)."""

    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    etcd: Path
    kwok: Path
    kwokctl: Path
    metrics_server: Path


def _common_labels(name: str, node_type: str) -> dict[str, str]:
    return {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "kubernetes.io/role": "agent",
        "topology.kubernetes.io/region": "cn-hangzhou",
        "topology.kubernetes.io/zone": "cn-hangzhou-k",
        NODE_TYPE_LABEL: node_type,
    }


def cpu_node(index: int) -> NodeSpec:
    name = f"tfsctl-cpu-{index}"
    labels = _common_labels(name, "cpu") | {
        "type": "kwok",
        "node.kubernetes.io/instance-type": "ecs.c7.2xlarge",
    }
    return NodeSpec(name, "cpu", labels=labels, capacity={"cpu": "8", "memory": "16Gi", "pods": "110"})


def gpu_node(index: int, gpus: int = 4) -> NodeSpec:
    """An ACK GPU node (labels of the ACK GPU device plugin and NVIDIA GPU feature discovery).

    Tainted ``nvidia.com/gpu=present:NoSchedule`` as GKE does; the API server runs the
    ``ExtendedResourceToleration`` admission plugin, so pods requesting ``nvidia.com/gpu``
    get the toleration automatically and nothing else lands here.
    """
    name = f"tfsctl-gpu-{index}"
    labels = _common_labels(name, "gpu") | {
        "type": "kwok",
        "node.kubernetes.io/instance-type": "ecs.gn6i-c16g1.16xlarge",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": "Tesla-T4",
        "nvidia.com/gpu.count": str(gpus),
        "nvidia.com/gpu.memory": "15360",
        "aliyun.accelerator/nvidia_name": "Tesla-T4",
        "aliyun.accelerator/nvidia_count": str(gpus),
        "aliyun.accelerator/nvidia_mem": "15109MiB",
        "ack.node.gpu.schedule": "default",
    }
    return NodeSpec(
        name,
        "gpu",
        labels=labels,
        taints=(Taint(GPU_RESOURCE, "present"),),
        capacity={"cpu": "64", "memory": "256Gi", "pods": "110", GPU_RESOURCE: str(gpus)},
    )


def eci_node() -> NodeSpec:
    """The virtual node ACK's virtual-kubelet registers for Elastic Container Instance."""
    name = "virtual-kubelet-cn-hangzhou-k"
    labels = _common_labels(name, "eci") | {
        "type": "virtual-kubelet",
    }
    return NodeSpec(
        name,
        "eci",
        labels=labels,
        taints=(Taint(ECI_TAINT_KEY, "alibabacloud"),),
        # virtual capacity, GPUs included: ECI runs GPU pods on GPU instance types (eci-use-specs)
        capacity={
            "cpu": "2000",
            "memory": "8Ti",
            "pods": "5000",
            "ephemeral-storage": "50Ti",
            GPU_RESOURCE: "1000",
        },
    )


def default_nodes() -> tuple[NodeSpec, ...]:
    return (cpu_node(0), cpu_node(1), gpu_node(0), gpu_node(1), eci_node())


@dataclass(frozen=True)
class ClusterSpec:
    """Everything that decides how the local cluster is built; its fingerprint detects drift."""

    name: str = CLUSTER_NAME
    kube_version: str = "1.35.4"
    ports: Ports = field(default_factory=Ports)
    nodes: tuple[NodeSpec, ...] = field(default_factory=default_nodes)
    # The HPA controller's loop (default 15s) and metrics-server's scrape interval
    # (default 15s), shortened so autoscaling tests settle quickly.
    hpa_sync_period: str = "5s"
    metric_resolution: str = "10s"
    admission_plugins: tuple[str, ...] = ("ExtendedResourceToleration",)
    # Real nodes (containerd + kubelet + kube-proxy, :mod:`tfsbed.cluster.node`): where pods run.
    real_nodes: int = 1
    # kube-proxy's mode on the real nodes: iptables or nftables (node.config.PROXY_MODES).
    proxy_mode: str = "iptables"
    # The add-ons (tfsbed.cluster.addons.ADDONS, by name) the real nodes get; None: all of them.
    # A cluster that only checks the node itself starts faster with none: ``addons=()``.
    addons: tuple[str, ...] | None = None
    # The real kubelets' ``syncFrequency`` (how soon a ConfigMap change reaches a mounted file);
    # None keeps kubelet's default (1m), which users run. A shorter one is a local speed setting.
    kubelet_sync_frequency: str | None = None

    def kwok_nodes(self) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.nodes if n.provider == "kwok")

    def kubelet_nodes(self) -> tuple[NodeSpec, ...]:
        """The real nodes; they register themselves, so only their names and labels are known here."""
        return tuple(
            NodeSpec(node_name(i), "real", provider="kubelet", labels={NODE_TYPE_LABEL: "real"})
            for i in range(self.real_nodes)
        )


def node_manifest(node: NodeSpec) -> dict[str, Any]:
    """The Node object for a kwok node (status included: kwok keeps it, as a kubelet would)."""
    if node.provider != "kwok":
        raise ValueError(f"node {node.name} is run by {node.provider!r}, not created from a manifest")
    capacity = dict(node.capacity)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": node.name,
            "labels": dict(node.labels),
            "annotations": {
                KWOK_NODE_ANNOTATION: "fake",
                "node.alpha.kubernetes.io/ttl": "0",
                METRICS_PATH_ANNOTATION: f"/metrics/nodes/{node.name}/metrics/resource",
            },
        },
        "spec": {"taints": [t.to_dict() for t in node.taints]} if node.taints else {},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def _patch(name: str, *args: tuple[str, str, bool]) -> dict[str, Any]:
    return {
        "name": name,
        "extraArgs": [{"key": k, "value": v, "override": o} for k, v, o in args],
    }


def kwokctl_config(spec: ClusterSpec, binaries: Binaries, metrics_manifests: Path, cache_dir: Path) -> dict:
    """The ``KwokctlConfiguration`` for ``kwokctl create cluster --runtime binary``.

    Every binary points at a local build (kwokctl links them, nothing downloads);
    the metrics-server APIService comes from a local kustomize directory for the
    same reason. ``componentsPatches`` make kwok manage only nodes annotated
    ``kwok.x-k8s.io/node=fake`` (so the real nodes' kubelets are left alone)
    and report 127.0.0.1 as their address.
    """
    ports = spec.ports.by_component
    options: dict[str, Any] = {
        "runtime": "binary",
        "kubeVersion": f"v{spec.kube_version}",
        "kubeApiserverBinary": str(binaries.kube_apiserver),
        "kubeControllerManagerBinary": str(binaries.kube_controller_manager),
        "kubeSchedulerBinary": str(binaries.kube_scheduler),
        "kubectlBinary": str(binaries.kubectl),
        "etcdBinary": str(binaries.etcd),
        "kwokControllerBinary": str(binaries.kwok),
        "metricsServerBinary": str(binaries.metrics_server),
        "metricsServerManifests": [str(metrics_manifests)],
        "cacheDir": str(cache_dir),
        "enable": ["metrics-server"],
        # Live CRDs (not config-file objects) so tests can set emulated usage at run time.
        "enableCRDs": ["ResourceUsage", "ClusterResourceUsage"],
        "securePort": True,
        "kubeAuthorization": True,
        # Default admission plugins, PodSecurity among them.
        "kubeAdmission": True,
        "kubeApiserverPort": ports["kube-apiserver"],
        "etcdPort": ports["etcd"],
        "etcdPeerPort": ports["etcd-peer"],
        "kubeControllerManagerPort": ports["kube-controller-manager"],
        "kubeSchedulerPort": ports["kube-scheduler"],
        "kwokControllerPort": ports["kwok-controller"],
        "metricsServerPort": ports["metrics-server"],
        "quietPull": True,
        # pods' in-cluster config (a ServiceAccount token, the chart's canary Job) verifies this name
        "kubeApiserverCertSANs": [KUBERNETES_SERVICE_IP],
    }
    patches = [
        _patch(
            "kwok-controller",
            ("manage-all-nodes", "false", True),
            ("manage-nodes-with-annotation-selector", f"{KWOK_NODE_ANNOTATION}=fake", False),
            ("node-ip", "127.0.0.1", True),
        ),
        # One instance of each: without leader election a missed Lease renewal on a loaded machine
        # cannot make the process exit for good (kwokctl's binary runtime restarts nothing).
        _patch(
            "kube-controller-manager",
            ("horizontal-pod-autoscaler-sync-period", spec.hpa_sync_period, False),
            ("leader-elect", "false", True),
        ),
        _patch("kube-scheduler", ("leader-elect", "false", True)),
        _patch(
            "metrics-server",
            ("metric-resolution", spec.metric_resolution, True),
            # must stay below the resolution or metrics-server refuses to start
            ("kubelet-request-timeout", "5s", False),
        ),
    ]
    if spec.admission_plugins:
        patches.append(
            _patch("kube-apiserver", ("enable-admission-plugins", ",".join(spec.admission_plugins), False))
        )
    return {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": options,
        "componentsPatches": patches,
    }


def metrics_server_manifests() -> dict[str, str]:
    """Files of the kustomize directory registering metrics-server's APIService.

    kwokctl rewrites the Service into an ExternalName pointing at the local
    metrics-server and sets the APIService port; Deployment and RBAC are not
    needed since metrics-server runs as a local process with admin credentials.
    """
    return {
        "kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources:\n- apiservice.yaml\n- service.yaml\n- aggregated-reader.yaml\n"
        ),
        "apiservice.yaml": (
            "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata:\n"
            "  name: v1beta1.metrics.k8s.io\n  labels:\n    k8s-app: metrics-server\n"
            "spec:\n  service:\n    name: metrics-server\n    namespace: kube-system\n"
            "  group: metrics.k8s.io\n  version: v1beta1\n  insecureSkipTLSVerify: true\n"
            "  groupPriorityMinimum: 100\n  versionPriority: 100\n"
        ),
        "service.yaml": (
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: metrics-server\n  namespace: kube-system\n"
            "  labels:\n    k8s-app: metrics-server\nspec:\n  ports:\n  - name: https\n    port: 443\n"
            "    protocol: TCP\n    targetPort: https\n"
        ),
        "aggregated-reader.yaml": (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
            "  name: system:aggregated-metrics-reader\n  labels:\n    k8s-app: metrics-server\n"
            '    rbac.authorization.k8s.io/aggregate-to-admin: "true"\n'
            '    rbac.authorization.k8s.io/aggregate-to-edit: "true"\n'
            '    rbac.authorization.k8s.io/aggregate-to-view: "true"\n'
            "rules:\n- apiGroups: [metrics.k8s.io]\n  resources: [pods, nodes]\n"
            "  verbs: [get, list, watch]\n"
        ),
    }


def default_resource_usage() -> dict[str, Any]:
    """kwok's default emulated usage: from pod annotations, else 1m CPU / 1Mi memory.

    A ``ResourceUsage`` named like a pod (same namespace) takes precedence, which
    is how tests set usage for the pods of one Deployment.
    """
    expr = (
        '"{a}" in pod.metadata.annotations\n? Quantity(pod.metadata.annotations["{a}"])\n: Quantity("{d}")\n'
    )
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterResourceUsage",
        "metadata": {"name": "usage-from-annotation"},
        "spec": {
            "usages": [
                {
                    "usage": {
                        "cpu": {"expression": expr.format(a=USAGE_CPU_ANNOTATION, d="1m")},
                        "memory": {"expression": expr.format(a=USAGE_MEMORY_ANNOTATION, d="1Mi")},
                    }
                }
            ]
        },
    }


def pod_resource_usage(namespace: str, pod: str, cpu: str, memory: str = "16Mi") -> dict[str, Any]:
    """A ``ResourceUsage`` fixing the emulated usage of every container of one kwok pod.

    Memory is always set: metrics-server drops containers reporting zero memory.
    """
    usage: dict[str, Any] = {"cpu": {"value": cpu}, "memory": {"value": memory}}
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ResourceUsage",
        "metadata": {"name": pod, "namespace": namespace},
        "spec": {"usages": [{"usage": usage}]},
    }


def fingerprint(spec: ClusterSpec, binaries: Binaries) -> str:
    """A short hash of the configuration, stored with a running cluster to detect drift."""
    doc = kwokctl_config(spec, binaries, Path("/m"), Path("/c"))
    doc["nodes"] = [node_manifest(n) for n in spec.kwok_nodes()]
    if spec.real_nodes:  # the apiserver gets kubelet client credentials only then
        doc["real_nodes"] = spec.real_nodes
    blob = json.dumps(doc, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
