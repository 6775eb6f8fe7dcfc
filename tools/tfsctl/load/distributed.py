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
import json
import logging
import string
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tfsctl.errors import InvalidInput, Timeout, Unavailable
from tfsctl.load import thresholds
from tfsctl.load.options import LoadSettings
from tfsctl.load.timeline import percentile
from tfsctl.paths import REPO_ROOT

log = logging.getLogger(__name__)

MANIFEST = REPO_ROOT / "loadtest" / "manifests" / "locust-distributed.yaml"
LOCUSTFILE = REPO_ROOT / "loadtest" / "locustfile.py"
PROCESS_NODE_LABEL = ("node.tfsctl.dev/type", "process")


@dataclass(frozen=True)
class DistributedRequest:
    settings: LoadSettings
    workers: int
    namespace: str
    image: str = "tfsctl-loadtest:0.1.0"
    node_selector: dict[str, str] | None = None  # None: the process node when the cluster has one
    start_timeout: float = 180.0
    name: str = field(default_factory=lambda: f"tfsctl-locust-{uuid.uuid4().hex[:6]}")


def master_args(settings: LoadSettings, workers: int) -> list[str]:
    return [
        "-f", "locustfile.py", "--master", "--headless", "--json",
        "--expect-workers", str(workers), "--expect-workers-max-wait", "120",
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
        "NODE_SELECTOR_JSON": json.dumps(request.node_selector or {}),
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


def _wait(what: str, timeout: float, probe: Any) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(2)
    raise Timeout(f"{what}: not within {timeout:g}s")


def run(request: DistributedRequest, report_dir: Path, api: Any = None) -> dict[str, Any]:
    """Run the distributed test; return the same layout as ``LoadResult.to_dict`` (subset)."""
    from kubernetes import client, utils
    from kubernetes.client.exceptions import ApiException

    if api is None:
        from tfsctl.load.verify import _api_client

        api = _api_client()
    core: Any = client.CoreV1Api(api)
    batch: Any = client.BatchV1Api(api)
    selector = request.node_selector
    if selector is None:
        key, value = PROCESS_NODE_LABEL
        nodes = core.list_node(label_selector=f"{key}={value}", _request_timeout=10).items
        selector = {key: value} if nodes else {}
    request = DistributedRequest(**{**request.__dict__, "node_selector": selector})
    ns = request.namespace
    locustfile = LOCUSTFILE.read_text()
    config_map, master_job, _ = render(request, "${MASTER_HOST}", locustfile)
    report_dir.mkdir(parents=True, exist_ok=True)
    master_selector = f"job-name={request.name}-master"
    try:
        core.create_namespaced_secret(ns, secret(request), _request_timeout=10)
        utils.create_from_dict(api, config_map, namespace=ns)
        utils.create_from_dict(api, master_job, namespace=ns)

        def master_ip() -> str | None:
            pods = core.list_namespaced_pod(ns, label_selector=master_selector, _request_timeout=10).items
            return pods[0].status.pod_ip if pods and pods[0].status and pods[0].status.pod_ip else None

        ip = _wait(f"Locust master pod {request.name}-master IP", request.start_timeout, master_ip)
        (workers,) = [
            d for d in render(request, ip, locustfile) if d["metadata"]["name"].endswith("-workers")
        ]
        utils.create_from_dict(api, workers, namespace=ns)
        limit = request.settings.duration + request.start_timeout + 60

        def master_done() -> Any:
            pods = core.list_namespaced_pod(ns, label_selector=master_selector, _request_timeout=10).items
            for status in (pods[0].status.container_statuses or []) if pods else []:
                if status.state and status.state.terminated:
                    return pods[0].metadata.name, int(status.state.terminated.exit_code)
            return None

        pod_name, exit_code = _wait("Locust master to finish", limit, master_done)
        try:
            output = core.read_namespaced_pod_log(pod_name, ns, container="locust", _request_timeout=30)
        except ApiException as exc:
            raise Unavailable(
                f"pod {pod_name}: cannot read the Locust master's log ({exc.status} {exc.reason}); "
                "the node must serve container logs"
            ) from exc
        (report_dir / "master.log").write_text(output)
        entries = parse_master_output(output)
    except ApiException as exc:
        raise Unavailable(f"namespace {ns}: {exc.status} {exc.reason} while running Locust") from exc
    finally:
        _cleanup(core, batch, ns, request.name)
    (report_dir / "locust_stats.json").write_text(json.dumps(entries, indent=2))
    _write_csv(entries, report_dir / "locust_stats.csv")
    summary = summarize(entries)
    verdict = thresholds.check(summary, request.settings.limits)
    if exit_code not in (0, 1):
        raise InvalidInput(f"Locust master exited with {exit_code} (see {report_dir / 'master.log'})")
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
        "files": {
            "master_log": str(report_dir / "master.log"),
            "stats_json": str(report_dir / "locust_stats.json"),
            "stats": str(report_dir / "locust_stats.csv"),
        },
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


def _cleanup(core: Any, batch: Any, namespace: str, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    for delete, object_name in (
        (batch.delete_namespaced_job, f"{name}-workers"),
        (batch.delete_namespaced_job, f"{name}-master"),
        (core.delete_namespaced_config_map, name),
        (core.delete_namespaced_secret, name),
    ):
        try:
            delete(object_name, namespace, propagation_policy="Background", _request_timeout=10)
        except ApiException as exc:
            if exc.status != 404:
                log.warning("cleanup %s/%s: %s", namespace, object_name, exc.reason)
