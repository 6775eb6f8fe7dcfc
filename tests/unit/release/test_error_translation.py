"""Adapters keep the line that carries the cause: helm's execution error, the API server's
Status.message; and status tells a converging fleet from one that disagrees."""

from __future__ import annotations

import json

from tfsctl.release.fleet import ModelObservation, ReplicaObservation
from tfsctl.release.helm import cause
from tfsctl.release.kube import translate
from tfsctl.release.ops import StatusReport

TEMPLATE_FAILURE = (
    "Error: execution error at (tensorflow-serving/templates/deployment.yaml:1:4): "
    "autoscaling.minReplicas (5) > autoscaling.maxReplicas (2)\n\n"
    "Use --debug flag to render out invalid YAML\n"
)
SCHEMA_FAILURE = (
    "Error: values don't meet the specifications of the schema(s) in the following chart(s):\n"
    "tensorflow-serving:\n- at '/replicaCount': minimum: got -1, want 0\n"
    "- at '/service/type': value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'\n"
)


def test_helm_template_failure_keeps_the_chart_message_not_the_debug_hint() -> None:
    line, detail = cause(TEMPLATE_FAILURE)
    assert line == "autoscaling.minReplicas (5) > autoscaling.maxReplicas (2)"
    assert "deployment.yaml:1:4" in detail


def test_helm_schema_failure_names_every_value_on_one_line() -> None:
    line, _ = cause(SCHEMA_FAILURE)
    assert line == (
        "values do not match the chart's schema: at '/replicaCount': minimum: got -1, want 0; "
        "at '/service/type': value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'"
    )


def test_helm_other_failures_keep_the_first_error_line_without_the_prefix() -> None:
    text = 'Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:9/version": connection refused\n'
    assert cause(text)[0].startswith("Kubernetes cluster unreachable: Get")


def test_api_server_status_message_is_kept() -> None:
    from kubernetes.client.exceptions import ApiException

    exc = ApiException(status=422, reason="Unprocessable Entity")
    exc.body = json.dumps(
        {"kind": "Status", "message": 'Lease.coordination.k8s.io "x" is invalid: spec.leaseDurationSeconds'}
    )
    err = translate(exc, "Lease ns/x")
    assert str(err) == 'Lease ns/x: Lease.coordination.k8s.io "x" is invalid: spec.leaseDurationSeconds'
    assert int(err.exit_status) == 2
    assert "Unprocessable Entity" in (err.detail or "")


def _report(*replicas: ReplicaObservation) -> StatusReport:
    from tfsctl.release.fleet import Desired, evaluate_fleet
    from tfsctl.release.plan import ModelState
    from tfsctl.serving.config import VersionPolicy

    desired = {"m": Desired(ModelState(VersionPolicy.specific(1), {}), frozenset({1}))}
    return StatusReport("release ns/r", "", {}, list(replicas), evaluate_fleet(desired, list(replicas)))


READY = ReplicaObservation("a", "a:8500", models={"m": ModelObservation({1: "AVAILABLE"}, {})})


def test_a_fleet_with_starting_pods_is_converging_not_disagreeing() -> None:
    from tfsctl.cli.release import _fleet_summary, _replica_cell

    starting = ReplicaObservation("b", "", ready=False, phase="Pending", age_seconds=4)
    report = _report(READY, starting)
    assert report.converging and not report.consistent and not report.disagreements
    assert _fleet_summary(report) == "converging: 1 pod(s) starting or terminating, 1 Ready and consistent"
    row = report.to_json()["replicas"][1]
    assert _replica_cell(row) == "starting (Pending, not ready, 4s)"


def test_an_unreachable_ready_replica_says_its_error_once() -> None:
    from tfsctl.cli.release import _replica_cell

    down = ReplicaObservation("c", "c:8500", error="gRPC c:8500: connection refused")
    report = _report(READY, down)
    cell = _replica_cell(report.to_json()["replicas"][1])
    assert cell.count("connection refused") == 1
    assert not report.converging and len(report.disagreements) == 1


class _Store:
    """A ConfigStore with one model and one replica (endpoint mode: no pods)."""

    def read(self):  # type: ignore[no-untyped-def]
        from tfsctl.serving.config import ModelConfig, ServerConfig, VersionPolicy

        return ServerConfig({"m": ModelConfig("m", "/models/m", policy=VersionPolicy.specific(1))})

    def repository_versions(self, model: str) -> None:
        return None

    def replicas(self) -> list[object]:
        return []

    def describe(self) -> str:
        return "release ns/r"

    def revision(self) -> None:
        return None


class _Fleet:
    def observe(self, replicas: object, models: object) -> list[ReplicaObservation]:
        return [READY]


def test_wait_converged_returns_once_every_replica_is_ready() -> None:
    import time

    from tfsctl.release.ops import wait_converged

    missing = iter(["1 of 2 pods Ready", None])
    report = wait_converged(
        _Store(),
        _Fleet(),
        time.monotonic() + 30,
        lambda ready: next(missing),
        poll=0.01,  # type: ignore[arg-type]
    )
    assert report.consistent


def test_wait_converged_times_out_naming_what_is_missing() -> None:
    import time

    import pytest

    from tfsctl.errors import Timeout
    from tfsctl.release.ops import wait_converged

    with pytest.raises(Timeout, match=r"release ns/r: not every pod is Ready .*\(1 of 2 pods Ready\)"):
        wait_converged(_Store(), _Fleet(), time.monotonic(), lambda ready: "1 of 2 pods Ready", poll=0.01)  # type: ignore[arg-type]
