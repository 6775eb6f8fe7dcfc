"""``tfsctl loadtest --distributed``: Locust master + N workers in the cluster the service runs in.

``render`` (pure) fills ``loadtest/manifests/locust-distributed.yaml``; ``run``
applies it with the Kubernetes API: ConfigMap (the locustfile), Secret (every
``TFSCTL_LOAD_*`` knob, the token included), the master Job, then - once the
master has a pod IP - the workers Job pointing at it. The master runs headless
with ``--json`` and the thresholds of the locustfile; its exit code and the
JSON stats it prints are collected from the pod (status and log), written to
the report directory, and the objects are deleted. Every wait is bounded.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import logging
import string
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tfsctl.errors import InvalidInput, Timeout, Unavailable
from tfsctl.load import thresholds
from tfsctl.load.master import parse_frames
from tfsctl.load.options import LoadSettings
from tfsctl.load.timeline import percentile
from tfsctl.paths import LOCUST_MANIFEST as MANIFEST
from tfsctl.paths import LOCUSTFILE

log = logging.getLogger(__name__)

MASTER_WAIT_FOR_WORKERS = 120.0
DEFAULT_IMAGE = "tfsctl-loadtest:0.1.0"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass(frozen=True)
class DistributedRequest:
    settings: LoadSettings
    workers: int
    namespace: str
    image: str = DEFAULT_IMAGE
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, str], ...] = ()
    start_timeout: float = 180.0
    name: str = field(default_factory=lambda: f"tfsctl-locust-{uuid.uuid4().hex[:6]}")


def parse_node_selector(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``KEY=VALUE`` items (``--node-selector``, repeatable) as a nodeSelector."""
    selector: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or any(c.isspace() for c in item):
            raise InvalidInput(f"--node-selector {item!r}: expected KEY=VALUE")
        selector[key] = value
    return selector


def parse_toleration(item: str) -> dict[str, str]:
    """``KEY[=VALUE]:EFFECT`` (``kubectl taint`` syntax, ``--toleration``) as a toleration."""
    spec, sep, effect = item.rpartition(":")
    key, has_value, value = spec.partition("=")
    if not sep or not key or any(c.isspace() for c in item) or effect not in TAINT_EFFECTS:
        raise InvalidInput(
            f"--toleration {item!r}: expected KEY[=VALUE]:EFFECT, EFFECT one of {', '.join(TAINT_EFFECTS)}"
        )
    if has_value:
        return {"key": key, "operator": "Equal", "value": value, "effect": effect}
    return {"key": key, "operator": "Exists", "effect": effect}


def check_image(image: str) -> str:
    if not image or any(c.isspace() for c in image) or image != image.strip("/:@"):
        raise InvalidInput(f"--image {image!r}: expected an image reference such as registry/name:tag")
    return image


def master_args(settings: LoadSettings, workers: int) -> list[str]:
    return [
        "-f", "locustfile.py", "--master", "--headless", "--json",
        "--expect-workers", str(workers), "--expect-workers-max-wait", f"{MASTER_WAIT_FOR_WORKERS:g}",
        *settings.common_argv(),
    ]  # fmt: skip


def render(request: DistributedRequest, master_host: str, locustfile: str) -> list[dict[str, Any]]:
    """The Kubernetes objects (ConfigMap, master Job, workers Job) for ``request``."""
    values = {
        "NAME": request.name,
        "IMAGE": json.dumps(request.image),
        "WORKERS": str(request.workers),
        "MASTER_HOST": master_host,
        "LOCUSTFILE_JSON": json.dumps(locustfile),
        "MASTER_ARGS_JSON": json.dumps(master_args(request.settings, request.workers)),
        "NODE_SELECTOR_JSON": json.dumps(request.node_selector),
        "TOLERATIONS_JSON": json.dumps(list(request.tolerations)),
    }
    text = string.Template(MANIFEST.read_text()).substitute(values)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def secret(request: DistributedRequest) -> dict[str, Any]:
    """Every knob as ``TFSCTL_LOAD_*`` (the token too): a Secret, so nothing lands in a pod spec."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": request.name, "labels": {"app.kubernetes.io/instance": request.name}},
        "type": "Opaque",
        "stringData": request.settings.to_env(),
    }


def parse_master_output(text: str) -> list[dict[str, Any]]:
    """The stats list Locust's ``--json`` prints at the end of the master's output."""
    decoder = json.JSONDecoder()
    index = text.rfind("\n[")
    while index != -1:
        try:
            data, _ = decoder.raw_decode(text[index + 1 :])
            if isinstance(data, list):
                return data
        except ValueError:
            pass
        index = text.rfind("\n[", 0, index)
    raise Unavailable("the Locust master printed no --json stats (see master.log)")


def summarize(entries: list[dict[str, Any]]) -> thresholds.Summary:
    histogram: dict[int, int] = {}
    requests = failures = 0
    start = end = 0.0
    for entry in entries:
        requests += int(entry.get("num_requests", 0))
        failures += int(entry.get("num_failures", 0))
        for ms, count in (entry.get("response_times") or {}).items():
            histogram[int(float(ms))] = histogram.get(int(float(ms)), 0) + int(count)
        start = min(start or entry.get("start_time", 0), entry.get("start_time", 0) or start)
        end = max(end, entry.get("last_request_timestamp") or 0)
    span = end - start if end > start else 0
    return thresholds.Summary(
        requests=requests,
        failures=failures,
        p95_ms=percentile(histogram, 0.95) or 0.0,
        p99_ms=percentile(histogram, 0.99) or 0.0,
        rps=requests / span if span else 0.0,
    )


def check_target(host: str) -> None:
    """The workers send the load from pods: a loopback target would be each pod's own loopback."""
    hostname = urllib.parse.urlsplit(host).hostname or ""
    try:
        loopback = hostname == "localhost" or ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        raise InvalidInput(
            f"--target {host}: a loopback address is not reachable from the worker pods; pass an "
            "in-cluster address (http://<service>.<namespace>.svc:8501, a ClusterIP or a pod IP)"
        )


