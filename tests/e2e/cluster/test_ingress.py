"""The chart's Ingress served by the Traefik add-on, reached from the host by host name.

One release for the module: the ``local`` preset on the session cluster's real node,
``service.type: ClusterIP`` (no LoadBalancer on the path), ``ingress.enabled`` with the
preset's class ``traefik`` and host ``tfs.local``. The host sends its requests to the web
entry point on the node's address (port 80) with ``Host: tfs.local``, as a user's client
that resolves the name to the node would; no DNS is involved. The tests run in file order:

- a REST metadata and predict request through the Ingress reach TF Serving; another host
  name is not routed (Traefik matches ``Host(`tfs.local`)``), and the Ingress status names
  the node's address (``ingressEndpoint.ip``);
- Prometheus scrapes Traefik's metrics entry point, and ``external.metrics.k8s.io`` gives a
  request rate above 0 for the route ``{namespace}-{service}-{port}`` while requests flow;
- ``tfsctl loadtest --resolve tfs.local:80:<node IP>`` (Locust) loads the model through the
  Ingress by host name, and Traefik counts every request it recorded.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.utils import parse_quantity

from support.cluster_helpers import Cluster, RealNode, wait_for
from support.metrics_pipeline import DIRECT, Background, prom, prometheus_url
from support.release_cluster import local_preset_on_real_node, models_pv, module_namespace, tfsctl
from tfsbed.canary_models import MODEL, canary_models_dir
from tfsbed.cluster.addons import prometheus as P
from tfsbed.cluster.addons import traefik as T
from tfsctl import kubestate
from tfsctl.release import routes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RELEASE = "tfs"
FULL = "tfs-tensorflow-serving"
HOST = "tfs.local"
BODY = json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]]}).encode()
_OPENER = DIRECT  # straight to the node, whatever proxy the environment names


@dataclass
class Release:
    cluster: Cluster
    namespace: str
    node_ip: str

    @property
    def route(self) -> str:
        """The route of the live Ingress as tfsctl's route model names it (``{namespace}-{service}-{port}``).

        The test then checks that Traefik's series carry this very name.
        """
        done = self.cluster.kubectl("get", "ingress", FULL, "-n", self.namespace, "-o", "json")
        (route,) = routes.ingress_routes([json.loads(done.stdout)])
        assert route == f"{self.namespace}-{FULL}-8501"  # the REST port, by number
        return route

    def request(self, path: str, body: bytes | None = None, host: str = HOST) -> tuple[int, bytes]:
        """One request from the host to the web entry point on the node, with ``Host: host``."""
        req = urllib.request.Request(
            f"http://{self.node_ip}:{T.HOST_PORT}{path}",
            data=body,
            method="POST" if body is not None else "GET",
            headers={"Host": host, "Content-Type": "application/json"},
        )
        try:
            with _OPENER.open(req, timeout=10) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def _node_ip(cluster: Cluster, name: str) -> str:
    node = client.CoreV1Api(cluster.api).read_node(name)
    (ip,) = [a.address for a in node.status.addresses if a.type == "InternalIP"]
    return str(ip)


@pytest.fixture(scope="module")
def release(
    cluster: Cluster, real_node: RealNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    tmp = tmp_path_factory.mktemp("ingress")
    values = local_preset_on_real_node(real_node, MODEL)
    values["autoscaling"] = {"enabled": False}
    values["replicaCount"] = 1
    # the preset's Ingress as written (class traefik, host tfs.local), switched on
    assert values["ingress"]["className"] == T.INGRESS_CLASS
    assert [h["host"] for h in values["ingress"]["hosts"]] == [HOST]
    values["ingress"]["enabled"] = True
    (tmp / "values.yaml").write_text(yaml.safe_dump(values))
    with (
        module_namespace(cluster, "e2e-ingress") as ns,
        models_pv(cluster, ns, f"{FULL}-models", canary_models_dir()),
    ):
        started = time.monotonic()
        done = tfsctl(
            cluster, "deploy", "--release", RELEASE, "-n", ns, "--timeout", "240",
            "-f", str(tmp / "values.yaml"), timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        print(f"measured: release ready on the real node in {time.monotonic() - started:.1f}s")
        yield Release(cluster, ns, _node_ip(cluster, real_node.name))


def test_rest_requests_from_the_host_reach_tf_serving_through_the_ingress_by_host_name(
    release: Release,
) -> None:
    path = f"/v1/models/{MODEL}"
    started = time.monotonic()
    # Traefik turns the new Ingress and its endpoints into a route within seconds
    wait_for(
        lambda: release.request(path)[0] == 200, timeout=60, what=f"GET {path} via Host {HOST}", interval=1
    )
    print(f"measured: route served {time.monotonic() - started:.1f}s after the release was ready")

    status, body = release.request(f"{path}/metadata")
    assert status == 200, body
    assert json.loads(body)["model_spec"]["name"] == MODEL
    status, body = release.request(f"{path}:predict", BODY)
    assert status == 200, body
    assert len(json.loads(body)["predictions"]) == 1

    # the rule is Host(`tfs.local`): another name reaches no backend
    status, _ = release.request(path, host="other.local")
    assert status == 404

    net = client.NetworkingV1Api(release.cluster.api)
    assert net.read_namespaced_ingress(FULL, release.namespace).spec.ingress_class_name == T.INGRESS_CLASS

    def status_ips() -> list[str]:
        lb = net.read_namespaced_ingress_status(FULL, release.namespace).status.load_balancer
        return [i.ip for i in (lb.ingress or [])]

    assert wait_for(status_ips, timeout=30, what="the Ingress status") == [release.node_ip]


def test_the_route_request_rate_reaches_prometheus_and_the_external_metrics_api(release: Release) -> None:
    route = release.route
    prometheus = prometheus_url(release.cluster)
    selector = urllib.parse.quote(f"{P.ROUTE_LABEL}={route}")
    path = (
        f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{release.namespace}/{P.INGRESS_RATE_METRIC}"
        f"?labelSelector={selector}"
    )
    seen: list[str] = []

    def rate() -> float | None:
        done = release.cluster.kubectl("get", "--raw", path, check=False)
        if done.returncode != 0:
            seen[:] = [done.stderr.strip()]
            return None
        items = json.loads(done.stdout)["items"]
        seen[:] = [repr(items)]
        return float(parse_quantity(items[0]["value"])) if items else None  # 0.0 is "not yet" too

    with Background(lambda _: release.request(f"/v1/models/{MODEL}:predict", BODY)[0]) as sender:
        started = time.monotonic()
        try:
            value = wait_for(
                rate, timeout=120, what=f"{P.INGRESS_RATE_METRIC}{{route={route}}} > 0", interval=3
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}; last answer {seen}; sent {sender.results}") from None
        print(
            f"measured: route rate {value:.2f}/s served {time.monotonic() - started:.1f}s after load started"
        )
        series = prom(
            prometheus,
            "/api/v1/query",
            query=f'{P.TRAEFIK_SERVICE_REQUESTS}{{{P.ROUTE_LABEL}="{route}"}}',
        )["result"]
    assert set(sender.results) == {200}, sender.results
    assert 0 < value < 50, value  # ~8 per second sent
    # Traefik 3.7's labels (pkg/observability/metrics/prometheus.go: code, method, protocol, service)
    by_code = {
        (s["metric"]["code"], s["metric"]["method"], s["metric"]["protocol"]): s["metric"] for s in series
    }
    assert ("200", "POST", "http") in by_code, series
    assert by_code[("200", "POST", "http")]["service"] == f"{route}@kubernetes"
    assert by_code[("200", "POST", "http")]["namespace"] == T.NAMESPACE  # scraped from Traefik's pod


def _traefik_count(release: Release, route: str) -> float:
    """Traefik's own ``traefik_service_requests_total`` for ``route`` (all codes), read from its pod."""
    pods = (
        client.CoreV1Api(release.cluster.api)
        .list_namespaced_pod(T.NAMESPACE, label_selector=f"app.kubernetes.io/name={T.NAME}")
        .items
    )
    (ip,) = [p.status.pod_ip for p in pods if kubestate.is_ready(p)]
    with _OPENER.open(f"http://{ip}:{T.METRICS_PORT}{T.METRICS_PATH}", timeout=10) as resp:
        text = resp.read().decode()
    pattern = re.compile(
        rf'^{P.TRAEFIK_SERVICE_REQUESTS}\{{[^}}]*service="{re.escape(route)}@kubernetes"[^}}]*\}} (\S+)$',
        re.M,
    )
    return sum(float(n) for n in pattern.findall(text))


def test_locust_loads_the_models_through_the_ingress_by_host_name(release: Release, tmp_path: Path) -> None:
    """``tfsctl loadtest --target http://tfs.local --resolve tfs.local:80:<node IP>``, counted by Traefik."""
    route = release.route
    before = _traefik_count(release, route)
    done = tfsctl(
        release.cluster, "loadtest",
        "--target", f"http://{HOST}", "--resolve", f"{HOST}:80:{release.node_ip}",
        "--model", MODEL, "--model-label", "stable", "--users", "2", "--user-rps", "5", "--duration", "5s",
        "--report", str(tmp_path), "--output", "json", timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout)
    (entry,) = data["requests_by_name"]
    assert (entry["name"], entry["failures"]) == (f"predict:{MODEL}@stable", 0), entry
    assert entry["requests"] >= 10, entry  # 2 users at 5/s for 5 s
    # every request Locust recorded went through Traefik's route (+ the /metadata read, + any cut at stop)
    served = _traefik_count(release, route) - before
    assert entry["requests"] <= served <= entry["requests"] + 4, (served, entry)
