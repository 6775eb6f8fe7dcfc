"""The metrics-API preflight against a kubernetes ApiClient whose HTTP pool answers from a table.

The ApiClient is the real one (its URL building and query encoding are exercised); only
``rest_client.pool_manager`` is replaced, so every request the adapter makes is recorded
with its timeout. Paths are the HPA controller's (see ``FIDELITY.md``).
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import urllib3
from kubernetes import client

from tfsctl.errors import ExitStatus, Unavailable
from tfsctl.load.metrics import MetricSpec, ObjectRef
from tfsctl.load.metrics_api import MetricsApi

NS = "tfs"
PODS = "app.kubernetes.io/instance=tfs,app.kubernetes.io/name=tensorflow-serving"
EXTERNAL = MetricSpec("External", "ingress_requests_per_second", "AverageValue", 10, "route=tfs-tfs-8501")
EXTERNAL_PATH = "/apis/external.metrics.k8s.io/v1beta1/namespaces/tfs/ingress_requests_per_second"
PODS_METRIC = MetricSpec("Pods", "tensorflow_serving_requests_per_second", "AverageValue", 20)
CPU = MetricSpec("Resource", "cpu", "Utilization", 50)
APISERVICES = "/apis/apiregistration.k8s.io/v1/apiservices/"

Answer = tuple[int, Any]
MISSING = "the server could not find the requested resource"
RPS = "tensorflow_serving_requests_per_second"


def available(status: str = "True", reason: str = "Passed", message: str = "all checks passed") -> Answer:
    condition = {"type": "Available", "status": status, "reason": reason, "message": message}
    return 200, {"kind": "APIService", "status": {"conditions": [condition]}}


def not_found(message: str) -> Answer:
    return 404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404, "message": message}


class FakePool:
    """Stands in for urllib3's PoolManager: answers by path, records (path, query, timeout)."""

    def __init__(self, answers: dict[str, Answer | Exception]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, dict[str, str], Any]] = []

    def request(self, method: str, url: str, **kw: Any) -> urllib3.HTTPResponse:
        parts = urlsplit(url)
        self.requests.append((parts.path, dict(parse_qsl(parts.query)), kw.get("timeout")))
        answer = self.answers.get(parts.path)
        if isinstance(answer, Exception):
            raise answer
        status, body = (
            answer if answer is not None else not_found("the server could not find the requested resource")
        )
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return urllib3.HTTPResponse(
            body=io.BytesIO(data), status=status, headers={"Content-Type": "application/json"},
            preload_content=False,
        )  # fmt: skip


def api_with(answers: dict[str, Answer | Exception]) -> tuple[MetricsApi, FakePool]:
    api = client.ApiClient(client.Configuration(host="https://k8s.test:6443"))
    pool = FakePool(answers)
    api.rest_client.pool_manager = pool
    return MetricsApi(api), pool


CUSTOM_GROUPS: Answer = (
    200,
    {
        "kind": "APIGroupList",
        "groups": [
            {
                "name": "custom.metrics.k8s.io",
                "versions": [{"groupVersion": "custom.metrics.k8s.io/v1beta1", "version": "v1beta1"},
                             {"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"}],
                "preferredVersion": {"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"},
            }
        ],
    },
)  # fmt: skip


def value_list(*values: str) -> Answer:
    return 200, {
        "kind": "ExternalMetricValueList",
        "items": [{"metricName": "m", "value": v} for v in values],
    }