def gave_up_waiting(master_log: str) -> bool:
    return "Gave up waiting for workers to connect" in master_log


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.strip().splitlines()[-lines:]]
    return " | ".join(line for line in kept if line)[-400:]


class _Cluster:
    """The few API calls a run needs (takes the ApiClient; every call bounded)."""

    def __init__(self, api: Any, namespace: str) -> None:
        from kubernetes import client

        self.api = api
        self.ns = namespace
        self.core: Any = client.CoreV1Api(api)
        self.batch: Any = client.BatchV1Api(api)

    def pods(self, selector: str) -> list[Any]:
        return list(
            self.core.list_namespaced_pod(self.ns, label_selector=selector, _request_timeout=10).items
        )

    def log(self, pod: str) -> str:
        from kubernetes.client.exceptions import ApiException

        try:
            resp = self.core.read_namespaced_pod_log(
                pod, self.ns, container="locust", _preload_content=False, _request_timeout=60
            )
        except ApiException as exc:
            raise Unavailable(
                f"pod {self.ns}/{pod}: cannot read the Locust master's log ({exc.status} {exc.reason}); "
                "the node must serve container logs (pods/log)"
            ) from exc
        return bytes(resp.data).decode(errors="replace")

    def gone(self, selector: str) -> bool:
        return not self.pods(selector)


def _terminated(pod: Any) -> Any:
    for status in (pod.status.container_statuses or []) if pod.status else []:
        if status.state and status.state.terminated:
            return status.state.terminated
    return None


def _unscheduled_reason(pod: Any) -> str:
    for cond in (pod.status.conditions or []) if pod.status else []:
        if cond.type == "PodScheduled" and cond.status != "True":
            return f": {cond.message or cond.reason}"
    return ""


