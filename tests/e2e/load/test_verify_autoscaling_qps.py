"""verify-autoscaling on request rate: the ECI-like values through the Ingress, on the real node.

The ACK + ECI guide scales BERT on ``sls_ingress_qps``: requests per second of the Ingress
route, which Alibaba's metrics adapter reads from the nginx-ingress logs in SLS. Here the
same HPA shape (an External metric of the chart's Ingress route, 1 to N replicas, short
behaviour windows) reads the Prometheus form (``autoscaling.prometheusQps``): Traefik
serves the Ingress, Prometheus scrapes its ``traefik_service_requests_total``, and
prometheus-adapter serves ``ingress_requests_per_second{route=<ns>-<service>-<port>}``.
What differs from ACK is only which service computes the rate.

One release for the module; Locust reaches it by host name (``--through ingress``: the
Ingress's host at the node address Traefik published in its status), as a user's client
would. The HPA controller is the cluster's own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from support.cluster_helpers import Cluster, RealNode
from support.load_servers import tfsctl as tfsctl_cli
from support.release_cluster import local_preset_on_real_node, models_pv, module_namespace, tfsctl
from tfsbed.canary_models import MODEL, canary_models_dir
from tfsbed.cluster.addons import traefik as T

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RELEASE = "tfs"
FULL = "tfs-tensorflow-serving"
HOST = "tfs.local"
TARGET_RPS = 4  # per pod: 4 users at 3 requests/s each ask for 3 pods
UNSERVED = "tfsctl_unserved_requests_per_second"


def _values(real_node: RealNode, ingress_metric: str) -> dict:
    values = local_preset_on_real_node(real_node, MODEL)
    values["ingress"]["enabled"] = True
    values["autoscaling"].update(
        maxReplicas=3,
        targetCPUUtilizationPercentage=0,
        prometheusQps={
            "enabled": True,
            "source": "ingress",
            "ingressMetric": ingress_metric,
            "targetAverageValue": str(TARGET_RPS),
        },
    )
    return values


def _deploy(cluster: Cluster, namespace: str, values: dict, tmp: Path) -> None:
    (tmp / "values.yaml").write_text(yaml.safe_dump(values))
    done = tfsctl(
        cluster, "deploy", "--release", RELEASE, "-n", namespace, "--timeout", "240",
        "-f", str(tmp / "values.yaml"), timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, real_node: RealNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(namespace, node IP) of the release, its HPA on the Ingress route's request rate."""
    tmp = tmp_path_factory.mktemp("qps")
    node = client.CoreV1Api(cluster.api).read_node(real_node.name)
    (ip,) = [a.address for a in node.status.addresses if a.type == "InternalIP"]
    with (
        module_namespace(cluster, "e2e-qps") as ns,
        models_pv(cluster, ns, f"{FULL}-models", canary_models_dir()),
    ):
        _deploy(cluster, ns, _values(real_node, "ingress_requests_per_second"), tmp)
        yield ns, str(ip)


def by_name(ip: str) -> tuple[str, ...]:
    """The Ingress host at the node's address, given by hand."""
    return "--target", f"http://{HOST}", "--resolve", f"{HOST}:{T.HOST_PORT}:{ip}"


def verify(
    cluster: Cluster, namespace: str, route: tuple[str, ...], report: Path, *extra: str
) -> tuple[int, dict, str]:
    started = time.monotonic()
    done = tfsctl_cli(
        "verify-autoscaling", "--release", RELEASE, "--namespace", namespace, "--report", str(report),
        "--output", "json", *route, "--model", MODEL,
        "--users", "4", "--user-rps", "3", "--p95-ms", "3000", "--p99-ms", "6000", *extra,
        timeout=900, env={"KUBECONFIG": str(cluster.kubeconfig)},
    )  # fmt: skip
    print(f"measured: verify-autoscaling took {time.monotonic() - started:.1f}s (exit {done.returncode})")
    try:
        data = json.loads(done.stdout) if done.stdout.strip() else {}
    except ValueError:
        raise AssertionError(f"no JSON report (exit {done.returncode}): {done.stderr[-3000:]}") from None
    return done.returncode, data, done.stderr


def test_ingress_qps_scales_out_and_back_in_with_no_failed_request(
    cluster: Cluster, release: tuple[str, str], tmp_path: Path
) -> None:
    namespace, ip = release
    code, data, stderr = verify(
        cluster, namespace, ("--through", "ingress"), tmp_path / "report", "--duration", "75s",
        "--expect-max-replicas-at-least", "2", "--scale-out-within", "90s", "--scale-in-within", "180s",
    )  # fmt: skip
    checks = {c["name"]: c for c in data.get("checks", [])}
    assert code == 0, f"{stderr[-1500:]}\n" + "\n".join(
        f"{n}: {c['status']} {c['reason']}" for n, c in checks.items()
    )
    assert checks["scale-out"]["status"] == "pass"
    assert checks["scale-in"]["status"] == "pass"
    # found from the Ingress: its rule host, at the address Traefik published in its status
    context = data["context"]
    assert (context["through"], context["target"]) == ("ingress", f"http://{HOST}")
    assert context["resolve"] == f"{HOST}:{T.HOST_PORT}:{ip}"
    # the metric the HPA read, against its target (not our own counter)
    (metric,) = data["metrics"]
    assert metric["name"] == f"external/ingress_requests_per_second{{route={namespace}-{FULL}-8501}}"
    assert max(p["current"] for p in metric["series"] if p["current"] is not None) > TARGET_RPS
    summary = data["load"]["summary"]
    assert summary["requests"] > 100
    assert summary["failures"] == 0  # readiness gates new pods, preStop drains leaving ones
    assert max(p["ready"] for p in data["timeline"]["ready"]) >= 2
    assert data["timeline"]["ready"][-1]["ready"] == 1
    for name in ("report.json", "report.html", "autoscaling.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_a_metric_the_adapter_does_not_serve_fails_in_one_line_naming_it(
    cluster: Cluster, real_node: RealNode, release: tuple[str, str], tmp_path: Path
) -> None:
    namespace, ip = release
    _deploy(cluster, namespace, _values(real_node, UNSERVED), tmp_path)
    started = time.monotonic()
    code, _, stderr = verify(
        cluster, namespace, by_name(ip), tmp_path / "report",
        "--duration", "120s", "--scale-out-within", "20s",
    )  # fmt: skip
    took = time.monotonic() - started
    errors = [line for line in stderr.splitlines() if line.startswith("tfsctl: error:")]
    assert code != 0
    assert len(errors) == 1, stderr[-2000:]
    assert f"external metric {UNSERVED}{{route={namespace}-{FULL}-8501}}" in errors[0]
    assert "is not served by external.metrics.k8s.io" in errors[0]
    assert "still not served 20s into the load" in errors[0]
    assert took < 120  # stopped at the bound, not after the whole load
