"""Adapter for the aggregated metrics APIs the HPA controller reads: the preflight of verify-autoscaling.

Before any load, :meth:`MetricsApi.preflight` asks each API the way the controller
does (k8s.io/kubernetes ``pkg/controller/podautoscaler/metrics/client.go``, with the
request paths of k8s.io/metrics ``pkg/client/custom_metrics/versioned_client.go`` and
``pkg/client/external_metrics/client.go``):

- Resource, ContainerResource: ``GET /apis/metrics.k8s.io/v1beta1/namespaces/<ns>/pods
  ?labelSelector=<pods>`` (``resourceMetricsClient.GetResourceMetric``);
- Pods: ``GET /apis/custom.metrics.k8s.io/<v>/namespaces/<ns>/pods/*/<metric>
  ?labelSelector=<pods>&metricLabelSelector=<sel>`` (``customMetricsClient.GetRawMetric``);
- Object: ``GET /apis/custom.metrics.k8s.io/<v>/namespaces/<ns>/<resource>/<name>/<metric>
  ?metricLabelSelector=<sel>``, the resource found by discovery as the controller's
  RESTMapper does; a Namespace is ``.../namespaces/<ns>/metrics/<metric>``
  (``GetObjectMetric``);
- External: ``GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/<metric>
  ?labelSelector=<sel>`` (``externalMetricsClient.GetExternalMetric``).

``<v>`` is the custom metrics API's preferred version from ``GET /apis``
(``custom_metrics/discovery.go`` ``apiVersionsFromDiscovery``). First the serving
APIService (``apiregistration.k8s.io/v1``, ``<v>.<group>``) must be registered and
``Available``. Each failure is one line naming the metric and the API, raised as
:class:`~tfsctl.errors.Unavailable`; an empty answer fails too, as it does in the
controller ("no metrics returned from ... metrics API"). Every request is bounded.

A metric may have no value yet before the load: prometheus-adapter serves a metric only
once Prometheus holds a series for it, and TF Serving's and Traefik's request counters
appear with the first request; metrics-server reports a pod only after its first scrape of
it (``--metric-resolution``), so a release that just started has none. Such a metric is not
failed before the load: the preflight returns it as pending, and
:meth:`MetricsApi.served_within` fails the run in one line when it is still not served a
bound into the load.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tfsctl.errors import Unavailable
from tfsctl.load.metrics import (
    CUSTOM_METRICS_API,
    EXTERNAL_METRICS_API,
    RESOURCE_METRICS_API,
    MetricSpec,
    hpa_view,
    quantity,
)

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10  # seconds, per request
RESOURCE_METRICS_VERSION = "v1beta1"  # resourceclient (metrics/pkg/client/clientset/versioned) v1beta1
EXTERNAL_METRICS_VERSION = "v1beta1"  # external_metrics/client.go
CUSTOM_METRICS_VERSIONS = ("v1beta2", "v1beta1")  # custom_metrics MetricVersions, newest first
_EMPTY = {
    RESOURCE_METRICS_API: "no metrics returned from resource metrics API",
    CUSTOM_METRICS_API: "no metrics returned from custom metrics API",
    EXTERNAL_METRICS_API: "no metrics returned from external metrics API",
}


@dataclass(frozen=True)
class Reading:
    """What a metrics API answered for one metric before the load."""

    spec: MetricSpec
    path: str  # the request, for the report and -v
    items: int  # values returned (pods, series or the one object)
    value: float | None  # as the HPA status would show it (metrics.hpa_view), None for Resource

    def describe(self) -> str:
        value = "" if self.value is None else f" = {self.value:g}"
        return f"{self.spec.describe()}{value} ({self.items} value(s) from {self.spec.api})"


class MetricNotServed(Unavailable):
    """The metric's API is Available but has no value for it (404 or an empty answer)."""


