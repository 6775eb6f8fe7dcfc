from __future__ import annotations

import pytest

from tfsctl.errors import InvalidInput, NotFound, PromotionRejected
from tfsctl.release.plan import (
    ModelState,
    Plan,
    plan_promotion,
    plan_restore,
    plan_transition,
    validate_label_name,
)
from tfsctl.serving.config import VersionPolicy

PRESET = ModelState(VersionPolicy.specific(1, 2), {"stable": 1, "canary": 2})


def assert_every_step_is_safe(plan: Plan) -> None:
    """Each pushed state labels only versions loaded before it was pushed (unless allow_unavailable)."""
    loaded = plan.served_before
    for step in plan.steps:
        if step.name != "load+label":
            for label, version in step.state.labels.items():
                assert version in loaded, f"{step.name}: {label} -> {version} before it is loaded"
        assert set(step.state.labels.values()) <= step.served
        loaded = step.served


class TestPromotionSpecific:
    def test_canary_to_stable_moves_label_then_retires_unlabelled_version(self) -> None:
        plan = plan_promotion("fashion", PRESET, "stable", 2, frozenset({1, 2}))
        assert [s.name for s in plan.steps] == ["label", "retire"]
        assert plan.steps[0].state == ModelState(VersionPolicy.specific(1, 2), {"stable": 2, "canary": 2})
        assert plan.after == ModelState(VersionPolicy.specific(2), {"stable": 2, "canary": 2})
        assert_every_step_is_safe(plan)

    def test_new_version_is_loaded_and_awaited_before_the_label_moves(self) -> None:
        current = ModelState(VersionPolicy.specific(1), {"stable": 1})
        plan = plan_promotion("m", current, "stable", 3, frozenset({1}))
        assert [s.name for s in plan.steps] == ["load", "label", "retire"]
        load, label, retire = plan.steps
        assert load.state == ModelState(VersionPolicy.specific(1, 3), {"stable": 1})
        assert load.wait_available == frozenset({3})
        assert label.state == ModelState(VersionPolicy.specific(1, 3), {"stable": 3})
        assert label.verify_labels == {"stable": 3}
        assert retire.state == ModelState(VersionPolicy.specific(3), {"stable": 3})
        assert_every_step_is_safe(plan)

    def test_keep_previous_leaves_old_version_loaded(self) -> None:
        current = ModelState(VersionPolicy.specific(1), {"stable": 1})
        plan = plan_promotion("m", current, "stable", 2, frozenset({1}), keep_previous=True)
        assert [s.name for s in plan.steps] == ["load", "label"]
        assert plan.after.policy == VersionPolicy.specific(1, 2)

    def test_version_still_named_by_another_label_is_kept(self) -> None:
        current = ModelState(VersionPolicy.specific(1, 2), {"stable": 1, "canary": 2, "pinned": 1})
        plan = plan_promotion("m", current, "stable", 2, frozenset({1, 2}))
        assert [s.name for s in plan.steps] == ["label"]
        assert plan.after.policy == VersionPolicy.specific(1, 2)

    def test_promoting_to_the_current_version_is_a_no_op(self) -> None:
        assert plan_promotion("m", PRESET, "stable", 1, frozenset({1, 2})).steps == ()

    def test_new_label_is_created(self) -> None:
        plan = plan_promotion("m", PRESET, "shadow", 2, frozenset({1, 2}))
        assert [s.name for s in plan.steps] == ["label"]
        assert plan.after.labels == {"stable": 1, "canary": 2, "shadow": 2}

    def test_allow_unavailable_adds_a_new_label_in_the_revision_that_loads_its_version(self) -> None:
        """TF Serving (UpdateModelVersionLabelMap) lets only a new label point at a version not loaded."""
        current = ModelState(VersionPolicy.specific(1), {"stable": 1})
        plan = plan_promotion("m", current, "shadow", 2, frozenset({1}), allow_unavailable=True)
        assert [s.name for s in plan.steps] == ["load+label"]
        assert plan.steps[0].state.labels == {"stable": 1, "shadow": 2}
        assert plan.steps[0].wait_available == frozenset({2})

    def test_allow_unavailable_refuses_to_move_an_existing_label_to_a_version_not_loaded(self) -> None:
        """Moving an existing label so fails the whole reload on TF Serving: refused before any step."""
        current = ModelState(VersionPolicy.specific(1), {"stable": 1})
        with pytest.raises(PromotionRejected) as info:
            plan_promotion("m", current, "stable", 2, frozenset({1}), allow_unavailable=True)
        message = str(info.value)
        assert "\n" not in message
        assert message.startswith("m: --allow-unavailable only applies to a new label, and stable (-> 1)")
        assert "promote without --allow-unavailable" in message

    def test_allow_unavailable_moving_a_label_between_loaded_versions_is_the_plain_plan(self) -> None:
        plan = plan_promotion("m", PRESET, "stable", 2, frozenset({1, 2}), allow_unavailable=True)
        assert [s.name for s in plan.steps] == ["label", "retire"]


