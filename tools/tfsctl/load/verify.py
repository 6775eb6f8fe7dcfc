"""``verify-autoscaling``: apply load, record what the HPA and the Deployment did, judge, report.

Flow: resolve the release (Deployment, HPA and its metrics, Service and its
LoadBalancer address; with ``through="ingress"`` the release's Ingress host and
status address, ``tfsctl.load.through``), check that every metric of the HPA is served by the
metrics API the HPA reads (``metrics_api.MetricsApi.preflight``: an API that is
not Available fails here in one line, before any load; an adapter's metric
with no series yet must be served within ``scale_out_within`` of the load's
start, or the load stops and the run fails in one line naming it), wait (bounded) until
it rests at ``minReplicas``, start the watchers (HPA and Deployment through
the watch API, per-pod request counts every ``pod_interval`` seconds) as
greenlets, run the load with the runner, keep watching until the release is
back at its minimum or ``scale_in_within`` (plus a margin) has passed, then
hand the recording to the pure ``evaluate`` and write the report. Importing
this module imports Locust (gevent patching).
"""

from __future__ import annotations  # noqa: I001 - the runner (locust, gevent patching) before kubernetes

from tfsctl.load import runner
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gevent

from tfsctl.errors import Timeout
from tfsctl.kubeclient import api_client
from tfsctl.load import report as reports
from tfsctl.load.evaluate import Expectations, HpaPoint, Observation, PodCounts, ReadyPoint, evaluate
from tfsctl.load.kube import ClusterView, ReleaseObjects
from tfsctl.load.metrics_api import MetricsApi
from tfsctl.load.options import LoadSettings
from tfsctl.load.through import load_route
from tfsctl.load.timeline import Sample

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifyRequest:
    release: str
    namespace: str
    target: str | None
    settings: LoadSettings
    at_least: int
    scale_out_within: float
    scale_in_within: float
    max_busiest_share: float = 0.9
    pod_interval: float = 2.0
    settle_timeout: float = 300.0  # waiting for the release to rest at minReplicas before the load
    through: str = "service"  # service: the Service's LoadBalancer address; ingress: the release's Ingress


@dataclass
class Recording:
    hpa: list[HpaPoint] = field(default_factory=list)
    ready: list[ReadyPoint] = field(default_factory=list)
    pods: list[PodCounts] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    pod_notes: list[str] = field(default_factory=list)


@dataclass
class VerifyOutcome:
    report: reports.Report
    files: dict[str, Path]


