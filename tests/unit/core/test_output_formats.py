"""``-o table|json|yaml`` on every command that prints a result; results on stdout, diagnostics on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from support.models_cli import run_tfsctl
from tfsctl.cli import COMMANDS, cli
from tfsctl.cli.output import FORMATS, render

CONFIG = 'model_config_list { config { name: "fashion" base_path: "/models/fashion" } }\n'
DEAD = "127.0.0.1:9"
# Commands that read and report (kubectl's get/describe): each takes -o in every format.
READ_COMMANDS = [
    ["status"],
    ["history"],
    ["model-status"],
    ["metadata"],
    ["models", "validate"],
    ["models", "versions"],
]


def _command(path: list[str]) -> click.Command:
    ctx = click.Context(cli)
    command: click.Command | None = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.get_command(ctx, name)
        assert command is not None, f"tfsctl {' '.join(path)} does not exist"
    return command


@pytest.mark.parametrize("path", READ_COMMANDS, ids=" ".join)
def test_read_commands_take_every_output_format(path: list[str]) -> None:
    options = {name: p for p in _command(path).params for name in p.opts}
    assert "-o" in options and "--output" in options, f"tfsctl {' '.join(path)} has no -o/--output"
    choice = options["--output"].type
    assert isinstance(choice, click.Choice) and tuple(choice.choices) == FORMATS


def test_every_output_option_of_the_product_is_the_shared_one() -> None:
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, result.output
        if "--output" in result.output:
            assert "[table|json|yaml]" in result.output, f"tfsctl {name}: -o is not table|json|yaml"


def test_json_and_yaml_carry_the_same_data() -> None:
    data = {"release": "r", "replicas": [{"name": "p-0", "ready": True, "path": Path("/x")}]}
    assert json.loads(render("json", data)) == yaml.safe_load(render("yaml", data))
    assert yaml.safe_load(render("yaml", data))["replicas"][0]["path"] == "/x"


@pytest.mark.parametrize("output", ["json", "yaml"])
def test_status_result_is_on_stdout_and_the_diagnostic_on_stderr(
    output: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "models.config"
    config.write_text(CONFIG)
    code, out, err = run_tfsctl(
        capsys, "status", "--model-config", str(config), "--endpoints", DEAD, "-o", output
    )
    assert code == 7, err
    parsed = json.loads(out) if output == "json" else yaml.safe_load(out)
    assert parsed["consistent"] is False
    assert f"{DEAD}: unreachable" in err
    assert "tfsctl: error: " in err and "tfsctl: error: " not in out
