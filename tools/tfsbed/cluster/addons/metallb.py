"""MetalLB: ``type: LoadBalancer`` Services on the real nodes get an address the host reaches.

The objects are upstream's release manifest, ``config/manifests/metallb-native.yaml`` of the
pinned module ``go.universe.tf/metallb`` (kept by the toolchain, ``GoTool.data``): its CRDs,
RBAC, the controller Deployment and the speaker DaemonSet, with the images' upstream names
(``quay.io/metallb/...``, mirrored by the local registry). :func:`adapt` changes what this
bed needs, each for the reason given there:

- the apiserver runs on the host and reaches neither ClusterIPs nor pod ranges it is not
  routed to, so MetalLB's webhooks (validation, BGPPeer conversion) cannot be called: the
  controller runs with ``--webhook-mode=disabled`` (``controller/main.go``, ``main``) and the
  ValidatingWebhookConfiguration, its Service and the BGPPeer conversion stanza are left out
  (this bed uses L2 only, so no BGPPeer is ever converted);
- the apiserver's certificate (kwokctl's) does not name the ``kubernetes`` Service IP, so both
  binaries read a kubeconfig with the host address and their ServiceAccount token
  (``KUBECONFIG``, read by controller-runtime's ``ctrl.GetConfigOrDie`` in
  ``internal/k8s/k8s.go``, ``New``), as CoreDNS and prometheus-adapter do;
- both run on the real nodes only (``nodeSelector`` + the real-node taint): the speaker uses
  the node's network (``hostNetwork``, as upstream) to answer ARP on its ``eth0``, which sits
  on the host bridge.

The pool (:func:`pool_manifests`) is ``.200``-``.250`` of the cluster's uplink /24, announced
in L2 mode: the host has that /24 on its bridge, so it ARPs for a pool address, the elected
speaker answers with its node's MAC, and kube-proxy in the node's namespace forwards the
packets to the Service's endpoints. Memberlist stays on as upstream ships it (bound to the
speaker's pod IP, which on ``hostNetwork`` is its node's address).

MetalLB is the cluster's one balancer and serves Services without a ``loadBalancerClass``,
as on a bare-metal cluster that installs it.
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path
from typing import Any

import yaml

from tfsbed.cluster import NODE_TYPE_LABEL
from tfsbed.cluster.addons import Context, rolled_out
from tfsbed.cluster.node import config as nconfig
from tfsbed.cluster.node import images
from tfsctl.errors import Timeout, Unavailable

VERSION = "0.15.2"  # module go.universe.tf/metallb (toolchain.py)
NAMESPACE = "metallb-system"
CONTROLLER_IMAGE = f"quay.io/metallb/controller:v{VERSION}"
SPEAKER_IMAGE = f"quay.io/metallb/speaker:v{VERSION}"
MANIFEST = "config/manifests/metallb-native.yaml"
CONTROLLER = "controller"
SPEAKER = "speaker"
POOL = "uplink"
# host parts of the uplink /24 handed out (nodes are .10 upwards, the host is .1)
POOL_FIRST, POOL_LAST = 200, 250
KUBECONFIG_CONFIGMAP = "tfsctl-apiserver"
_KUBECONFIG_DIR = "/etc/tfsctl"
# the apiserver's certificate names the host (see addons/prometheus.py, APISERVER_TLS_NAME)
APISERVER_TLS_NAME = "localhost"
# upstream's objects for the webhooks the apiserver cannot reach (module docstring)
_WEBHOOK_OBJECTS = {
    ("ValidatingWebhookConfiguration", "metallb-webhook-configuration"),
    ("Service", "metallb-webhook-service"),
}


# -- manifests (pure) -----------------------------------------------------------------------------


def pool_range(plan: nconfig.Plan) -> str:
    """``first-last`` of the L2 pool: :data:`POOL_FIRST`-:data:`POOL_LAST` of the uplink /24."""
    net = plan.uplink.network
    return f"{net.network_address + POOL_FIRST}-{net.network_address + POOL_LAST}"


def in_pool(plan: nconfig.Plan, ip: str) -> bool:
    """Whether ``ip`` is one of the pool's addresses."""
    first, last = (ipaddress.IPv4Address(a) for a in pool_range(plan).split("-"))
    return first <= ipaddress.IPv4Address(ip) <= last


