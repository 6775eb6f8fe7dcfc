"""``ops.replica_count_check``: converged means every wanted pod Ready and listed by the Service."""

from __future__ import annotations

from tfsctl.release import ops

FULL = "tfs-tensorflow-serving"


class Kube:
    def __init__(self, spec: int | None, endpoints: int) -> None:
        self.spec, self.endpoints = spec, endpoints

    def deployment_replicas(self, full: str) -> tuple[int | None, int]:
        assert full == FULL
        return self.spec, 0

    def ready_endpoints(self, full: str) -> list[tuple[str, str, str | None]]:
        assert full == FULL
        return [(f"pod-{i}", f"10.0.0.{i}", "node") for i in range(self.endpoints)]


def test_ready_pods_the_service_does_not_list_yet_are_still_missing() -> None:
    """The EndpointSlice controller lists a pod after the kubelet marks it Ready; a change dials
    the listed ones (ReleaseStore.replicas), so until then there is nothing to move."""
    assert ops.replica_count_check(Kube(2, 0), FULL)(2) == f"0 of 2 Ready pods in Service {FULL}'s endpoints"
    assert ops.replica_count_check(Kube(2, 1), FULL)(2) == f"1 of 2 Ready pods in Service {FULL}'s endpoints"
    assert ops.replica_count_check(Kube(2, 2), FULL)(2) is None


def test_pods_not_ready_and_an_hpa_below_its_new_minimum_are_missing() -> None:
    assert ops.replica_count_check(Kube(2, 2), FULL)(1) == "1 of 2 pods Ready"
    assert ops.replica_count_check(Kube(None, 1), FULL)(1) is None  # HPA-owned: one until it scales
    assert "has not scaled" in str(ops.replica_count_check(Kube(2, 2), FULL, at_least=3)(2))
