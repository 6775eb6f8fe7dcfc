"""Autoscaling reaction (issue 14): from the HPA metric crossing its target to a new pod serving.

Takes the cluster from ``$KUBECONFIG`` (else the default local cluster's kubeconfig): a
``tfsctl cluster up --real-nodes 1`` cluster with its add-ons (metrics-server for CPU;
Traefik, Prometheus and prometheus-adapter for request rate). Each run installs the
``local`` preset on the real node in its own namespace, deletes it after, and leaves
nothing behind.

``tfsctl verify-autoscaling``'s report records the HPA's own status (which lags the metric by up
to a sync period) and the Deployment's ready count, not when the metrics API crossed the target
nor when a pod joined the EndpointSlice, so this samples those directly, once a second, while
its own threads send predict requests:

- CPU HPA: ``metrics.k8s.io`` pod usage summed over the release's pods against their summed
  requests (the HPA's utilisation rule), load through the MetalLB LoadBalancer address;
- QPS HPA (``autoscaling.prometheusQps``, source ``ingress``): ``external.metrics.k8s.io``'s
  ``ingress_requests_per_second`` of the Ingress route divided by the current replicas (an
  ``AverageValue`` target), load through Traefik by host name (``Host: tfs.local`` to the real
  node's port 80, as ``--resolve`` does).

The floor is the HPA controller's sync period (``ClusterSpec.hpa_sync_period``) plus the
metric's own refresh (metrics-server's resolution, Prometheus's scrape and rate window).
``--quick`` runs the same: one scale-out per HPA is already the least that measures it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tfsbed.bench import Table

HOST = "tfs.local"
TARGET_CPU_PERCENT = 50
TARGET_RPS = 4
SAMPLE_INTERVAL = 1.0
REACTION_TIMEOUT = 300.0


# -- pure parts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One look at the cluster: seconds since the load started, the metric over its target
    (None: not served yet), the HPA's desired replicas, and Ready endpoints in the EndpointSlices."""

    t: float
    ratio: float | None
    desired: int
    endpoints: int


@dataclass(frozen=True)
class Reaction:
    crossed: float  # the first sample with the metric above its target
    decided: float | None  # the first sample after it with desired above the starting count
    serving: float | None  # the first sample after it with more Ready endpoints than at the start
    at_start: bool = False  # above target already in the first sample (not caused by the load alone)

    @property
    def to_decision(self) -> float | None:
        return None if self.decided is None else self.decided - self.crossed

    @property
    def to_serving(self) -> float | None:
        return None if self.serving is None else self.serving - self.crossed


def reaction(samples: Sequence[Sample]) -> Reaction | None:
    """When the metric crossed its target, the HPA asked for more pods, and a new pod served.

    None when the metric never went above its target. A new endpoint or a higher desired count
    that was already there before the crossing (left from an earlier run) is not a reaction.
    """
    if not samples:
        return None
    start = samples[0]
    crossed = next((s for s in samples if s.ratio is not None and s.ratio > 1.0), None)
    if crossed is None:
        return None
    after = [s for s in samples if s.t >= crossed.t]
    decided = next((s.t for s in after if s.desired > start.desired), None)
    serving = next((s.t for s in after if s.endpoints > start.endpoints), None)
    return Reaction(crossed.t, decided, serving, at_start=crossed is start)


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def parse_duration(text: str) -> float:
    """Seconds of a Kubernetes/Go duration like ``5s``, ``1m`` or ``1m30s``."""
    import re

    parts = re.fullmatch(r"(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", text.strip())
    if not text.strip() or parts is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(parts.group(1) or 0) * 60 + float(parts.group(2) or 0)