def pool_manifests(plan: nconfig.Plan) -> list[dict[str, Any]]:
    """The IPAddressPool and its L2Advertisement (``api/v1beta1``), announced on the nodes' ``eth0``."""
    meta = {"name": POOL, "namespace": NAMESPACE}
    return [
        {
            "apiVersion": "metallb.io/v1beta1",
            "kind": "IPAddressPool",
            "metadata": meta,
            "spec": {"addresses": [pool_range(plan)]},
        },
        {
            "apiVersion": "metallb.io/v1beta1",
            "kind": "L2Advertisement",
            "metadata": meta,
            # each real node's uplink interface (config.py, RealNodes._network)
            "spec": {"ipAddressPools": [POOL], "interfaces": ["eth0"]},
        },
    ]


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for doc in docs:
        if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name:
            return doc
    raise ValueError(f"{MANIFEST} of MetalLB v{VERSION} has no {kind} {name}")


def _container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    for c in workload["spec"]["template"]["spec"]["containers"]:
        if c["name"] == name:
            return dict(c)
    raise ValueError(f"{MANIFEST}: {workload['kind']} {workload['metadata']['name']} has no container {name}")


def _on_real_nodes(workload: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """``workload`` on the real nodes, reading the apiserver address from the kubeconfig ConfigMap."""
    pod = dict(workload["spec"]["template"]["spec"])
    pod["nodeSelector"] = {**pod.get("nodeSelector", {}), NODE_TYPE_LABEL: "real"}
    pod["tolerations"] = [*pod.get("tolerations", []), dict(nconfig.REAL_NODE_TOLERATION)]
    container["env"] = [
        *container.get("env", []),
        {"name": "KUBECONFIG", "value": f"{_KUBECONFIG_DIR}/kubeconfig"},
    ]
    mount = {"name": KUBECONFIG_CONFIGMAP, "mountPath": _KUBECONFIG_DIR, "readOnly": True}
    container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
    pod["containers"] = [container if c["name"] == container["name"] else c for c in pod["containers"]]
    volume = {"name": KUBECONFIG_CONFIGMAP, "configMap": {"name": KUBECONFIG_CONFIGMAP}}
    pod["volumes"] = [*pod.get("volumes", []), volume]
    template = {**workload["spec"]["template"], "spec": pod}
    return {**workload, "spec": {**workload["spec"], "template": template}}


def adapt(upstream: list[dict[str, Any]], server: str) -> list[dict[str, Any]]:
    """Upstream's release manifest as this bed runs it (the changes are in the module docstring).

    ``server`` is the apiserver as pods reach it. A manifest that lacks an object this relies
    on raises ValueError naming it.
    """
    controller = _find(upstream, "Deployment", CONTROLLER)
    speaker = _find(upstream, "DaemonSet", SPEAKER)
    bgppeers = _find(upstream, "CustomResourceDefinition", "bgppeers.metallb.io")

    c = _container(controller, CONTROLLER)
    if c.get("image") != CONTROLLER_IMAGE:
        raise ValueError(f"{MANIFEST}: controller image {c.get('image')}, expected {CONTROLLER_IMAGE}")
    c["args"] = [*c.get("args", []), "--webhook-mode=disabled", "--disable-cert-rotation"]
    s = _container(speaker, SPEAKER)
    if s.get("image") != SPEAKER_IMAGE:
        raise ValueError(f"{MANIFEST}: speaker image {s.get('image')}, expected {SPEAKER_IMAGE}")

    crd_spec = {k: v for k, v in bgppeers["spec"].items() if k != "conversion"}
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": KUBECONFIG_CONFIGMAP, "namespace": NAMESPACE, "labels": {"app": "metallb"}},
        "data": {"kubeconfig": json.dumps(nconfig.coredns_kubeconfig(server, APISERVER_TLS_NAME), indent=2)},
    }
    out: list[dict[str, Any]] = []
    for doc in upstream:
        key = (doc.get("kind"), doc.get("metadata", {}).get("name"))
        if key in _WEBHOOK_OBJECTS:
            continue
        if doc is controller:
            doc = _on_real_nodes(controller, c)
        elif doc is speaker:
            doc = _on_real_nodes(speaker, s)
        elif doc is bgppeers:
            doc = {**bgppeers, "spec": crd_spec}
        out.append(doc)
        if doc.get("kind") == "Namespace":
            out.append(kubeconfig)
    if kubeconfig not in out:
        raise ValueError(f"{MANIFEST} of MetalLB v{VERSION} has no Namespace")
    return out