@dataclass(frozen=True)
class Pending:
    """A metric the preflight found unserved: why, for the line that fails the run if it stays so."""

    spec: MetricSpec
    reason: str


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _status_message(body: str) -> str:
    """The ``message`` of a ``metav1.Status`` body, else the body itself (one line)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return _one_line(body)
    if isinstance(doc, dict) and doc.get("message"):
        return _one_line(str(doc["message"]))
    return _one_line(body)


def _selector_param(name: str, selector: str) -> list[tuple[str, str]]:
    return [(name, selector)] if selector else []


class MetricsApi:
    """Reads the metrics APIs through the cluster's API server (takes a ``kubernetes.client.ApiClient``)."""

    def __init__(self, api: Any, timeout: float = REQUEST_TIMEOUT) -> None:
        self.api = api
        self.timeout = timeout
        self._custom_version: str | None = None
        self._available: set[str] = set()  # APIServices already found Available

    # ------------------------------------------------------------------ HTTP
    def _get(self, path: str, query: Sequence[tuple[str, str]] = ()) -> tuple[int, str]:
        """``GET path?query`` through the API server: (HTTP status, body); transport errors raise."""
        import urllib3

        method, url, headers, _body, _post = self.api.param_serialize(
            "GET", path, query_params=list(query) or None, auth_settings=["BearerToken"]
        )
        try:
            response = self.api.call_api(method, url, header_params=headers, _request_timeout=self.timeout)
            return int(response.status), response.read().decode(errors="replace")
        except (OSError, urllib3.exceptions.HTTPError) as exc:
            raise Unavailable(
                f"cannot reach the cluster's API server for GET {path}: {_one_line(str(exc))}"
            ) from exc

    # ------------------------------------------------------------------ APIs
    def custom_version(self) -> str:
        """The custom metrics API's preferred version from ``GET /apis`` (``PreferredVersion``)."""
        if self._custom_version is None:
            version = CUSTOM_METRICS_VERSIONS[-1]
            status, body = self._get("/apis")
            if status == 200:
                groups = {g.get("name"): g for g in json.loads(body).get("groups", [])}
                group = groups.get(CUSTOM_METRICS_API)
                if group is not None:
                    preferred = (group.get("preferredVersion") or {}).get("version")
                    served = [v.get("version") for v in group.get("versions", [])]
                    known = [v for v in [preferred, *served] if v in CUSTOM_METRICS_VERSIONS]
                    version = known[0] if known else version
            self._custom_version = version
        return self._custom_version

    def version_of(self, api: str) -> str:
        if api == CUSTOM_METRICS_API:
            return self.custom_version()
        return EXTERNAL_METRICS_VERSION if api == EXTERNAL_METRICS_API else RESOURCE_METRICS_VERSION

    def check_api_service(self, spec: MetricSpec) -> None:
        """The APIService serving ``spec``'s API is registered and ``Available``, else one line."""
        name = f"{self.version_of(spec.api)}.{spec.api}"
        if name in self._available:
            return
        status, body = self._get(f"/apis/apiregistration.k8s.io/v1/apiservices/{name}")
        what = f"{spec.describe()} is not served by {spec.api}"
        if status == 404:
            raise Unavailable(
                f"{what}: no APIService {name} is registered (install metrics-server or a metrics adapter)"
            )
        if status != 200:
            raise Unavailable(f"{what}: reading APIService {name} answered {status}: {_status_message(body)}")
        conditions = {c.get("type"): c for c in json.loads(body).get("status", {}).get("conditions", [])}
        available = conditions.get("Available", {})
        if available.get("status") != "True":
            reason = available.get("reason") or "no Available condition"
            message = _one_line(available.get("message") or "")
            raise Unavailable(
                f"{what}: APIService {name} is not Available ({reason})" + (f": {message}" if message else "")
            )
        self._available.add(name)

    def _resource_path(self, spec: MetricSpec, namespace: str) -> str:
        """``<resource>[.<group>]/<name>`` of an Object metric's described object, found by discovery."""
        ref = spec.described
        assert ref is not None
        if ref.kind == "Namespace" and ref.api_version in ("v1", ""):
            return f"metrics/{spec.name}"  # rootScopedMetrics.getForNamespace
        group, _, version = ref.api_version.rpartition("/")
        status, body = self._get(f"/apis/{group}/{version}" if group else f"/api/{version}")
        if status != 200:
            raise Unavailable(
                f"{spec.describe()}: cannot map kind {ref.kind} to a resource: GET of API version "
                f"{ref.api_version} answered {status}: {_status_message(body)}"
            )
        resources = json.loads(body).get("resources", [])
        resource = next(
            (r["name"] for r in resources if r.get("kind") == ref.kind and "/" not in r["name"]), None
        )
        if resource is None:
            raise Unavailable(f"{spec.describe()}: API version {ref.api_version} has no kind {ref.kind}")
        qualified = f"{resource}.{group}" if group else resource
        return f"namespaces/{namespace}/{qualified}/{ref.name}/{spec.name}"

    def request_of(
        self, spec: MetricSpec, namespace: str, pod_selector: str
    ) -> tuple[str, list[tuple[str, str]]]:
        """The path and query the HPA controller sends for ``spec`` (see the module docstring)."""
        version = self.version_of(spec.api)
        base = f"/apis/{spec.api}/{version}"
        if spec.source in ("Resource", "ContainerResource"):
            return f"{base}/namespaces/{namespace}/pods", _selector_param("labelSelector", pod_selector)
        if spec.source == "Pods":
            query = _selector_param("labelSelector", pod_selector) + _selector_param(
                "metricLabelSelector", spec.selector
            )
            return f"{base}/namespaces/{namespace}/pods/*/{spec.name}", query
        if spec.source == "Object":
            path = self._resource_path(spec, namespace)
            if path.startswith("metrics/"):
                path = f"namespaces/{namespace}/{path}"
            return f"{base}/{path}", _selector_param("metricLabelSelector", spec.selector)
        return f"{base}/namespaces/{namespace}/{spec.name}", _selector_param("labelSelector", spec.selector)

    def read(self, spec: MetricSpec, namespace: str, pod_selector: str, replicas: int) -> Reading:
        """One metric as the HPA would read it now; a metric the API does not serve raises one line."""
        path, query = self.request_of(spec, namespace, pod_selector)
        status, body = self._get(path, query)
        if status == 404:
            raise MetricNotServed(
                f"{spec.describe()} is not served by {spec.api} (404): {_status_message(body)}"
            )
        if status != 200:
            raise Unavailable(f"{spec.describe()}: {spec.api} answered {status}: {_status_message(body)}")
        items = json.loads(body).get("items") or []
        where = f"pods {pod_selector}" if spec.source in ("Resource", "ContainerResource", "Pods") else "it"
        if not items:
            raise MetricNotServed(
                f"{spec.describe()} has no values in {spec.api} for {where} "
                f"(the HPA fails the same way: {_EMPTY[spec.api]})"
            )
        if spec.source == "ContainerResource" and not any(
            c.get("name") == spec.container for item in items for c in item.get("containers") or []
        ):
            raise Unavailable(
                f"{spec.describe()}: {spec.api} reports no container {spec.container} in pods {pod_selector}"
            )
        values: list[float] = []
        if spec.source in ("Pods", "Object", "External"):
            values = [v for v in (quantity(item.get("value")) for item in items) if v is not None]
        url = path + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
        return Reading(spec, url, len(items), hpa_view(spec, values, replicas))

    def preflight(
        self, specs: Sequence[MetricSpec], namespace: str, pod_selector: str, replicas: int
    ) -> tuple[list[Reading], list[Pending]]:
        """Every metric's APIService is Available and each metric is served now, or pending.

        ``pod_selector`` is the scale target's selector (``k=v,...``), ``replicas`` its current
        replica count (External and Object ``AverageValue`` divide by it). An unavailable API or
        an error answer raises one line; a metric without values yet is returned as pending (see
        the module docstring).
        """
        readings: list[Reading] = []
        pending: list[Pending] = []
        for spec in specs:
            self.check_api_service(spec)
            try:
                reading = self.read(spec, namespace, pod_selector, replicas)
            except MetricNotServed as exc:
                log.info("preflight: %s (before the load: it must be served once traffic flows)", exc)
                pending.append(Pending(spec, str(exc)))
                continue
            log.info("preflight: %s", reading.describe())
            readings.append(reading)
        return readings, pending

    def served_within(
        self,
        pending: Sequence[Pending],
        namespace: str,
        pod_selector: str,
        replicas: int,
        within: float,
        clock: Callable[[], float],
        readings: list[Reading],
    ) -> Callable[[], str | None]:
        """An ``abort`` check for the load runner: the reason once a pending metric is overdue.

        Each call re-reads the metrics still pending (a served one moves to ``readings``); when
        ``within`` seconds of ``clock`` have passed and one is still not served, it returns the
        line that fails the run. ``clock`` counts from the start of the load.
        """
        left = {p.spec: p.reason for p in pending}

        def check() -> str | None:
            for spec in list(left):
                try:
                    readings.append(self.read(spec, namespace, pod_selector, replicas))
                    del left[spec]
                except MetricNotServed as exc:
                    left[spec] = str(exc)
            if left and clock() >= within:
                reason = next(iter(left.values()))
                return f"{reason}; still not served {within:g}s into the load"
            return None

        return check
