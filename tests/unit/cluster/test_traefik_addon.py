"""The Traefik add-on's pure parts: IngressClass, RBAC, the pod and how Prometheus finds it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.prom_relabel import relabel
from tfsbed import toolchain
from tfsbed.cluster import addons
from tfsbed.cluster.addons import prometheus as P
from tfsbed.cluster.addons import traefik as T
from tfsbed.cluster.node import config as nconfig
from tfsctl.errors import Unavailable

SERVER = "https://172.31.18.1:27443"
PLAN = nconfig.plan(27400, 1)
NODE = PLAN.nodes[0]


def _objects() -> list[dict[str, Any]]:
    return T.manifests(NODE, SERVER)


def _kind(kind: str, name: str) -> dict[str, Any]:
    return next(o for o in _objects() if o["kind"] == kind and o["metadata"]["name"] == name)


def _pod() -> dict[str, Any]:
    return _kind("Deployment", "traefik")["spec"]["template"]


def _container() -> dict[str, Any]:
    (c,) = _pod()["spec"]["containers"]
    return c


def _flag(name: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in _container()["args"] if a.startswith(f"--{name}=")]
    return value


def test_the_ingress_class_is_traefiks_and_the_cluster_default() -> None:
    ic = _kind("IngressClass", "traefik")
    # GetIngressClasses (ingress/client.go) keeps only classes of this controller
    assert ic["spec"] == {"controller": "traefik.io/ingress-controller"}
    assert ic["metadata"]["annotations"] == {"ingressclass.kubernetes.io/is-default-class": "true"}
    assert "namespace" not in ic["metadata"]


def test_the_provider_is_the_kubernetes_ingress_one_and_nothing_calls_out() -> None:
    assert _flag("providers.kubernetesingress") == "true"
    assert _flag("global.checkNewVersion") == "false"
    assert _flag("global.sendAnonymousUsage") == "false"
    # no other provider (CRD, Gateway) that would need its own CRDs and rights
    providers = {a.split("=")[0].split(".")[1] for a in _container()["args"] if a.startswith("--providers.")}
    assert providers == {"kubernetesingress"}


def test_the_web_entry_point_is_published_on_the_nodes_port_80() -> None:
    ports = {p["name"]: p for p in _container()["ports"]}
    assert _flag("entryPoints.web.address") == f":{ports['web']['containerPort']}/tcp"
    assert ports["web"]["hostPort"] == 80
    spec = _pod()["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": NODE.name}
    assert nconfig.REAL_NODE_TOLERATION in spec["tolerations"]
    assert T.entry_url(NODE) == f"http://{NODE.ip}:80"
    # a surge pod could not get the same hostPort on the one node
    assert _kind("Deployment", "traefik")["spec"]["strategy"] == {"type": "Recreate"}


def test_the_ingress_status_reports_the_node_address() -> None:
    assert _flag("providers.kubernetesingress.ingressendpoint.ip") == NODE.ip


def test_probes_use_ping_on_the_traefik_entry_point() -> None:
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    assert _flag("ping") == "true"
    assert _flag("entryPoints.traefik.address") == f":{ports['traefik']}/tcp"
    for probe in ("readinessProbe", "livenessProbe"):
        assert _container()[probe]["httpGet"] == {"path": "/ping", "port": "traefik"}


def test_prometheus_scrapes_the_metrics_entry_point_through_the_pod_annotations() -> None:
    """Cross-module: the metrics pipeline's own relabelling finds Traefik's metrics."""
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    assert _flag("metrics.prometheus") == "true"
    assert _flag("metrics.prometheus.entryPoint") == "metrics"
    assert _flag("entryPoints.metrics.address") == f":{ports['metrics']}/tcp"
    ann = "__meta_kubernetes_pod_annotation_"
    discovered = {
        "__address__": "10.130.0.9:8000",
        "__meta_kubernetes_namespace": "traefik",
        "__meta_kubernetes_pod_name": "traefik-abc",
        "__meta_kubernetes_pod_phase": "Running",
        **{
            ann + k.replace(".", "_").replace("/", "_"): v
            for k, v in _pod()["metadata"]["annotations"].items()
        },
    }
    (job,) = P.scrape_config(SERVER)["scrape_configs"]
    target = relabel(job["relabel_configs"], discovered)
    assert target is not None
    assert target["__address__"] == f"10.130.0.9:{ports['metrics']}"
    assert target["__metrics_path__"] == "/metrics"


def test_rbac_covers_what_the_ingress_provider_watches_and_writes() -> None:
    (role,) = [o for o in _objects() if o["kind"] == "ClusterRole"]

    def allowed(group: str, resource: str, verb: str) -> bool:
        return any(
            group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
            for r in role["rules"]
        )

    # the informers of clientWrapper.WatchAll (ingress/client.go): list + watch each
    for group, resource in [
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "ingressclasses"),
        ("", "services"),
        ("discovery.k8s.io", "endpointslices"),
        ("", "secrets"),
        ("", "nodes"),
    ]:
        assert allowed(group, resource, "list") and allowed(group, resource, "watch"), resource
    assert allowed("networking.k8s.io", "ingresses/status", "update")
    assert not allowed("", "pods", "list")
    (binding,) = [o for o in _objects() if o["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "traefik", "namespace": "traefik"}]
    assert _pod()["spec"]["serviceAccountName"] == "traefik"


def test_traefik_reads_a_kubeconfig_naming_the_host_not_the_in_cluster_config() -> None:
    env = {e["name"]: e["value"] for e in _container()["env"]}
    # Provider.newK8sClient prefers the in-cluster config whenever this is set
    assert env["KUBERNETES_SERVICE_HOST"] == ""
    mounts = {m["name"]: m["mountPath"] for m in _container()["volumeMounts"]}
    assert env["KUBECONFIG"] == f"{mounts['config']}/kubeconfig"
    kcfg = json.loads(_kind("ConfigMap", "traefik")["data"]["kubeconfig"])
    (cluster,) = kcfg["clusters"]
    assert cluster["cluster"]["server"] == SERVER
    assert cluster["cluster"]["tls-server-name"] == P.APISERVER_TLS_NAME
    (user,) = kcfg["users"]
    assert user["user"] == {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}


def test_the_pod_meets_pod_security_restricted() -> None:
    spec = _pod()["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = _container()["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    # a non-root process binds the entry points: every container port is above 1024
    assert all(p["containerPort"] > 1024 for p in _container()["ports"])


def test_the_image_is_the_upstream_name_running_the_pinned_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    binary = tmp_path / "traefik"
    binary.write_bytes(b"\x7fELF")
    monkeypatch.setattr(toolchain, "binary", lambda name: binary if name == "traefik" else None)
    (recipe,) = T.Traefik().recipes()
    assert (
        recipe.ref
        == _container()["image"]
        == f"docker.io/library/traefik:v{toolchain.TOOLS['traefik'].version}"
    )
    assert nconfig.mirror_path(recipe.ref)
    # the module's Dockerfile: COPY traefik /, ENTRYPOINT ["/traefik"]
    assert recipe.entrypoint == ("/traefik",)
    assert [(e.path, e.source) for e in recipe.entries] == [("/traefik", binary)]
    assert recipe.user == f"{T.USER}:{T.USER}"


def test_without_a_real_node_the_addon_says_what_to_start() -> None:
    ctx = addons.Context(plan=nconfig.plan(27400, 0), server=SERVER, kubectl=lambda *a, **k: "", say=print)
    with pytest.raises(Unavailable, match=r"`--real-nodes` above 0"):
        T.Traefik().manifests(ctx)


def test_traefik_is_a_registered_addon() -> None:
    assert [type(a) for a in addons.select(("traefik",))] == [T.Traefik]
