"""Commands from the ``tfsctl.commands`` entry points (the test bed's) join the CLI, and only then."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

import tfsctl.cli as cli_module
from tfsctl.cli import COMMANDS, cli, plugin_commands

BED_COMMANDS = {"cluster", "demo", "serve", "toolchain"}


def test_the_test_bed_provides_its_commands_through_entry_points() -> None:
    found = plugin_commands()
    assert set(found) >= BED_COMMANDS
    assert all(found[name].value.startswith("tfsbed.cli.") for name in BED_COMMANDS)
    assert not BED_COMMANDS & set(COMMANDS), "bed commands must not be built into the product"


def test_help_lists_plugin_commands_with_their_own_help() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    lines = {
        line.split()[0]: line for line in result.output.splitlines() if line.startswith("  ") and line.split()
    }
    assert set(lines) >= BED_COMMANDS
    assert "tensorflow_model_server" in lines["serve"]


def test_a_plugin_command_runs_as_if_built_in() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0, result.output
    assert "--model_config_file" in result.output


def test_without_the_test_bed_its_commands_do_not_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_module, "plugin_commands", dict)
    help_text = CliRunner().invoke(cli, ["--help"]).output
    listed = {line.split()[0] for line in help_text.splitlines() if line.startswith("  ") and line.split()}
    assert not BED_COMMANDS & listed
    assert "deploy" in listed
    result = CliRunner().invoke(cli, ["serve", "--port", "8500"])
    assert result.exit_code == click.UsageError.exit_code
    assert "No such command 'serve'" in result.output


def test_a_plugin_that_fails_to_load_is_listed_as_such_and_help_still_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.metadata

    broken = importlib.metadata.EntryPoint("broken", "tfsbed.cli.no_such_module:cmd", "tfsctl.commands")
    monkeypatch.setattr(cli_module, "plugin_commands", lambda: {"broken": broken})
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.strip().startswith("broken"))
    assert "fails to load" in line and "tfsbed.cli.no_such_module" in result.output
