"""The MetalLB add-on's pure parts: the pool from the plan, upstream's manifest as the bed runs it."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from tfsbed import toolchain
from tfsbed.cluster import NODE_TYPE_LABEL, addons
from tfsbed.cluster.addons import metallb as M
from tfsbed.cluster.node import config as nconfig

SERVER = "https://172.31.59.1:31543"
PLAN = nconfig.plan(31500, 1)


@pytest.fixture(scope="module")
def upstream() -> list[dict[str, Any]]:
    """Upstream's release manifest of the pinned module (kept by the toolchain)."""
    return M.load_upstream(toolchain.data("metallb", M.MANIFEST))


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _pod(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return dict(_one(docs, kind, name)["spec"]["template"]["spec"])


def test_pool_is_200_to_250_of_the_clusters_uplink() -> None:
    assert M.pool_range(PLAN) == "172.31.59.200-172.31.59.250"
    assert M.pool_range(nconfig.plan(26400, 1)) == "172.31.8.200-172.31.8.250"
    (pool, l2) = M.pool_manifests(PLAN)
    assert pool["kind"] == "IPAddressPool" and pool["spec"]["addresses"] == ["172.31.59.200-172.31.59.250"]
    assert l2["kind"] == "L2Advertisement" and l2["spec"]["ipAddressPools"] == [pool["metadata"]["name"]]
    assert {pool["metadata"]["namespace"], l2["metadata"]["namespace"]} == {M.NAMESPACE}


def test_pool_holds_neither_the_host_nor_any_node_address() -> None:
    plan = nconfig.plan(31500, 8)
    taken = [plan.uplink.host_ip, *(n.ip for n in plan.nodes)]
    assert not any(M.in_pool(plan, ip) for ip in taken)
    assert M.in_pool(plan, "172.31.59.200") and M.in_pool(plan, "172.31.59.250")
    assert not M.in_pool(plan, "172.31.59.251")
    first = ipaddress.IPv4Address(M.pool_range(plan).split("-")[0])
    assert first in plan.uplink.network


def test_images_keep_their_upstream_names_on_a_mirrored_registry(upstream: list[dict[str, Any]]) -> None:
    docs = M.adapt(upstream, SERVER)
    used = {
        c["image"]
        for d in docs
        if d["kind"] in ("Deployment", "DaemonSet")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert used == {"quay.io/metallb/controller:v0.15.2", "quay.io/metallb/speaker:v0.15.2"}
    assert {r.ref for r in M.MetalLB().recipes()} == used
    for image in used:
        assert nconfig.mirror_path(image).startswith("metallb/")


def test_recipes_run_the_binaries_as_upstream_images_do() -> None:
    by_ref = {r.ref: r for r in M.MetalLB().recipes()}
    assert by_ref[M.CONTROLLER_IMAGE].entrypoint == ("/controller",)
    assert by_ref[M.SPEAKER_IMAGE].entrypoint == ("/speaker",)


def test_rbac_is_upstreams_unchanged(upstream: list[dict[str, Any]]) -> None:
    kinds = ("ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
    docs = M.adapt(upstream, SERVER)
    rbac = [d for d in docs if d["kind"] in kinds]
    assert rbac == [d for d in upstream if d["kind"] in kinds]
    assert {d["kind"] for d in rbac} == set(kinds)
    speaker_role = _one(docs, "ClusterRole", "metallb-system:speaker")
    assert any("endpointslices" in r["resources"] for r in speaker_role["rules"])


def test_controller_and_speaker_run_on_the_real_nodes_only(upstream: list[dict[str, Any]]) -> None:
    docs = M.adapt(upstream, SERVER)
    for kind, name in (("Deployment", M.CONTROLLER), ("DaemonSet", M.SPEAKER)):
        pod = _pod(docs, kind, name)
        assert pod["nodeSelector"][NODE_TYPE_LABEL] == "real", kind
        assert nconfig.REAL_NODE_TOLERATION in pod["tolerations"]
    speaker = _pod(docs, "DaemonSet", M.SPEAKER)
    assert speaker["hostNetwork"] is True
    (container,) = speaker["containers"]
    assert "NET_RAW" in container["securityContext"]["capabilities"]["add"]


def test_both_reach_the_apiserver_through_the_host_address(upstream: list[dict[str, Any]]) -> None:
    docs = M.adapt(upstream, SERVER)
    cm = _one(docs, "ConfigMap", M.KUBECONFIG_CONFIGMAP)
    kubeconfig = json.loads(cm["data"]["kubeconfig"])
    cluster = kubeconfig["clusters"][0]["cluster"]
    assert cluster["server"] == SERVER and cluster["tls-server-name"] == "localhost"
    # the ConfigMap comes after its Namespace, so one apply creates both
    order = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert order.index(("Namespace", M.NAMESPACE)) < order.index(("ConfigMap", M.KUBECONFIG_CONFIGMAP))
    for kind, name in (("Deployment", M.CONTROLLER), ("DaemonSet", M.SPEAKER)):
        pod = _pod(docs, kind, name)
        (container,) = [c for c in pod["containers"] if c["name"] == name]
        env = {e["name"]: e.get("value") for e in container["env"]}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert env["KUBECONFIG"] == f"{mounts[M.KUBECONFIG_CONFIGMAP]}/kubeconfig", kind
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[M.KUBECONFIG_CONFIGMAP]["configMap"]["name"] == M.KUBECONFIG_CONFIGMAP


def test_webhooks_the_host_apiserver_cannot_call_are_left_out(upstream: list[dict[str, Any]]) -> None:
    assert any(d["kind"] == "ValidatingWebhookConfiguration" for d in upstream)
    assert "conversion" in _one(upstream, "CustomResourceDefinition", "bgppeers.metallb.io")["spec"]
    docs = M.adapt(upstream, SERVER)
    assert not any(d["kind"] == "ValidatingWebhookConfiguration" for d in docs)
    assert not any(d["metadata"]["name"] == "metallb-webhook-service" for d in docs)
    assert "conversion" not in _one(docs, "CustomResourceDefinition", "bgppeers.metallb.io")["spec"]
    (controller,) = _pod(docs, "Deployment", M.CONTROLLER)["containers"]
    assert "--webhook-mode=disabled" in controller["args"]
    # the pool's kinds are upstream's CRDs, applied with the rest
    crds = {d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert {"ipaddresspools.metallb.io", "l2advertisements.metallb.io"} <= crds


def test_adapt_leaves_upstreams_documents_untouched(upstream: list[dict[str, Any]]) -> None:
    before = json.dumps(upstream, sort_keys=True)
    M.adapt(upstream, SERVER)
    assert json.dumps(upstream, sort_keys=True) == before


def test_metallb_is_the_clusters_one_balancer_and_serves_services_without_a_class(
    upstream: list[dict[str, Any]],
) -> None:
    docs = M.MetalLB().manifests(addons.Context(PLAN, SERVER, lambda *a, **k: "", lambda m: None))
    for kind, name in (("Deployment", M.CONTROLLER), ("DaemonSet", M.SPEAKER)):
        (container,) = _pod(docs, kind, name)["containers"]
        assert not [a for a in container.get("args", []) if a.startswith("--lb-class")], kind


def test_a_manifest_without_the_speaker_is_refused_by_name(upstream: list[dict[str, Any]]) -> None:
    broken = [d for d in upstream if d["kind"] != "DaemonSet"]
    with pytest.raises(ValueError, match=r"metallb-native.yaml of MetalLB v0.15.2 has no DaemonSet speaker"):
        M.adapt(broken, SERVER)


def test_metallb_is_installed_after_the_metrics_pipeline() -> None:
    names = [a.name for a in addons.ADDONS]
    assert names[-1] == "metallb" and names.index("metrics-pipeline") < names.index("metallb")
