"""The metrics pipeline add-on's pure parts: scrape config, adapter rules, objects."""

from __future__ import annotations

import base64
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from support.pki_ca import self_signed_ca
from support.prom_relabel import relabel as _relabel
from tfsbed import toolchain
from tfsbed.cluster import addons
from tfsbed.cluster.addons import prometheus as P
from tfsbed.cluster.node import config as nconfig
from tfsbed.cluster.node import pki

SERVER = "https://172.31.18.1:27443"
POD = {
    "__address__": "10.130.0.7:8500",
    "__meta_kubernetes_namespace": "tfs",
    "__meta_kubernetes_pod_name": "tfs-tensorflow-serving-abc",
    "__meta_kubernetes_pod_phase": "Running",
    "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
    "__meta_kubernetes_pod_annotation_prometheus_io_port": "8501",
    "__meta_kubernetes_pod_annotation_prometheus_io_path": "/monitoring/prometheus/metrics",
}


def _job() -> dict:
    (job,) = P.scrape_config(SERVER)["scrape_configs"]
    return job


def test_scrape_config_discovers_pods_through_kubernetes_sd_every_5s() -> None:
    cfg = P.scrape_config(SERVER)
    assert cfg["global"]["scrape_interval"] == "5s"
    (sd,) = _job()["kubernetes_sd_configs"]
    assert sd["role"] == "pod"
    # the apiserver as pods reach it, verified under a name its certificate has
    assert sd["api_server"] == SERVER and sd["tls_config"]["server_name"] == "localhost"
    assert sd["authorization"]["credentials_file"].endswith("serviceaccount/token")


def test_an_annotated_pod_is_scraped_at_its_annotated_port_and_path_with_namespace_and_pod() -> None:
    target = _relabel(_job()["relabel_configs"], POD)
    assert target is not None
    assert target["__address__"] == "10.130.0.7:8501"
    assert target["__metrics_path__"] == "/monitoring/prometheus/metrics"
    assert target["namespace"] == "tfs" and target["pod"] == "tfs-tensorflow-serving-abc"


@pytest.mark.parametrize(
    "change",
    [
        {"__meta_kubernetes_pod_annotation_prometheus_io_scrape": "false"},
        {"__meta_kubernetes_pod_annotation_prometheus_io_scrape": ""},
        {"__meta_kubernetes_pod_phase": "Succeeded"},
        {"__meta_kubernetes_pod_phase": "Pending"},
    ],
)
def test_pods_not_annotated_or_not_running_are_not_scraped(change: dict[str, str]) -> None:
    assert _relabel(_job()["relabel_configs"], {**POD, **change}) is None


def test_a_pod_without_declared_ports_is_scraped_at_the_annotated_port() -> None:
    target = _relabel(_job()["relabel_configs"], {**POD, "__address__": "10.130.0.7"})
    assert target is not None and target["__address__"] == "10.130.0.7:8501"


def test_traefik_backend_names_become_a_route_label_valid_in_a_label_selector() -> None:
    rules = _job()["metric_relabel_configs"]
    series = {"__name__": P.TRAEFIK_SERVICE_REQUESTS, "service": "tfs-tfs-tensorflow-serving-8501@kubernetes"}
    out = _relabel(rules, series)
    assert out is not None and out[P.ROUTE_LABEL] == "tfs-tfs-tensorflow-serving-8501"
    assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", out[P.ROUTE_LABEL])
    # other series keep their labels as they are
    other = {"__name__": P.SERVING_REQUEST_COUNT, "service": "x@kubernetes"}
    assert P.ROUTE_LABEL not in (_relabel(rules, other) or {})


