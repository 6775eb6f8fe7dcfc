"""The demo's plan: every step is a real tfsctl command line that parses."""

from __future__ import annotations

import click
import pytest

from tfsbed.demo import DemoPlan, reset, steps
from tfsctl.cli import cli


def _parse(args: list[str]) -> click.Context:
    ctx = click.Context(cli)
    command: click.Command = cli
    while isinstance(command, click.Group):
        name, sub, args = command.resolve_command(ctx, args)
        assert sub is not None, name
        command = sub
        ctx = click.Context(command, parent=ctx, info_name=name)
    command.parse_args(ctx, list(args))
    return ctx


def test_every_demo_step_parses_against_the_real_cli() -> None:
    plan = DemoPlan()
    parsed = 0
    for step in steps(plan):
        if step.action is None:
            _parse(step.args)
            parsed += 1
    assert parsed >= 15


def test_demo_validates_every_preset_before_touching_the_cluster() -> None:
    plan = DemoPlan()
    titles = [s.title for s in steps(plan)]
    first_cluster_step = titles.index("start the local cluster")
    assert len(plan.presets) >= 6
    assert all(t.startswith("validate preset") for t in titles[:first_cluster_step])
    assert first_cluster_step == len(plan.presets)


def test_demo_resets_before_it_generates_models_and_promotes_canary_to_stable() -> None:
    all_steps = list(steps(DemoPlan()))
    actions = [s.action for s in all_steps]
    assert reset in actions
    commands = [s.args[:1] + s.args[-3:] for s in all_steps if s.args and s.args[0] == "promote"]
    assert commands[0] == ["promote", "fashion", "stable", "2"]
    assert any(s.args[:1] == ["rollback"] for s in all_steps)
    assert all_steps[-1].args[0] == "verify-autoscaling"


@pytest.mark.parametrize(
    "flag", ["--expect-max-replicas-at-least", "--scale-out-within", "--scale-in-within"]
)
def test_demo_load_test_states_its_expectations(flag: str) -> None:
    assert flag in list(steps(DemoPlan()))[-1].args


def test_demo_runs_the_qps_autoscaling_beside_the_cpu_one_through_the_ingress() -> None:
    verifies = [s.args for s in steps(DemoPlan()) if s.args[:1] == ["verify-autoscaling"]]
    assert len(verifies) == 2
    cpu, qps = verifies
    assert "--through" not in cpu
    assert qps[qps.index("--through") + 1] == "ingress"
    assert qps[qps.index("--release") + 1] == DemoPlan().qps_release
    deploys = [s.args for s in steps(DemoPlan()) if s.args[:1] == ["deploy"]]
    (deploy,) = [args for args in deploys if DemoPlan().qps_release in args]
    assert "autoscaling.prometheusQps.enabled=true" in deploy
    assert "ingress.enabled=true" in deploy
    assert "autoscaling.targetCPUUtilizationPercentage=0" in deploy  # request rate alone drives it
