from __future__ import annotations

import pytest

from tfsctl.errors import InvalidInput
from tfsctl.load import shapes


class TestConstant:
    def test_holds_users_for_the_duration_then_stops(self) -> None:
        shape = shapes.build("constant", users=5, duration=10, spawn_rate=2)
        assert shape.tick(0) == (5, 2)
        assert shape.tick(9.9) == (5, 2)
        assert shape.tick(10) is None

    def test_spawn_rate_defaults_to_full_load_within_a_second(self) -> None:
        assert shapes.build("constant", users=8, duration=5).tick(0) == (8, 8.0)

    def test_without_duration_runs_until_stopped(self) -> None:
        shape = shapes.build("constant", users=2, duration=None)
        assert shape.duration is None
        assert shape.tick(1e9) == (2, 2.0)


class TestStep:
    def test_climbs_in_equal_steps_to_the_target(self) -> None:
        shape = shapes.build("step", users=8, duration=40, params="steps=4")
        assert [shape.tick(t)[0] for t in (0, 10, 20, 30)] == [2, 4, 6, 8]  # type: ignore[index]
        assert shape.tick(40) is None

    def test_phases_cover_the_run_without_gaps(self) -> None:
        phases = shapes.build("step", users=6, duration=30, params={"steps": "3"}).phases()
        assert [(p.name, p.start, p.end, p.users) for p in phases] == [
            ("step 1", 0.0, 10.0, 2),
            ("step 2", 10.0, 20.0, 4),
            ("step 3", 20.0, 30, 6),
        ]

    def test_never_has_more_steps_than_users(self) -> None:
        assert len(shapes.build("step", users=2, duration=10, params="steps=5").stages) == 2

    def test_needs_a_duration(self) -> None:
        with pytest.raises(InvalidInput, match="needs a duration"):
            shapes.build("step", users=2, duration=None)

    def test_peak_is_reached_at_the_last_step(self) -> None:
        assert shapes.build("step", users=4, duration=20, params="steps=2").peak_reached_at() == 10.0


class TestSpike:
    def test_base_spike_and_recovery(self) -> None:
        shape = shapes.build("spike", users=2, duration=10, params="spike_users=10,spike_at=3,spike_for=2")
        assert shape.tick(0)[0] == 2  # type: ignore[index]
        assert shape.tick(3) == (10, 10.0)
        assert shape.tick(5)[0] == 2  # type: ignore[index]
        assert [p.name for p in shape.phases()] == ["base", "spike", "recovery"]
        assert shape.peak_users == 10

    def test_defaults_to_four_times_the_base(self) -> None:
        assert shapes.build("spike", users=3, duration=10).peak_users == 12

    def test_rejects_a_spike_past_the_end(self) -> None:
        with pytest.raises(InvalidInput, match="spike_at"):
            shapes.build("spike", users=1, duration=10, params="spike_at=8,spike_for=5")


class TestSoak:
    def test_ramps_linearly_then_holds(self) -> None:
        shape = shapes.build("soak", users=10, duration=100, params="ramp=20")
        assert shape.tick(0) == (10, 0.5)
        assert shape.tick(50) == (10, 10.0)
        assert [p.name for p in shape.phases()] == ["ramp", "soak"]

    def test_rejects_a_ramp_as_long_as_the_run(self) -> None:
        with pytest.raises(InvalidInput, match="ramp"):
            shapes.build("soak", users=1, duration=10, params="ramp=10s")


class TestValidation:
    def test_unknown_shape_names_the_flag_and_the_choices(self) -> None:
        with pytest.raises(InvalidInput, match=r"--shape 'wave'.*constant, step, spike, soak"):
            shapes.build("wave", users=1, duration=1)

    def test_unknown_parameter_names_the_known_ones(self) -> None:
        with pytest.raises(InvalidInput, match=r"stepz: not a parameter of step \(known: steps\)"):
            shapes.build("step", users=1, duration=1, params="stepz=2")

    @pytest.mark.parametrize("params", ["steps", "steps=x", "steps=0"])
    def test_malformed_parameters_are_rejected(self, params: str) -> None:
        with pytest.raises(InvalidInput, match="--shape-params"):
            shapes.build("step", users=4, duration=10, params=params)

    @pytest.mark.parametrize(
        ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("2m", 120.0), ("1h30m", 5400.0)]
    )
    def test_durations_parse(self, text: str, seconds: float) -> None:
        assert shapes.parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "2x", "1m30"])
    def test_bad_durations_are_rejected(self, text: str) -> None:
        with pytest.raises(InvalidInput, match="duration"):
            shapes.parse_duration(text)