class TestPromotionLatestAndAll:
    def test_latest_within_window_only_moves_the_label(self) -> None:
        current = ModelState(VersionPolicy.latest(2), {"stable": 2})
        plan = plan_promotion("m", current, "stable", 3, frozenset({2, 3}), repository=[1, 2, 3])
        assert [s.name for s in plan.steps] == ["label"]
        assert plan.after.policy == VersionPolicy.latest(2)

    def test_latest_outside_window_becomes_specific_and_says_so(self) -> None:
        current = ModelState(VersionPolicy.latest(1), {"stable": 3})
        plan = plan_promotion("m", current, "stable", 1, frozenset({3}), repository=[1, 2, 3])
        assert [s.name for s in plan.steps] == ["load", "label", "retire"]
        assert plan.steps[0].state.policy == VersionPolicy.specific(1, 3)
        assert plan.after == ModelState(VersionPolicy.specific(1), {"stable": 1})
        assert "becomes specific [1]" in plan.notes[0]
        assert_every_step_is_safe(plan)

    def test_all_policy_only_moves_the_label(self) -> None:
        current = ModelState(VersionPolicy.all(), {"stable": 1})
        plan = plan_promotion("m", current, "stable", 2, frozenset({1, 2}), repository=[1, 2])
        assert [s.name for s in plan.steps] == ["label"]

    def test_version_absent_from_repository_is_rejected(self) -> None:
        with pytest.raises(NotFound, match="version 7 is not in the model repository"):
            plan_promotion("m", PRESET, "stable", 7, frozenset({1, 2}), repository=[1, 2])


class TestTransitionAndRestore:
    def test_restore_after_label_moved_reverses_safely(self) -> None:
        reached = ModelState(VersionPolicy.specific(1, 3), {"stable": 3})
        original = ModelState(VersionPolicy.specific(1), {"stable": 1})
        plan = plan_restore("m", reached, frozenset({1, 3}), original, frozenset({1}))
        assert [s.name for s in plan.steps] == ["label", "retire"]
        assert plan.steps[-1].state == original
        assert_every_step_is_safe(plan)

    def test_restore_after_old_version_retired_reloads_it_first(self) -> None:
        reached = ModelState(VersionPolicy.specific(3), {"stable": 3})
        original = ModelState(VersionPolicy.specific(1), {"stable": 1})
        plan = plan_restore("m", reached, frozenset({3}), original, frozenset({1}))
        assert [s.name for s in plan.steps] == ["load", "label", "retire"]
        assert plan.steps[0].wait_available == frozenset({1})
        assert_every_step_is_safe(plan)

    def test_restore_from_load_step_only_retires(self) -> None:
        reached = ModelState(VersionPolicy.specific(1, 3), {"stable": 1})
        original = ModelState(VersionPolicy.specific(1), {"stable": 1})
        plan = plan_restore("m", reached, frozenset({1, 3}), original, frozenset({1}))
        assert [s.name for s in plan.steps] == ["retire"]

    def test_target_label_on_unserved_version_is_rejected(self) -> None:
        with pytest.raises(PromotionRejected, match="label stable -> 5"):
            plan_transition(
                "m",
                PRESET,
                ModelState(VersionPolicy.specific(1), {"stable": 5}),
                frozenset({1, 2}),
                frozenset({1}),
            )

    @pytest.mark.parametrize(
        ("before", "after"),
        [
            (VersionPolicy.specific(1), VersionPolicy.specific(2)),
            (VersionPolicy.latest(1), VersionPolicy.specific(1, 2)),
            (VersionPolicy.specific(2, 3), VersionPolicy.latest(2)),
        ],
    )
    def test_every_planned_state_is_safe_across_policy_kinds(
        self, before: VersionPolicy, after: VersionPolicy
    ) -> None:
        repo = [1, 2, 3]
        sb, sa = before.served(repo), after.served(repo)
        assert sb is not None and sa is not None
        b = ModelState(before, {"stable": max(sb)})
        a = ModelState(after, {"stable": min(sa)})
        plan = plan_transition("m", b, a, sb, sa)
        assert plan.steps[-1].state == a
        assert_every_step_is_safe(plan)


class TestLabelNames:
    @pytest.mark.parametrize("name", ["stable", "canary_2", "A_b", "_x", "v2"])
    def test_accepted(self, name: str) -> None:
        assert validate_label_name(name) == name

    @pytest.mark.parametrize("name", ["", "has space", "a/b", "a.b", "canary-2"])
    def test_rejected_with_the_name(self, name: str) -> None:
        with pytest.raises(InvalidInput, match="label"):
            validate_label_name(name)