def reactions_table(rows: Sequence[tuple[str, str, Reaction | None]], sync: str, quick: bool) -> Table:
    table = Table(
        "HPA reaction: metric above target -> new pod Ready in the EndpointSlice",
        [
            "HPA",
            "metric source (refresh)",
            "crossed at s (after load start)",
            "HPA desired up, s after crossing",
            "new pod in EndpointSlice, s after crossing",
            "floor: HPA sync period s",
        ],
        notes=[
            f"samples every {SAMPLE_INTERVAL:.0f}s of the metrics API, the HPA's status.desiredReplicas and "
            "the Service's EndpointSlices (Ready endpoints); "
            "crossed = the first sample with the metric above its target "
            "(the HPA acts above 1 + its 10% tolerance)",
            f"HPA controller sync period {sync} (ClusterSpec.hpa_sync_period: "
            "--horizontal-pod-autoscaler-sync-period); a reaction is never faster than that plus the "
            "metric's refresh and one pod start",
            "CPU: the server's own start (importing TensorFlow) takes a core for seconds, so "
            "metrics-server's first window after the pod is Ready can already be above the target; "
            "such a row is marked, its crossing is the first sample",
            "command: python -m tfsbed.bench --only autoscaling" + (" --quick" if quick else ""),
        ],
    )
    for name, source, r in rows:
        if r is None:
            table.rows.append([name, source, "never crossed", "-", "-", seconds(parse_duration(sync))])
            continue
        table.rows.append(
            [
                name,
                source,
                seconds(r.crossed) + (" (above at the first sample)" if r.at_start else ""),
                seconds(r.to_decision),
                seconds(r.to_serving),
                seconds(parse_duration(sync)),
            ]
        )
    return table


# -- I/O -----------------------------------------------------------------------------------------


class Load:
    """``threads`` senders of REST predict requests to ``url``, each at most ``rate`` per second."""

    def __init__(self, url: str, threads: int, rate: float, host: str | None = None) -> None:
        self.url, self.rate = url, rate
        self.headers = {"Content-Type": "application/json", **({"Host": host} if host else {})}
        self.body = json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]] * 8}).encode()
        self.ok = self.failed = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                req = urllib.request.Request(self.url, self.body, self.headers)
                with urllib.request.urlopen(req, timeout=10) as resp:
                    resp.read()
                self.ok += 1
            except (OSError, ValueError):
                self.failed += 1
            self._stop.wait(max(0.0, 1 / self.rate - (time.monotonic() - started)))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


def _ready_endpoints(api: Any, namespace: str, service: str) -> int:
    from kubernetes import client

    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        namespace, label_selector=f"kubernetes.io/service-name={service}"
    )
    return sum(
        1
        for s in slices.items
        for e in s.endpoints or []
        if e.conditions is not None and e.conditions.ready and not e.conditions.terminating
    )


def _cpu_ratio(api: Any, namespace: str, selector: str) -> float | None:
    """sum(usage) / sum(requests) of the release's pods, over the target utilisation."""
    from kubernetes import client
    from kubernetes.utils import parse_quantity

    usage: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", namespace, "pods", label_selector=selector
    )
    listed: Any = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector)
    pods: dict[str, Any] = {p.metadata.name: p for p in listed.items}
    used = requested = 0.0
    for item in usage.get("items", []):
        pod = pods.get(item["metadata"]["name"])
        if pod is None:
            continue
        for c in item.get("containers", []):
            used += float(parse_quantity(c["usage"]["cpu"]))
        for c in pod.spec.containers:
            req = (c.resources.requests or {}).get("cpu") if c.resources else None
            requested += float(parse_quantity(req)) if req else 0.0
    if not requested:
        return None
    return used / requested * 100 / TARGET_CPU_PERCENT


def _qps_ratio(api: Any, namespace: str, route: str, replicas: int) -> float | None:
    from kubernetes import client

    try:
        body: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
            "external.metrics.k8s.io", "v1beta1", namespace, "ingress_requests_per_second",
            label_selector=f"route={route}",
        )  # fmt: skip
    except client.ApiException:
        return None
    from kubernetes.utils import parse_quantity

    items = body.get("items", [])
    if not items:
        return None
    total = sum(float(parse_quantity(i["value"])) for i in items)
    return total / max(1, replicas) / TARGET_RPS


def _hpa(api: Any, namespace: str, name: str) -> tuple[int, int]:
    """(desired, current) replicas in the HPA's status."""
    from kubernetes import client

    hpa: Any = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler(name, namespace)
    return int(hpa.status.desired_replicas or 0), int(hpa.status.current_replicas or 0)