def test_promtool_accepts_the_scrape_config(tmp_path: Path) -> None:
    """Differential: Prometheus' own checker reads the file the add-on ships."""
    promtool = toolchain.binary("promtool")  # built with Prometheus (the image's binary)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(P.scrape_config(SERVER)))
    done = subprocess.run([promtool, "check", "config", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_adapter_serves_tf_serving_request_rate_per_pod_as_a_custom_metric() -> None:
    (rule,) = P.adapter_rules()["rules"]
    assert rule["seriesQuery"].startswith(":tensorflow:serving:request_count{")
    assert rule["resources"]["overrides"] == {
        "namespace": {"resource": "namespace"},
        "pod": {"resource": "pod"},
    }
    assert re.fullmatch(rule["name"]["matches"], P.SERVING_REQUEST_COUNT)
    assert rule["name"]["as"] == P.SERVING_RATE_METRIC
    assert "rate(<<.Series>>{<<.LabelMatchers>>}[30s])" in rule["metricsQuery"]
    assert rule["metricsQuery"].startswith("sum by (<<.GroupBy>>)")


def test_adapter_serves_ingress_rate_per_route_as_an_external_metric() -> None:
    (rule,) = P.adapter_rules()["externalRules"]
    assert rule["seriesQuery"] == 'traefik_service_requests_total{route!=""}'
    assert rule["resources"] == {"namespaced": False}
    assert rule["name"]["as"] == P.INGRESS_RATE_METRIC
    assert rule["metricsQuery"].startswith("sum by (route) (rate(")


def _objects() -> list[dict]:
    plan = nconfig.plan(27400, 1)
    serving = pki.issue(
        _CA.cert_pem, _CA.key_pem, "adapter", client=False, server_names=P.adapter_dns_names()
    )
    return [
        *P.prometheus_manifests(SERVER),
        *P.adapter_manifests(plan.nodes[0], SERVER, _CA.cert_pem, serving),
    ]


_CA = pki.Issued(*self_signed_ca())


def _kind(objs: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def test_both_apiservices_point_at_the_adapter_with_the_cluster_ca() -> None:
    objs = _objects()
    for name in ("v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"):
        svc = _kind(objs, "APIService", name)["spec"]
        assert svc["group"] == name.split(".", 1)[1] and svc["version"] == "v1beta1"
        assert svc["service"] == {"name": "prometheus-adapter", "namespace": "monitoring", "port": 6443}
        assert base64.b64decode(svc["caBundle"]) == _CA.cert_pem
        assert "insecureSkipTLSVerify" not in svc


def test_the_adapter_service_names_the_node_the_adapter_listens_on() -> None:
    objs = _objects()
    node = nconfig.plan(27400, 1).nodes[0]
    svc = _kind(objs, "Service", "prometheus-adapter")["spec"]
    assert svc["type"] == "ExternalName" and svc["externalName"] == node.ip
    pod = _kind(objs, "Deployment", "prometheus-adapter")["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True and pod["nodeSelector"] == {"kubernetes.io/hostname": node.name}
    args = pod["containers"][0]["args"]
    assert f"--secure-port={P.ADAPTER_PORT}" in args
    assert "--prometheus-url=http://prometheus.monitoring.svc:9090/" in args


def test_the_serving_certificate_is_signed_by_the_ca_for_the_service_name() -> None:
    secret = _kind(_objects(), "Secret", "prometheus-adapter-serving")
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    ca = x509.load_pem_x509_certificate(_CA.cert_pem)
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )
    # the aggregator verifies <service>.<namespace>.svc
    assert "prometheus-adapter.monitoring.svc" in names


def test_prometheus_runs_on_the_real_node_with_its_config_and_discovery_rights() -> None:
    objs = _objects()
    pod = _kind(objs, "Deployment", "prometheus")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"node.tfsctl.dev/type": "real"}
    assert nconfig.REAL_NODE_TOLERATION in pod["tolerations"]
    assert pod["containers"][0]["image"] == "docker.io/prom/prometheus:v3.16.0"
    cm = _kind(objs, "ConfigMap", "prometheus")
    assert yaml.safe_load(cm["data"]["prometheus.yml"]) == P.scrape_config(SERVER)
    role = _kind(objs, "ClusterRole", "tfsctl:prometheus")
    assert any("pods" in r.get("resources", []) and "watch" in r["verbs"] for r in role["rules"])


def test_images_carry_upstream_names_on_mirrored_registries() -> None:
    for ref in (P.PROMETHEUS_IMAGE, P.ADAPTER_IMAGE):
        assert nconfig.mirror_path(ref)


def test_the_pipeline_is_a_registered_addon() -> None:
    assert any(isinstance(a, P.MetricsPipeline) for a in addons.ADDONS)