def _wait(what: str, timeout: float, probe: Any, detail: Any = lambda: "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(2)
    raise Timeout(f"{what}: not within {timeout:g}s{detail()}")


def run(request: DistributedRequest, report_dir: Path, api: Any = None) -> dict[str, Any]:
    """Run the distributed test; return the same layout as ``LoadResult.to_dict`` (subset).

    Raises ``InvalidInput`` for a loopback target, ``Timeout`` when the master gets no
    pod IP or never finishes, ``Unavailable`` when the workers never connected, a
    worker or the master failed, or the master's log cannot be read. Every object it
    created is deleted before it returns or raises.
    """
    from kubernetes import utils
    from kubernetes.client.exceptions import ApiException

    check_target(request.settings.host)
    if api is None:
        from tfsctl.kubeclient import api_client

        api = api_client()
    kube = _Cluster(api, request.namespace)
    ns = request.namespace
    locustfile = LOCUSTFILE.read_text()
    config_map, master_job, _ = render(request, "${MASTER_HOST}", locustfile)
    report_dir.mkdir(parents=True, exist_ok=True)
    master_selector = f"job-name={request.name}-master"
    worker_selector = f"job-name={request.name}-workers"
    try:
        kube.core.create_namespaced_secret(ns, secret(request), _request_timeout=10)
        utils.create_from_dict(api, config_map, namespace=ns)
        utils.create_from_dict(api, master_job, namespace=ns)

        def master_ip() -> str | None:
            pods = kube.pods(master_selector)
            if pods and _terminated(pods[0]) is not None:
                raise Unavailable(
                    f"Locust master pod {pods[0].metadata.name} exited before the workers started: "
                    f"{_tail(kube.log(pods[0].metadata.name))}"
                )
            return pods[0].status.pod_ip if pods and pods[0].status and pods[0].status.pod_ip else None

        def master_pending() -> str:
            pods = kube.pods(master_selector)
            return _unscheduled_reason(pods[0]) if pods else " (no pod created)"

        ip = _wait(
            f"Locust master pod of job {request.name}-master got no IP",
            request.start_timeout,
            master_ip,
            master_pending,
        )
        (workers,) = [
            d for d in render(request, ip, locustfile) if d["metadata"]["name"].endswith("-workers")
        ]
        utils.create_from_dict(api, workers, namespace=ns)
        limit = request.settings.duration + request.start_timeout + 60

        def master_done() -> Any:
            for pod in kube.pods(worker_selector):
                term = _terminated(pod)
                if term is not None and term.exit_code:
                    raise Unavailable(
                        f"Locust worker pod {pod.metadata.name} exited with {term.exit_code}: "
                        f"{_tail(kube.log(pod.metadata.name))}"
                    )
            pods = kube.pods(master_selector)
            term = _terminated(pods[0]) if pods else None
            return (pods[0].metadata.name, int(term.exit_code)) if term is not None else None

        pod_name, exit_code = _wait("Locust master to finish", limit, master_done)
        output = kube.log(pod_name)
        (report_dir / "master.log").write_text(output)
        head, artifacts = parse_frames(output)
        if exit_code != 0 and gave_up_waiting(head):
            raise Unavailable(
                f"Locust workers never connected to the master at {ip}:5557 within "
                f"{MASTER_WAIT_FOR_WORKERS:g}s (see {report_dir / 'master.log'})"
            )
        if exit_code not in (0, 1):
            raise Unavailable(
                f"Locust master exited with {exit_code}: {_tail(head)} (see {report_dir / 'master.log'})"
            )
        entries = parse_master_output(head)
    except ApiException as exc:
        raise Unavailable(f"namespace {ns}: {exc.status} {exc.reason} while running Locust") from exc
    finally:
        _cleanup(kube, request.name)
    files: dict[str, str] = {"master_log": str(report_dir / "master.log")}
    for artifact, data in sorted(artifacts.items()):
        (report_dir / artifact).write_bytes(data)
        key = "html" if artifact.endswith(".html") else artifact.removeprefix("locust_").removesuffix(".csv")
        files[key] = str(report_dir / artifact)
    (report_dir / "locust_stats.json").write_text(json.dumps(entries, indent=2))
    files["stats_json"] = str(report_dir / "locust_stats.json")
    if "stats" not in files:  # Locust wrote no CSV: the summary from --json is still there
        _write_csv(entries, report_dir / "locust_stats.csv")
        files["stats"] = str(report_dir / "locust_stats.csv")
    summary = summarize(entries)
    verdict = thresholds.check(summary, request.settings.limits)
    return {
        "target": request.settings.host,
        "distributed": {"workers": request.workers, "namespace": ns, "master_exit_code": exit_code},
        "summary": summary.to_dict(),
        "thresholds": {"passed": verdict.passed and exit_code == 0, "violations": list(verdict.violations)},
        "requests_by_name": [
            {
                "name": e.get("name"),
                "method": e.get("method"),
                "requests": e.get("num_requests"),
                "failures": e.get("num_failures"),
            }
            for e in entries
        ],
        "files": files,
    }


def _write_csv(entries: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["Type", "Name", "Request Count", "Failure Count", "95%", "99%"])
        for e in entries:
            hist = {int(float(k)): int(v) for k, v in (e.get("response_times") or {}).items()}
            out.writerow(
                [e.get("method"), e.get("name"), e.get("num_requests"), e.get("num_failures"),
                 percentile(hist, 0.95), percentile(hist, 0.99)]
            )  # fmt: skip


def _cleanup(kube: _Cluster, name: str, timeout: float = 60.0) -> None:
    """Delete the Jobs, their pods, the ConfigMap and the Secret; wait (bounded) until the pods are gone."""
    from kubernetes.client.exceptions import ApiException

    for delete, object_name in (
        (kube.batch.delete_namespaced_job, f"{name}-workers"),
        (kube.batch.delete_namespaced_job, f"{name}-master"),
        (kube.core.delete_namespaced_config_map, name),
        (kube.core.delete_namespaced_secret, name),
    ):
        try:
            delete(object_name, kube.ns, propagation_policy="Background", _request_timeout=10)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("cleanup %s/%s: %s", kube.ns, object_name, exc.reason)
    selector = f"app.kubernetes.io/instance={name}"
    try:  # the Job controller deletes them; do it now so nothing outlives the run
        kube.core.delete_collection_namespaced_pod(kube.ns, label_selector=selector, _request_timeout=10)
        deadline = time.monotonic() + timeout
        while not kube.gone(selector):
            if time.monotonic() > deadline:
                log.warning("Locust pods %s in %s still terminating after %gs", selector, kube.ns, timeout)
                return
            time.sleep(1)
    except ApiException as exc:
        log.warning("cleanup of Locust pods in %s: %s", kube.ns, exc.reason)