def _wait_at_minimum(view: ClusterView, objects: ReleaseObjects, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        hpa, ready = view.current(objects, 0.0)
        if ready.ready == objects.min_replicas and hpa.desired <= objects.min_replicas:
            return
        if time.monotonic() > deadline:
            raise Timeout(
                f"release {objects.deployment}: still {ready.ready} ready replicas (desired {hpa.desired}) "
                f"after {timeout:g}s; expected it at minReplicas {objects.min_replicas} before the load"
            )
        gevent.sleep(2)


def verify(request: VerifyRequest, report_dir: Path, api: Any = None) -> VerifyOutcome:
    """Run the verification; never raises for a failed expectation (see ``outcome.report.evaluation``)."""
    api = api if api is not None else api_client()
    view = ClusterView(api)
    objects = view.resolve(request.release, request.namespace)
    metrics_api = MetricsApi(api)
    readings, pending = metrics_api.preflight(
        objects.metrics, objects.namespace, objects.pod_selector, objects.replicas
    )
    host, resolve, route = load_route(
        request.through, request.target, request.settings, request.release, view, objects
    )
    grpc_target = request.settings.grpc_target or (objects.grpc_target if not request.target else "") or ""
    settings = replace(request.settings, host=host, grpc_target=grpc_target, resolve=resolve)
    shape = settings.build_shape()
    _wait_at_minimum(view, objects, request.settle_timeout)

    rec = Recording()
    t0 = time.monotonic()

    def clock() -> float:
        return time.monotonic() - t0

    def sample_pods() -> None:
        while True:
            try:
                counts, note = view.pod_counts(objects, settings.model)
                rec.pods.append(PodCounts(round(clock(), 3), counts))
                if note:
                    rec.pod_notes.append(note)
            except Exception as exc:  # a failed scrape is a gap in the data, not a failed verification
                rec.pod_notes.append(str(exc))
            gevent.sleep(request.pod_interval)

    hpa0, ready0 = view.current(objects, 0.0)
    rec.hpa.append(hpa0)
    rec.ready.append(ready0)
    watchers = [
        gevent.spawn(view.watch_hpa, objects, clock, rec.hpa.append),
        gevent.spawn(view.watch_deployment, objects, clock, rec.ready.append),
        gevent.spawn(sample_pods),
    ]
    try:
        t0 = time.monotonic()
        served = metrics_api.served_within(
            pending,
            objects.namespace,
            objects.pod_selector,
            objects.replicas,
            within=request.scale_out_within,
            clock=clock,
            readings=readings,
        )
        result = runner.run(
            settings, report_dir / "locust", on_sample=rec.samples.append, abort=served if pending else None
        )
        load_stopped = clock()
        deadline = load_stopped + request.scale_in_within + 15
        while clock() < deadline:
            gevent.sleep(2)
            last_ready = rec.ready[-1].ready if rec.ready else 0
            last_desired = rec.hpa[-1].desired if rec.hpa else 0
            if last_ready <= objects.min_replicas and last_desired <= objects.min_replicas:
                break
        end = clock()
    finally:
        view.stop()
        gevent.killall(watchers, timeout=5)

    obs = Observation(
        load_stopped=load_stopped,
        peak_reached=shape.peak_reached_at(),
        end=end,
        hpa=sorted(rec.hpa, key=lambda p: p.t),
        ready=sorted(rec.ready, key=lambda p: p.t),
        pods=rec.pods,
        summary=result.summary,
        thresholds=result.verdict,
        transport=settings.transport,
        min_replicas=objects.min_replicas,
        max_replicas=objects.max_replicas,
        pods_note=rec.pod_notes[-1] if rec.pod_notes and not any(p.counts for p in rec.pods) else "",
        metrics=objects.metrics,
    )
    expectations = Expectations(
        at_least=request.at_least,
        scale_out_within=request.scale_out_within,
        scale_in_within=request.scale_in_within,
        max_busiest_share=request.max_busiest_share,
    )
    evaluation = evaluate(obs, expectations)
    rep = reports.Report(
        title=f"verify-autoscaling {request.namespace}/{request.release}",
        context={
            "release": request.release,
            "namespace": request.namespace,
            "deployment": objects.deployment,
            "hpa": objects.hpa,
            "service": objects.service,
            "target": host,
            **route,
            "grpc_target": grpc_target or "",
            "model": settings.model,
            "label": settings.label or "",
            "version": settings.version if settings.version is not None else "",
            "transport": settings.transport,
            "shape": settings.shape,
            "shape_params": settings.shape_params,
            "users": settings.users,
            "user_rps": settings.user_rps,
            "duration_s": settings.duration,
            "min_replicas": objects.min_replicas,
            "max_replicas": objects.max_replicas,
            "p95_limit_ms": settings.limits.p95_ms,
            "p99_limit_ms": settings.limits.p99_ms,
            "max_failure_ratio": settings.limits.max_failure_ratio,
            "preflight": [r.describe() for r in readings],
        },
        expectations=expectations,
        observation=obs,
        evaluation=evaluation,
        samples=result.samples,
        phases=result.phases,
        files={f"locust_{k}": str(Path(v).relative_to(report_dir)) for k, v in result.files.items()},
    )
    files = reports.write(rep, report_dir)
    return VerifyOutcome(report=rep, files=files)
