from __future__ import annotations

import pytest

from tfsctl.errors import Conflict, InvalidInput, NotFound
from tfsctl.release import history
from tfsctl.release.fleet import Desired, ModelObservation, ReplicaObservation, evaluate_fleet
from tfsctl.release.history import PromotionRecord, rollback_target
from tfsctl.release.plan import ModelState
from tfsctl.release.scale import Autoscaler, plan_scale
from tfsctl.serving.config import VersionPolicy


class TestScale:
    def test_without_hpa_sets_replica_count(self) -> None:
        change = plan_scale(3, current=1, autoscaler=None, adjust_hpa=False)
        assert change.values == {"replicaCount": 3}
        assert change.summary == "replicaCount 1 -> 3"

    def test_hpa_owned_deployment_is_refused_with_the_hpa_named(self) -> None:
        with pytest.raises(
            Conflict, match=r"HorizontalPodAutoscaler tfs owns the replica count.*--adjust-hpa"
        ):
            plan_scale(3, current=1, autoscaler=Autoscaler("tfs", 1, 4), adjust_hpa=False)

    def test_adjust_hpa_moves_min_and_raises_max_when_needed(self) -> None:
        hpa = Autoscaler("tfs", 1, 4)
        assert plan_scale(2, current=1, autoscaler=hpa, adjust_hpa=True).values == {
            "autoscaling": {"minReplicas": 2, "maxReplicas": 4}
        }
        assert plan_scale(6, current=1, autoscaler=hpa, adjust_hpa=True).values == {
            "autoscaling": {"minReplicas": 6, "maxReplicas": 6}
        }

    @pytest.mark.parametrize(("replicas", "hpa"), [(-1, None), (0, Autoscaler("tfs", 1, 4))])
    def test_impossible_counts_are_rejected(self, replicas: int, hpa: Autoscaler | None) -> None:
        with pytest.raises(InvalidInput, match="replicas"):
            plan_scale(replicas, current=1, autoscaler=hpa, adjust_hpa=True)

    def test_zero_replicas_without_hpa_is_allowed(self) -> None:
        assert plan_scale(0, current=2, autoscaler=None, adjust_hpa=False).values == {"replicaCount": 0}


def replica(
    name: str, versions: dict[int, str], labels: dict[str, int | None], **kw: object
) -> ReplicaObservation:
    return ReplicaObservation(name, f"{name}:8500", models={"m": ModelObservation(versions, labels)}, **kw)  # type: ignore[arg-type]


DESIRED = {"m": Desired(ModelState(VersionPolicy.specific(1, 2), {"stable": 1}), frozenset({1, 2}))}


class TestFleet:
    def test_consistent_fleet_has_no_disagreements(self) -> None:
        replicas = [replica(n, {1: "AVAILABLE", 2: "AVAILABLE"}, {"stable": 1}) for n in ("a", "b")]
        assert evaluate_fleet(DESIRED, replicas) == []

    def test_each_kind_of_disagreement_names_the_replica(self) -> None:
        replicas = [
            replica("a", {1: "AVAILABLE", 2: "AVAILABLE"}, {"stable": 1}),
            replica("b", {1: "AVAILABLE", 2: "LOADING"}, {"stable": 1}),
            replica("c", {1: "AVAILABLE", 2: "AVAILABLE", 3: "AVAILABLE"}, {"stable": 2}),
            ReplicaObservation("d", "d:8500", error="connection refused"),
            replica("e", {1: "AVAILABLE", 2: "AVAILABLE"}, {"stable": None}, ready=False),
        ]
        found = [str(d) for d in evaluate_fleet(DESIRED, replicas)]
        assert found == [
            "b m: version 2 is LOADING, want AVAILABLE",
            "c m: serves version(s) 3 the config retires",
            "c m: label stable -> 2, want 1",
            "d: unreachable: connection refused",
        ]

    def test_starting_pods_are_converging_not_disagreeing(self) -> None:
        ready = replica("a", {1: "AVAILABLE", 2: "AVAILABLE"}, {"stable": 1})
        starting = ReplicaObservation("b", "", ready=False, phase="Pending", age_seconds=12)
        going = ReplicaObservation("c", "", ready=False, phase="Terminating", age_seconds=300)
        assert evaluate_fleet(DESIRED, [ready, starting, going]) == []
        assert starting.starting and going.starting
        assert starting.describe_state() == "starting (Pending, not ready, 12s)"
        assert going.describe_state() == "terminating (Terminating, not ready, 5m)"

    def test_a_failed_pod_disagrees(self) -> None:
        failed = ReplicaObservation("f", "", ready=False, phase="Failed")
        assert [str(d) for d in evaluate_fleet(DESIRED, [failed])] == ["f: pod Failed, not ready"]

    def test_latest_policy_compares_against_the_majority(self) -> None:
        desired = {"m": Desired(ModelState(VersionPolicy.latest(1), {}), None)}
        replicas = [
            replica("a", {3: "AVAILABLE"}, {}),
            replica("b", {3: "AVAILABLE"}, {}),
            replica("c", {2: "AVAILABLE"}, {}),
        ]
        assert [str(d) for d in evaluate_fleet(desired, replicas)] == [
            "c m: version 3 is absent, want AVAILABLE",
            "c m: serves version(s) 2 the config retires",
        ]

    def test_missing_model_is_reported(self) -> None:
        r = ReplicaObservation("a", "a:8500", models={})
        assert [str(d) for d in evaluate_fleet(DESIRED, [r])] == ["a m: model not loaded"]


def record(action: str, frm: int | None, to: int, label: str = "stable") -> PromotionRecord:
    return PromotionRecord("m", label, frm, to, action, "me@host", "2026-01-01T00:00:00Z")  # type: ignore[arg-type]


class TestHistory:
    def test_round_trip(self) -> None:
        records = [record("promote", 1, 2), record("rollback", 2, 1)]
        assert history.loads(history.dumps(records)) == records

    def test_rollback_undoes_the_last_promotion(self) -> None:
        assert (
            rollback_target([record("promote", 1, 2), record("promote", 2, 3)], "m", "stable").to_version == 3
        )

    def test_repeated_rollbacks_walk_back_instead_of_flip_flopping(self) -> None:
        records = [record("promote", 1, 2), record("promote", 2, 3), record("rollback", 3, 2)]
        target = rollback_target(records, "m", "stable")
        assert (target.from_version, target.to_version) == (1, 2)

    def test_other_labels_do_not_count(self) -> None:
        with pytest.raises(NotFound, match="no promotion of m@stable recorded"):
            rollback_target([record("promote", 1, 2, label="canary")], "m", "stable")

    def test_everything_rolled_back_leaves_nothing(self) -> None:
        with pytest.raises(NotFound):
            rollback_target([record("promote", 1, 2), record("rollback", 2, 1)], "m", "stable")

    def test_malformed_history_is_named(self) -> None:
        with pytest.raises(InvalidInput, match="history"):
            history.loads("{not json")
        with pytest.raises(InvalidInput, match="malformed"):
            history.loads('[{"model": "m"}]')

    def test_history_is_capped(self) -> None:
        records: list[PromotionRecord] = []
        for i in range(history.MAX_RECORDS + 5):
            records = history.append(records, record("promote", i, i + 1))
        assert len(records) == history.MAX_RECORDS
        assert records[-1].to_version == history.MAX_RECORDS + 5