def one_line_error(exc: pytest.ExceptionInfo[Unavailable]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert exc.value.exit_status is ExitStatus.UNAVAILABLE
    return message


class TestExternal:
    def test_a_metric_the_adapter_does_not_serve_fails_in_one_line_naming_it(self) -> None:
        metrics_api, pool = api_with(
            {
                APISERVICES + "v1beta1.external.metrics.k8s.io": available(),
                EXTERNAL_PATH: not_found("the server could not find the requested resource"),
            }
        )
        with pytest.raises(Unavailable) as err:
            metrics_api.read(EXTERNAL, NS, PODS, 1)
        assert one_line_error(err) == (
            "external metric ingress_requests_per_second{route=tfs-tfs-8501} is not served by "
            "external.metrics.k8s.io (404): the server could not find the requested resource"
        )
        assert pool.requests[-1][:2] == (EXTERNAL_PATH, {"labelSelector": "route=tfs-tfs-8501"})

    def test_an_apiservice_that_is_not_available_fails_before_the_metric_is_asked(self) -> None:
        metrics_api, pool = api_with(
            {
                APISERVICES + "v1beta1.external.metrics.k8s.io": available(
                    "False",
                    "FailedDiscoveryCheck",
                    "failing or missing response from https://10.0.0.9:6443/apis/external.metrics.k8s.io/"
                    "v1beta1:\n Get ...: dial tcp 10.0.0.9:6443: connect: connection refused",
                ),
                EXTERNAL_PATH: value_list("5"),
            }
        )
        with pytest.raises(Unavailable) as err:
            metrics_api.preflight([EXTERNAL], NS, PODS, replicas=1)
        assert one_line_error(err) == (
            "external metric ingress_requests_per_second{route=tfs-tfs-8501} is not served by "
            "external.metrics.k8s.io: APIService v1beta1.external.metrics.k8s.io is not Available "
            "(FailedDiscoveryCheck): failing or missing response from https://10.0.0.9:6443/apis/"
            "external.metrics.k8s.io/v1beta1: Get ...: dial tcp 10.0.0.9:6443: connect: connection refused"
        )
        assert EXTERNAL_PATH not in [path for path, _, _ in pool.requests]

    def test_an_unregistered_api_is_named(self) -> None:
        metrics_api, _ = api_with({})
        with pytest.raises(Unavailable) as err:
            metrics_api.preflight([EXTERNAL], NS, PODS, replicas=1)
        assert one_line_error(err) == (
            "external metric ingress_requests_per_second{route=tfs-tfs-8501} is not served by "
            "external.metrics.k8s.io: no APIService v1beta1.external.metrics.k8s.io is registered "
            "(install metrics-server or a metrics adapter)"
        )

    def test_a_served_metric_is_read_as_the_hpa_sees_it_with_bounded_requests(self) -> None:
        metrics_api, pool = api_with(
            {
                APISERVICES + "v1beta1.external.metrics.k8s.io": available(),
                EXTERNAL_PATH: value_list("12", "18"),
            }
        )
        (reading,), _ = metrics_api.preflight([EXTERNAL], NS, PODS, replicas=3)
        assert (reading.items, reading.value) == (2, 10.0)  # AverageValue: (12 + 18) / 3 replicas
        assert reading.describe() == (
            "external metric ingress_requests_per_second{route=tfs-tfs-8501} = 10 "
            "(2 value(s) from external.metrics.k8s.io)"
        )
        assert [path for path, _, _ in pool.requests] == [
            APISERVICES + "v1beta1.external.metrics.k8s.io",
            EXTERNAL_PATH,
        ]
        assert [timeout.total for _, _, timeout in pool.requests] == [10, 10]

    def test_no_values_fail_as_they_do_in_the_controller(self) -> None:
        metrics_api, _ = api_with(
            {APISERVICES + "v1beta1.external.metrics.k8s.io": available(), EXTERNAL_PATH: value_list()}
        )
        with pytest.raises(Unavailable) as err:
            metrics_api.read(EXTERNAL, NS, PODS, 1)
        assert one_line_error(err) == (
            "external metric ingress_requests_per_second{route=tfs-tfs-8501} has no values in "
            "external.metrics.k8s.io for it (the HPA fails the same way: no metrics returned from "
            "external metrics API)"
        )

    def test_an_unreachable_api_server_is_one_line(self) -> None:
        error = urllib3.exceptions.MaxRetryError(None, "/apis", reason="connection refused")  # type: ignore[arg-type]
        metrics_api, _ = api_with({APISERVICES + "v1beta1.external.metrics.k8s.io": error})
        with pytest.raises(Unavailable) as err:
            metrics_api.preflight([EXTERNAL], NS, PODS, replicas=1)
        assert one_line_error(err).startswith(
            f"cannot reach the cluster's API server for GET {APISERVICES}v1beta1.external.metrics.k8s.io: "
        )


class TestCustomAndResource:
    def test_pods_metric_uses_the_preferred_custom_metrics_version_and_both_selectors(self) -> None:
        spec = MetricSpec(
            "Pods", "tensorflow_serving_requests_per_second", "AverageValue", 20, "model=fashion"
        )
        path = (
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/tfs/pods/*/tensorflow_serving_requests_per_second"
        )
        metrics_api, pool = api_with(
            {
                "/apis": CUSTOM_GROUPS,
                APISERVICES + "v1beta2.custom.metrics.k8s.io": available(),
                path: value_list("10", "30"),
            }
        )
        (reading,), _ = metrics_api.preflight([spec], NS, PODS, replicas=2)
        assert reading.value == 20.0
        assert pool.requests[-1][:2] == (
            path,
            {"labelSelector": PODS, "metricLabelSelector": "model=fashion"},
        )

    def test_pods_metric_without_series_is_not_served(self) -> None:
        metrics_api, _ = api_with(
            {
                "/apis": (200, {"groups": []}),  # not in discovery: the oldest known version
                APISERVICES + "v1beta1.custom.metrics.k8s.io": available(),
            }
        )
        with pytest.raises(Unavailable) as err:
            metrics_api.read(PODS_METRIC, NS, PODS, 1)
        assert one_line_error(err) == (
            f"pods metric {RPS} is not served by custom.metrics.k8s.io (404): {MISSING}"
        )

    @pytest.mark.parametrize(
        ("ref", "discovery_path", "resource", "expected"),
        [
            (ObjectRef("Service", "tfs"), "/api/v1", "services", "namespaces/tfs/services/tfs/rps"),
            (
                ObjectRef("Ingress", "tfs", "networking.k8s.io/v1"),
                "/apis/networking.k8s.io/v1",
                "ingresses",
                "namespaces/tfs/ingresses.networking.k8s.io/tfs/rps",
            ),
        ],
    )
    def test_object_metric_path_comes_from_discovery(
        self, ref: ObjectRef, discovery_path: str, resource: str, expected: str
    ) -> None:
        spec = MetricSpec("Object", "rps", "Value", 100, described=ref)
        path = f"/apis/custom.metrics.k8s.io/v1beta2/{expected}"
        resources = [{"name": resource, "kind": ref.kind}, {"name": f"{resource}/status", "kind": ref.kind}]
        metrics_api, _ = api_with(
            {
                "/apis": CUSTOM_GROUPS,
                APISERVICES + "v1beta2.custom.metrics.k8s.io": available(),
                discovery_path: (200, {"resources": resources}),
                path: value_list("120"),
            }
        )
        (reading,), _ = metrics_api.preflight([spec], NS, PODS, replicas=2)
        assert (reading.path, reading.value) == (path, 120.0)

    def test_namespace_object_metric_uses_the_metrics_path(self) -> None:
        spec = MetricSpec("Object", "queue_depth", "Value", 5, described=ObjectRef("Namespace", "tfs"))
        api, _ = api_with({"/apis": CUSTOM_GROUPS})
        path, query = api.request_of(spec, NS, PODS)
        assert (path, query) == ("/apis/custom.metrics.k8s.io/v1beta2/namespaces/tfs/metrics/queue_depth", [])

    def test_resource_metric_reads_metrics_k8s_io_for_the_scale_targets_pods(self) -> None:
        path = "/apis/metrics.k8s.io/v1beta1/namespaces/tfs/pods"
        pod = {"metadata": {"name": "tfs-0"}, "containers": [{"name": "serving", "usage": {"cpu": "20m"}}]}
        metrics_api, pool = api_with(
            {APISERVICES + "v1beta1.metrics.k8s.io": available(), path: (200, {"items": [pod]})}
        )
        (reading,), _ = metrics_api.preflight([CPU], NS, PODS, replicas=1)
        assert (reading.items, reading.value) == (1, None)  # utilization needs the requests: the HPA's status
        assert pool.requests[-1][:2] == (path, {"labelSelector": PODS})

    def test_container_resource_metric_needs_the_container(self) -> None:
        spec = MetricSpec("ContainerResource", "cpu", "Utilization", 50, container="sidecar")
        path = "/apis/metrics.k8s.io/v1beta1/namespaces/tfs/pods"
        pod = {"metadata": {"name": "tfs-0"}, "containers": [{"name": "serving", "usage": {"cpu": "20m"}}]}
        metrics_api, _ = api_with(
            {APISERVICES + "v1beta1.metrics.k8s.io": available(), path: (200, {"items": [pod]})}
        )
        with pytest.raises(Unavailable) as err:
            metrics_api.preflight([spec], NS, PODS, replicas=1)
        assert one_line_error(err) == (
            "container resource metric cpu of container sidecar: metrics.k8s.io reports no container sidecar "
            f"in pods {PODS}"
        )

    def test_each_apiservice_is_checked_once(self) -> None:
        path = "/apis/metrics.k8s.io/v1beta1/namespaces/tfs/pods"
        pod = {"metadata": {"name": "tfs-0"}, "containers": [{"name": "serving", "usage": {"cpu": "20m"}}]}
        memory = MetricSpec("Resource", "memory", "Utilization", 80)
        metrics_api, pool = api_with(
            {APISERVICES + "v1beta1.metrics.k8s.io": available(), path: (200, {"items": [pod]})}
        )
        metrics_api.preflight([CPU, memory], NS, PODS, replicas=1)
        assert [p for p, _, _ in pool.requests] == [APISERVICES + "v1beta1.metrics.k8s.io", path, path]


class TestPendingUntilTraffic:
    """An adapter's metric without series at rest is pending; the load must bring it within a bound."""

    def test_an_adapter_metric_without_series_is_pending_not_failed_before_the_load(self) -> None:
        metrics_api, _ = api_with(
            {APISERVICES + "v1beta1.external.metrics.k8s.io": available(), EXTERNAL_PATH: not_found(MISSING)}
        )
        readings, pending = metrics_api.preflight([EXTERNAL], NS, PODS, replicas=1)
        assert readings == []
        assert [p.spec for p in pending] == [EXTERNAL]

    def test_pods_metrics_server_has_not_scraped_yet_are_pending_too(self) -> None:
        metrics_api, _ = api_with(
            {
                APISERVICES + "v1beta1.metrics.k8s.io": available(),
                "/apis/metrics.k8s.io/v1beta1/namespaces/tfs/pods": value_list(),
            }
        )
        readings, pending = metrics_api.preflight([CPU], NS, PODS, replicas=1)
        assert readings == []
        assert [p.spec for p in pending] == [CPU]
        assert "has no values in metrics.k8s.io" in pending[0].reason

    def test_a_metric_that_appears_with_traffic_is_read_and_the_run_goes_on(self) -> None:
        answers: dict[str, Answer | Exception] = {
            APISERVICES + "v1beta1.external.metrics.k8s.io": available(),
            EXTERNAL_PATH: not_found(MISSING),
        }
        metrics_api, _ = api_with(answers)
        readings, pending = metrics_api.preflight([EXTERNAL], NS, PODS, replicas=1)
        now = [0.0]
        check = metrics_api.served_within(
            pending, NS, PODS, 2, within=60, clock=lambda: now[0], readings=readings
        )
        assert check() is None  # not yet, and not overdue
        answers[EXTERNAL_PATH] = value_list("30")
        now[0] = 10
        assert check() is None
        assert [(r.spec, r.value) for r in readings] == [(EXTERNAL, 15.0)]  # AverageValue: 30 over 2 replicas
        now[0] = 100
        assert check() is None  # nothing is pending any more

    def test_a_metric_still_unserved_past_the_bound_stops_the_run_in_one_line(self) -> None:
        metrics_api, _ = api_with(
            {APISERVICES + "v1beta1.external.metrics.k8s.io": available(), EXTERNAL_PATH: not_found(MISSING)}
        )
        readings, pending = metrics_api.preflight([EXTERNAL], NS, PODS, replicas=1)
        now = [59.0]
        check = metrics_api.served_within(
            pending, NS, PODS, 1, within=60, clock=lambda: now[0], readings=readings
        )
        assert check() is None
        now[0] = 60
        assert check() == (
            "external metric ingress_requests_per_second{route=tfs-tfs-8501} is not served by "
            f"external.metrics.k8s.io (404): {MISSING}; still not served 60s into the load"
        )
