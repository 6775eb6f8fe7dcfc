"""The metrics pipeline add-on (Prometheus + prometheus-adapter) against a release on the real node.

One release for the module: the ``local`` preset on the session cluster's real node, two
pods, monitoring on (the chart's ``prometheus.io/*`` annotations, TF Serving's
``/monitoring/prometheus/metrics``). The tests run in file order:

- Prometheus, finding pods through Kubernetes discovery, has both pods as targets that are
  up, and ``:tensorflow:serving:request_count`` rises with the requests sent;
- ``custom.metrics.k8s.io`` gives TF Serving's request rate for each pod;
- (``external.metrics.k8s.io``'s Ingress route rate, from the Traefik add-on's real series, is
  ``test_ingress.py``'s);
- a metric the adapter does not serve is NotFound on both APIs (what an HPA sees);
- ``tfsctl canary`` with ``prometheus.url`` at this Prometheus judges live traffic from the
  real series of the model (TF Serving labels its metrics by model and status, never by
  version: ``servables/tensorflow/util.cc``).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.utils import parse_quantity

from support.cluster_helpers import Cluster, RealNode, wait_for
from support.metrics_pipeline import Background, prom, prometheus_url
from support.release_cluster import local_preset_on_real_node, models_pv, module_namespace, tfsctl
from tfsbed.canary_models import MODEL, SAME, canary_models_dir
from tfsbed.cluster.addons import prometheus as P
from tfsctl import kubestate

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RELEASE = "tfs"
FULL = "tfs-tensorflow-serving"
SELECTOR = kubestate.server_selector(RELEASE)
BODY = json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]]}).encode()


@dataclass
class Release:
    cluster: Cluster
    namespace: str
    core: Any
    pods: dict[str, str] = field(default_factory=dict)  # name -> IP

    def refresh(self) -> dict[str, str]:
        items = self.core.list_namespaced_pod(self.namespace, label_selector=SELECTOR).items
        ready = [p for p in items if kubestate.is_ready(p) and not kubestate.is_terminating(p)]
        self.pods = {p.metadata.name: p.status.pod_ip for p in ready}
        return self.pods

    def predict(self, count: int, first: int = 0) -> None:
        """``count`` predict requests, round-robin over the pods from the ``first``-th."""
        for i in range(first, first + count):
            ip = list(self.pods.values())[i % len(self.pods)]
            req = urllib.request.Request(
                f"http://{ip}:8501/v1/models/{MODEL}:predict", data=BODY, method="POST"
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200


def _scalar(url: str, promql: str) -> float | None:
    result = prom(url, "/api/v1/query", query=promql)["result"]
    return float(result[0]["value"][1]) if result else None


def _raw(cluster: Cluster, path: str, check: bool = True) -> Any:
    done = cluster.kubectl("get", "--raw", path, check=False)
    if not check:
        return done
    assert done.returncode == 0, f"{path}: {done.stderr}"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, real_node: RealNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    tmp = tmp_path_factory.mktemp("metrics")
    values = local_preset_on_real_node(real_node, MODEL)
    values["autoscaling"] = {"enabled": False}
    values["replicaCount"] = 2
    assert values["server"]["monitoring"]["enabled"] is True
    (tmp / "values.yaml").write_text(yaml.safe_dump(values))
    with (
        module_namespace(cluster, "e2e-metrics") as ns,
        models_pv(cluster, ns, f"{FULL}-models", canary_models_dir()),
    ):
        started = time.monotonic()
        done = tfsctl(
            cluster,
            "deploy",
            "--release",
            RELEASE,
            "-n",
            ns,
            "--timeout",
            "300",
            "-f",
            str(tmp / "values.yaml"),
            timeout=400,
        )
        assert done.returncode == 0, done.stderr
        rel = Release(cluster, ns, client.CoreV1Api(cluster.api))
        wait_for(lambda: len(rel.refresh()) == 2, timeout=180, what="2 ready pods", interval=2)
        print(f"measured: release of 2 pods ready on the real node in {time.monotonic() - started:.1f}s")
        yield rel


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster) -> str:
    return prometheus_url(cluster)


def test_prometheus_discovers_both_pods_and_the_request_counter_rises(
    release: Release, prometheus: str
) -> None:
    ns = release.namespace

    def both_up() -> bool:
        targets = prom(prometheus, "/api/v1/targets", state="active")["activeTargets"]
        ours = {t["labels"].get("pod"): t for t in targets if t["labels"].get("namespace") == ns}
        return set(release.pods) <= set(ours) and all(ours[p]["health"] == "up" for p in release.pods)

    started = time.monotonic()
    wait_for(both_up, timeout=90, what="both pods as targets that are up", interval=2)
    print(f"measured: both pods scraped and up {time.monotonic() - started:.1f}s after they were ready")
    targets = prom(prometheus, "/api/v1/targets", state="active")["activeTargets"]
    scraped = {t["scrapeUrl"] for t in targets if t["labels"].get("namespace") == ns}
    assert scraped == {f"http://{ip}:8501/monitoring/prometheus/metrics" for ip in release.pods.values()}

    query = f'sum({P.SERVING_REQUEST_COUNT}{{namespace="{ns}",model_name="{MODEL}"}})'
    before = _scalar(prometheus, query) or 0.0
    release.predict(20)
    wait_for(
        lambda: (_scalar(prometheus, query) or 0.0) >= before + 20,
        timeout=30,
        what=f"{query} to rise by 20 from {before}",
    )
    by_pod = prom(prometheus, "/api/v1/query", query=f"sum by (pod) ({query[4:-1]})")["result"]
    assert {r["metric"]["pod"] for r in by_pod} == set(release.pods)


def test_custom_metrics_api_gives_tf_serving_request_rate_per_pod(release: Release) -> None:
    path = (
        f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/{release.namespace}/pods/*/{P.SERVING_RATE_METRIC}"
    )

    seen: list[str] = []

    def rates() -> dict[str, float] | None:
        done = _raw(release.cluster, path, check=False)
        if done.returncode != 0:
            seen[:] = [done.stderr.strip()]
            return None
        items = json.loads(done.stdout)["items"]
        got = {i["describedObject"]["name"]: float(parse_quantity(i["value"])) for i in items}
        seen[:] = [repr(got)]
        return got if set(got) == set(release.pods) and all(v > 0 for v in got.values()) else None

    with Background(lambda i: release.predict(1, first=i)) as sender:
        started = time.monotonic()
        try:
            got = wait_for(rates, timeout=120, what=f"{P.SERVING_RATE_METRIC} > 0 for both pods", interval=3)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; last answer {seen}; pods {release.pods}; sent {sender.sent}"
            ) from None
    print(f"measured: per-pod rate served {time.monotonic() - started:.1f}s after load started: {got}")
    assert all(0 < v < 50 for v in got.values()), got  # a few per second each, nowhere near 50


@pytest.mark.parametrize(
    "path",
    [
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/{ns}/pods/*/no_such_metric",
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/no_such_metric",
    ],
)
def test_a_metric_the_adapter_does_not_serve_is_not_found(release: Release, path: str) -> None:
    done = _raw(release.cluster, path.format(ns=release.namespace), check=False)
    assert done.returncode != 0
    assert "NotFound" in done.stderr or "not found" in done.stderr, done.stderr


def test_canary_prometheus_check_reads_the_model_series_from_this_prometheus(
    release: Release, prometheus: str, tmp_path: Path
) -> None:
    spec = {
        "bakeSeconds": 20,  # four scrapes at 5 s: the window's increase needs two samples
        "intervalSeconds": 2,
        "maxRequestRate": 10,
        "loadTimeoutSeconds": 180,
        "inputs": {"count": 4, "batchSize": 2},
        "latency": {"maxP50Ratio": None, "maxP99Ratio": None, "minSamples": 5},
        "prometheus": {
            "url": prometheus,
            "selector": f'namespace="{release.namespace}"',
            "minRequests": 20,
            "maxErrorRate": 0.0,
            # this test is about reading the series, not about a loaded machine's latency
            "maxP99Ratio": 1000.0,
        },
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    with Background(lambda i: release.predict(1, first=i), rate=4.0):
        time.sleep(25)  # traffic in the window before the bake too
        done = tfsctl(
            release.cluster,
            "canary",
            MODEL,
            str(SAME),
            "--release",
            RELEASE,
            "-n",
            release.namespace,
            "--timeout",
            "240",
            "--spec",
            str(tmp_path / "spec.yaml"),
            "-o",
            "json",
            timeout=400,
        )
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    assert report, done.stderr
    checks = {c["name"]: c for c in report["checks"]}
    assert "prometheus" not in checks, checks.get("prometheus")  # neither unreachable nor too few requests
    errors = checks["prometheus.maxErrorRate"]
    assert errors["passed"] and errors["value"] == 0.0, errors
    live = int(errors["detail"].split(" of ")[1].split()[0])
    assert live >= 20, errors["detail"]  # shadow requests and the sender's, counted by Prometheus
    p99 = checks["prometheus.maxP99Ratio"]
    assert p99["value"] is not None and p99["value"] > 0, p99  # request_latency histograms before and during
    assert done.returncode == 0 and report["decision"] == "promoted", done.stderr
