"""What a cluster offers the e2e tests, and the checks that skip or fail on what it lacks.

The local cluster has everything: kwok-simulated CPU/GPU/ECI nodes with emulated
usage (ResourceUsage CRDs + metrics-server), a real node (upstream kubelet +
containerd, labelled ``node.tfsctl.dev/type=real``) and MetalLB as its LoadBalancer. An external cluster
(kind, ACK, ...) has only some of it. ``require_*`` lets a test say what it needs:

- on an external cluster a missing capability skips the test, the reason starting
  with ``external cluster lacks`` and naming the capability;
- on the local cluster it FAILS with how to get the component: no test passes by
  skipping on the local default.

The ``cluster`` fixture probes once per session (:func:`probe`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tfsbed.cluster import NODE_TYPE_LABEL

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
USAGE_CRDS = ("resourceusages.kwok.x-k8s.io", "clusterresourceusages.kwok.x-k8s.io")
METRICS_APISERVICE = "v1beta1.metrics.k8s.io"
METALLB = ("metallb-system", "controller")  # the Deployment of tfsbed.cluster.addons.metallb
SKIP_PREFIX = "external cluster lacks"
RECREATE = "`tfsctl cluster down && tfsctl cluster up` recreates the local cluster with it"


@dataclass(frozen=True)
class Capabilities:
    """What one probe of the cluster found."""

    node_types: dict[str, str] = field(default_factory=dict)  # node -> type (label, else inferred)
    labelled_types: frozenset[str] = frozenset()  # Ready nodes' node.tfsctl.dev/type values
    ready_types: frozenset[str] = frozenset()  # node_types of Ready nodes
    real_types: frozenset[str] = frozenset()  # node_types of Ready nodes whose pods really run (not kwok)
    kwok_nodes: bool = False  # Ready nodes simulated by kwok
    usage_crds: bool = False  # kwok's ResourceUsage / ClusterResourceUsage served
    metrics_api: bool = False  # metrics.k8s.io Available
    real_nodes: tuple[str, ...] = ()  # Ready nodes labelled node.tfsctl.dev/type=real (kubelet + containerd)
    loadbalancer: bool = False  # MetalLB's controller available: LoadBalancer addresses the host reaches

    @property
    def kwok_usage(self) -> bool:
        return self.kwok_nodes and self.usage_crds and self.metrics_api


def infer_node_type(labels: dict[str, str], allocatable: dict[str, str]) -> str:
    """``node.tfsctl.dev/type`` when labelled, else what a cloud node's labels say (kind: cpu)."""
    if kind := labels.get(NODE_TYPE_LABEL):
        return kind
    if labels.get("type") == "virtual-kubelet":
        return "eci"
    if "nvidia.com/gpu" in allocatable:
        return "gpu"
    return "cpu"


def _ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def probe(api: Any) -> Capabilities:
    """Look at the cluster behind ``api`` (read-only; a forbidden read counts as absent)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    node_types: dict[str, str] = {}
    labelled: set[str] = set()
    ready_types: set[str] = set()
    real_types: set[str] = set()
    kwok_nodes = False
    real_nodes: list[str] = []
    nodes: list[Any] = client.CoreV1Api(api).list_node().items
    for node in nodes:
        labels = node.metadata.labels or {}
        kind = infer_node_type(labels, node.status.allocatable or {})
        node_types[node.metadata.name] = kind
        if not _ready(node):
            continue
        ready_types.add(kind)
        if NODE_TYPE_LABEL in labels:
            labelled.add(labels[NODE_TYPE_LABEL])
            if labels[NODE_TYPE_LABEL] == "real":
                real_nodes.append(node.metadata.name)
        if KWOK_NODE_ANNOTATION in (node.metadata.annotations or {}):
            kwok_nodes = True
        else:
            real_types.add(kind)

    ext = client.ApiextensionsV1Api(api)
    usage_crds = True
    for crd in USAGE_CRDS:
        try:
            ext.read_custom_resource_definition(crd)
        except ApiException:
            usage_crds = False
    try:
        svc: Any = client.ApiregistrationV1Api(api).read_api_service(METRICS_APISERVICE)
        metrics_api = any(c.type == "Available" and c.status == "True" for c in svc.status.conditions or [])
    except ApiException:
        metrics_api = False
    try:
        lb: Any = client.AppsV1Api(api).read_namespaced_deployment(METALLB[1], METALLB[0])
        loadbalancer = bool(lb.status.available_replicas)
    except ApiException:
        loadbalancer = False
    return Capabilities(
        node_types=node_types,
        labelled_types=frozenset(labelled),
        ready_types=frozenset(ready_types),
        real_types=frozenset(real_types),
        kwok_nodes=kwok_nodes,
        usage_crds=usage_crds,
        metrics_api=metrics_api,
        real_nodes=tuple(sorted(real_nodes)),
        loadbalancer=loadbalancer,
    )


def require(local: bool, present: bool, missing: str, how: str) -> None:
    """Nothing if ``present``; else skip (external cluster) or fail with ``how`` (local cluster)."""
    if present:
        return
    if local:
        pytest.fail(f"the local cluster lacks {missing}: {how}", pytrace=False)
    pytest.skip(f"{SKIP_PREFIX} {missing}")


def require_loadbalancer(caps: Capabilities, local: bool) -> None:
    """LoadBalancer Services get an address the host reaches (MetalLB on the real node)."""
    require(
        local,
        caps.loadbalancer,
        f"a LoadBalancer the host reaches (MetalLB's deployment/{METALLB[1]} in {METALLB[0]}, available)",
        "`tfsctl cluster up` installs the metallb add-on on the real node; its pods' logs: "
        f"`kubectl logs -n {METALLB[0]} deployment/{METALLB[1]}`",
    )


def require_real_node(caps: Capabilities, local: bool) -> str:
    """The first real node's name (upstream kubelet + containerd, pods from the local registry)."""
    require(
        local,
        bool(caps.real_nodes),
        f"a Ready real node (labelled {NODE_TYPE_LABEL}=real)",
        "run `tfsctl cluster up` (as root; `--real-nodes` must not be 0); its components' logs are under "
        ".tools/cluster/nodes/",
    )
    return caps.real_nodes[0]


def require_kwok_usage(caps: Capabilities, local: bool) -> None:
    parts = []
    if not caps.kwok_nodes:
        parts.append("kwok-simulated nodes")
    if not caps.usage_crds:
        parts.append(f"kwok's emulated usage CRDs ({', '.join(USAGE_CRDS)})")
    if not caps.metrics_api:
        parts.append(f"metrics.k8s.io ({METRICS_APISERVICE} Available)")
    require(local, caps.kwok_usage, "emulated usage: " + ", ".join(parts), RECREATE)


def require_node_type(caps: Capabilities, local: bool, node_type: str, *, labelled: bool = False) -> None:
    """A Ready node of ``node_type``; ``labelled``: carrying ``node.tfsctl.dev/type`` (for nodeSelectors)."""
    if labelled:
        present = node_type in caps.labelled_types
        missing = f"a Ready node labelled {NODE_TYPE_LABEL}={node_type}"
    else:
        present = node_type in caps.ready_types
        what = {
            "gpu": "with nvidia.com/gpu allocatable",
            "eci": "of ECI type (label type=virtual-kubelet)",
            "real": f"labelled {NODE_TYPE_LABEL}=real (the local cluster's real node)",
        }.get(node_type, f"of type {node_type}")
        missing = f"a Ready node {what}"
    require(local, present, missing, RECREATE)