def load_upstream(path: Path) -> list[dict[str, Any]]:
    """The documents of upstream's multi-document manifest (empty ones dropped)."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# -- the add-on -----------------------------------------------------------------------------------


class MetalLB:
    """MetalLB's controller and L2 speaker on the real nodes (see the module docstring)."""

    name = "metallb"

    def recipes(self) -> list[images.Recipe]:
        from tfsbed import toolchain

        work = images.images_cache() / "files"
        # entrypoints as upstream's controller/Dockerfile and speaker/Dockerfile
        return [
            images.Recipe(
                CONTROLLER_IMAGE,
                (
                    images.Entry("/controller", toolchain.binary("metallb-controller")),
                    *images.passwd_files(work),
                ),
                entrypoint=("/controller",),
                labels=images._labels(f"MetalLB controller v{VERSION} built from its Go module"),
            ),
            images.Recipe(
                SPEAKER_IMAGE,
                (images.Entry("/speaker", toolchain.binary("metallb-speaker")), *images.passwd_files(work)),
                entrypoint=("/speaker",),
                labels=images._labels(f"MetalLB speaker v{VERSION} built from its Go module"),
            ),
        ]

    def manifests(self, ctx: Context) -> list[dict[str, Any]]:
        from tfsbed import toolchain

        if not ctx.plan.nodes:
            raise Unavailable("metallb: runs on a real node (`cluster up` with `--real-nodes` above 0)")
        upstream = load_upstream(toolchain.data("metallb", MANIFEST))
        try:
            return adapt(upstream, ctx.server)
        except ValueError as exc:
            raise Unavailable(f"metallb: {exc}") from exc

    def wait(self, ctx: Context, deadline: float) -> None:
        for what in (f"deployment/{CONTROLLER}", f"daemonset/{SPEAKER}"):
            rolled_out(ctx, NAMESPACE, what, deadline, f"metallb: {what}")
        # the pool's kinds exist once the CRDs (applied with the rest) are established
        left = max(5, int(deadline - time.monotonic()))
        crds = ("crd/ipaddresspools.metallb.io", "crd/l2advertisements.metallb.io")
        try:
            ctx.kubectl("wait", "--for=condition=Established", *crds, f"--timeout={left}s", timeout=left + 10)
        except Unavailable as exc:
            raise Timeout(f"metallb: CRDs not established in time: {exc}") from exc
        items = pool_manifests(ctx.plan)
        ctx.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
        )
        # the controller has loaded the pool once it reports the pool's free addresses
        size = POOL_LAST - POOL_FIRST + 1
        while (available := _available(ctx)) is None:
            if time.monotonic() > deadline:
                raise Timeout(
                    f"metallb: the controller did not report IPAddressPool {NAMESPACE}/{POOL} in time"
                )
            time.sleep(1)
        ctx.say(f"metallb: pool {pool_range(ctx.plan)} loaded ({available} of {size} free)")


def _available(ctx: Context) -> int | None:
    try:
        doc = json.loads(ctx.kubectl("get", "ipaddresspool", POOL, "-n", NAMESPACE, "-o", "json"))
    except (Unavailable, ValueError):
        return None
    value = doc.get("status", {}).get("availableIPv4")
    return int(value) if value is not None else None