def _run(api: Any, kubeconfig: Path, node: str, ip: str, kind: str, tmp: Path) -> Reaction | None:
    from tfsbed.bench import realnode as R
    from tfsbed.canary_models import MODEL, canary_models_dir
    from tfsbed.cluster.addons import traefik as T
    from tfsctl import kubestate, paths

    preset = yaml.safe_load((paths.VALUES_DIR / "local.yaml").read_text())
    bed = R.Bed(api, kubeconfig, node, MODEL, canary_models_dir(), preset)
    values = R.release_values(preset, node, MODEL, 1, 1)
    values["autoscaling"] = dict(preset["autoscaling"], enabled=True, minReplicas=1, maxReplicas=3)
    values["resources"] = {"requests": {"cpu": "100m", "memory": "128Mi"}}
    if kind == "qps":
        values["service"] = {"type": "ClusterIP"}
        values["ingress"] = dict(preset["ingress"], enabled=True)
        values["autoscaling"].update(
            targetCPUUtilizationPercentage=0,
            prometheusQps={
                "enabled": True,
                "source": "ingress",
                "ingressMetric": "ingress_requests_per_second",
                "targetAverageValue": str(TARGET_RPS),
            },
        )
    else:
        values["autoscaling"]["targetCPUUtilizationPercentage"] = TARGET_CPU_PERCENT
    selector = kubestate.server_selector(R.RELEASE)
    route = f"{bed.namespace}-{R.FULL}-8501"
    with bed.namespace_and_pv():
        (tmp / f"{kind}.yaml").write_text(yaml.safe_dump(values))
        R._tfsctl(kubeconfig, "deploy", "--release", R.RELEASE, "-n", bed.namespace, "--timeout", "300",
                  "-f", str(tmp / f"{kind}.yaml"))  # fmt: skip
        R._wait(lambda: _ready_endpoints(api, bed.namespace, R.FULL) == 1, 120, "one Ready endpoint")
        if kind == "qps":
            url, host, load = (
                f"http://{ip}:{T.HOST_PORT}/v1/models/{MODEL}/labels/stable:predict",
                HOST,
                (4, 4.0),
            )
        else:
            url, host, load = (
                f"http://{bed.lb_ip()}:8501/v1/models/{MODEL}/labels/stable:predict",
                None,
                (4, 50.0),
            )
        samples: list[Sample] = []
        started = time.monotonic()
        with Load(url, threads=load[0], rate=load[1], host=host):
            while time.monotonic() - started < REACTION_TIMEOUT:
                t = time.monotonic() - started
                with contextlib.suppress(Exception):
                    desired, current = _hpa(api, bed.namespace, R.FULL)
                    ratio = (
                        _qps_ratio(api, bed.namespace, route, current)
                        if kind == "qps"
                        else _cpu_ratio(api, bed.namespace, selector)
                    )
                    samples.append(Sample(t, ratio, desired, _ready_endpoints(api, bed.namespace, R.FULL)))
                r = reaction(samples)
                if r is not None and r.serving is not None:
                    return r
                time.sleep(max(0.0, SAMPLE_INTERVAL - (time.monotonic() - started - t)))
        return reaction(samples)


def collect(quick: bool) -> list[Table]:
    from kubernetes import client
    from kubernetes import config as kconfig

    from tfsbed.cluster import spec as cspec
    from tfsbed.cluster.addons import prometheus as P
    from tfsbed.cluster.node import config as nconfig
    from tfsctl import paths

    kubeconfig = Path(os.environ.get("KUBECONFIG") or paths.LOCAL_KUBECONFIG)
    if not kubeconfig.is_file():
        raise RuntimeError(
            f"no kubeconfig at {kubeconfig}: set KUBECONFIG to a `cluster up --real-nodes 1` cluster"
        )
    api = kconfig.new_client_from_config(config_file=str(kubeconfig))
    node = nconfig.node_name(0)
    node_obj: Any = client.CoreV1Api(api).read_node(node)
    addresses = node_obj.status.addresses
    (ip,) = [a.address for a in addresses if a.type == "InternalIP"]
    spec = cspec.ClusterSpec()
    rows: list[tuple[str, str, Reaction | None]] = []
    with tempfile.TemporaryDirectory(prefix="tfsctl-bench-hpa-") as tmp:
        for kind, name, source in (
            ("cpu", f"CPU ({TARGET_CPU_PERCENT}% of requests)",
             f"metrics.k8s.io (metrics-server, resolution {spec.metric_resolution})"),
            ("qps", f"QPS ({TARGET_RPS} req/s per pod, Ingress route)",
             f"external.metrics.k8s.io (Prometheus scrape {P.SCRAPE_INTERVAL}, rate[{P.RATE_WINDOW}])"),
        ):  # fmt: skip
            rows.append((name, source, _run(api, kubeconfig, node, str(ip), kind, Path(tmp))))
    return [reactions_table(rows, spec.hpa_sync_period, quick)]
