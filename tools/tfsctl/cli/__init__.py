"""The ``tfsctl`` command line: a thin layer over the library.

Subcommands are imported lazily from the table below, so ``tfsctl --help`` and
commands that do not run a model never import TensorFlow. Each module under
``tfsctl.cli`` parses options, builds a small request object and calls one
library function; the library never prints.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from tfsctl import __version__
from tfsctl.errors import ExitStatus, ToolkitError

# command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "cluster": "tfsctl.cli.cluster:cluster",
    "deploy": "tfsctl.cli.release:deploy",
    "history": "tfsctl.cli.release:history",
    "loadtest": "tfsctl.cli.loadtest:loadtest",
    "metadata": "tfsctl.cli.protocol:metadata",
    "model-status": "tfsctl.cli.protocol:model_status",
    "models": "tfsctl.cli.models:models",
    "predict": "tfsctl.cli.protocol:predict",
    "promote": "tfsctl.cli.release:promote",
    "reload-config": "tfsctl.cli.protocol:reload_config",
    "rollback": "tfsctl.cli.release:rollback",
    "scale": "tfsctl.cli.release:scale",
    "serve": "tfsctl.cli.serve:serve",
    "status": "tfsctl.cli.release:status",
    "toolchain": "tfsctl.cli.toolchain:toolchain",
    "upload": "tfsctl.cli.models:upload",
    "validate": "tfsctl.cli.release:validate",
    "verify-autoscaling": "tfsctl.cli.loadtest:verify_autoscaling",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they are run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._available(name))

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not self._available(cmd_name):
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tfsctl")
@click.option("-v", "--verbose", count=True, help="More diagnostics on stderr (-vv for debug).")
def cli(verbose: int) -> None:
    """Ship TensorFlow Serving on Kubernetes: deploy, promote, verify."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI, turning toolkit errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="tfsctl", standalone_mode=False)
    except ToolkitError as exc:
        click.echo(f"tfsctl: error: {exc}", err=True)
        sys.exit(int(exc.exit_status))
    except click.exceptions.Abort:
        click.echo("tfsctl: interrupted", err=True)
        sys.exit(int(ExitStatus.INTERRUPTED))
    except click.ClickException as exc:
        click.echo(f"tfsctl: error: {exc.format_message()}", err=True)
        sys.exit(int(ExitStatus.USAGE))
    except KeyboardInterrupt:
        click.echo("tfsctl: interrupted", err=True)
        sys.exit(int(ExitStatus.INTERRUPTED))
    sys.exit(0)
