"""The ``tfsctl`` command line: a thin layer over the library.

Subcommands are imported lazily from the table below, so ``tfsctl --help`` and
commands that do not run a model never import TensorFlow. Each module under
``tfsctl.cli`` parses options, builds a small request object and calls one
library function; the library never prints.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import sys
from functools import cache
from typing import Any

import click

from tfsctl import __version__
from tfsctl.errors import ExitStatus, ToolkitError, exit_status_table

# command name -> ("module:attribute" of a click command or group, one-line help).
# The help lives here so `tfsctl --help` lists commands without importing them.
# More commands come from plugins (`plugin_commands`).
COMMANDS: dict[str, tuple[str, str]] = {
    "canary": ("tfsctl.cli.canary:canary", "Judge a version under the canary label, then promote or revert."),
    "deploy": ("tfsctl.cli.release:deploy", "Install or upgrade a release from values files."),
    "history": ("tfsctl.cli.release:history", "Show a release's promotions and Helm revisions."),
    "loadtest": ("tfsctl.cli.loadtest:loadtest", "Run a Locust load test against a model endpoint."),
    "metadata": ("tfsctl.cli.protocol:metadata", "Show a model's signature metadata."),
    "model-status": ("tfsctl.cli.protocol:model_status", "Show the state of a model's versions."),
    "models": ("tfsctl.cli.models:models", "Generate, validate and list model repositories."),
    "predict": ("tfsctl.cli.protocol:predict", "Send a predict request over REST or gRPC."),
    "promote": ("tfsctl.cli.release:promote", "Move a version label to a version on every replica."),
    "reload-config": ("tfsctl.cli.protocol:reload_config", "Push a model config to a server."),
    "rollback": ("tfsctl.cli.release:rollback", "Put a version label back to its previous version."),
    "scale": ("tfsctl.cli.release:scale", "Set a release's replicas (or its HPA bounds)."),
    "status": ("tfsctl.cli.release:status", "Which versions and labels every replica serves."),
    "upload": ("tfsctl.cli.models:upload", "Publish a SavedModel as a new version, atomically."),
    "validate": ("tfsctl.cli.release:validate", "Validate values files, model repositories, configs."),
    "verify-autoscaling": (
        "tfsctl.cli.loadtest:verify_autoscaling",
        "Load a release and verify its HPA scales out and in.",
    ),
}


# Entry-point group through which another distribution adds commands to tfsctl, the way
# kubectl finds plugins: the local test bed (tfsbed) adds `cluster`, `serve`, `demo`
# and `toolchain`. Each entry point names a click command; its help line is the
# command's own short help, read only when the command is listed or run.
PLUGIN_GROUP = "tfsctl.commands"


@cache
def plugin_commands() -> dict[str, importlib.metadata.EntryPoint]:
    """Commands that installed plugins add (name -> entry point); built-in names win."""
    found = importlib.metadata.entry_points(group=PLUGIN_GROUP)
    return {ep.name: ep for ep in found if ep.name not in COMMANDS}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they are run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        builtin = [name for name in COMMANDS if self._available(name)]
        return sorted([*builtin, *plugin_commands()])

    @staticmethod
    def _available(name: str) -> bool:
        module = COMMANDS[name][0].split(":")[0]
        return importlib.util.find_spec(module) is not None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if (plugin := plugin_commands().get(cmd_name)) is not None:
            command = plugin.load()
            if not isinstance(command, click.Command):
                raise ToolkitError(f"plugin command {cmd_name!r} ({plugin.value}) is not a click command")
            return command
        entry = COMMANDS.get(cmd_name)
        if entry is None or not self._available(cmd_name):
            return None
        module_name, attr = entry[0].split(":")
        command = getattr(importlib.import_module(module_name), attr, None)
        if not isinstance(command, click.Command):
            raise ToolkitError(f"command {cmd_name!r} is not available in this build ({entry[0]} missing)")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in COMMANDS:
                rows.append((name, COMMANDS[name][1]))
            else:
                try:
                    command = self.get_command(ctx, name)
                except Exception as exc:  # a broken plugin must not take `tfsctl --help` down with it
                    rows.append((name, f"(plugin {plugin_commands()[name].value} fails to load: {exc})"))
                    continue
                if command is not None:
                    rows.append((name, command.get_short_help_str(limit=80)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


EPILOG = (
    "On failure every command prints one line on stderr, `tfsctl: error: ...`, naming what to "
    "change (-v adds the details behind it), and exits with one of these statuses:\n\n\b\n"
    + exit_status_table()
)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, prog_name="tfsctl")
@click.option("-v", "--verbose", count=True, help="More diagnostics on stderr (-vv for debug).")
def cli(verbose: int) -> None:
    """Ship TensorFlow Serving on Kubernetes: deploy, promote, verify."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # urllib3 warns on every retry of a refused connection; the error line already says it (-vv shows them).
    logging.getLogger("urllib3").setLevel(logging.DEBUG if verbose >= 2 else logging.ERROR)
    # The locustfile's own verdict lines (for `locust -f`) repeat what tfsctl's error line says.
    logging.getLogger("tfsctl.loadtest").setLevel(logging.INFO if verbose else logging.CRITICAL)


def one_line(text: str) -> str:
    """``text`` with its lines joined: an error is one line on stderr, whatever produced it."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _verbose() -> bool:
    return logging.getLogger().getEffectiveLevel() <= logging.INFO


def _fail(message: str, status: ExitStatus, detail: str | None = None) -> None:
    """Print the one error line (and, with -v, what is behind it), then exit with ``status``."""
    if detail and _verbose():
        click.echo(detail.rstrip(), err=True)
    click.echo(f"tfsctl: error: {one_line(message)}", err=True)
    sys.exit(int(status))


def _usage_message(exc: click.ClickException) -> tuple[str, ExitStatus]:
    message = exc.format_message()
    status = ExitStatus.USAGE
    if isinstance(exc, click.BadParameter) and "does not exist" in message:
        status = ExitStatus.NOT_FOUND
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message = f"{message.rstrip('.')} (see `{ctx.command_path} --help`)"
    return message, status


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the CLI, turning every failure into one line on stderr and an exit code."""
    try:
        cli.main(args=argv, prog_name="tfsctl", standalone_mode=False)
    except ToolkitError as exc:
        _fail(str(exc), exc.exit_status, exc.detail)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("tfsctl: interrupted", err=True)
        sys.exit(int(ExitStatus.INTERRUPTED))
    except click.ClickException as exc:
        message, status = _usage_message(exc)
        _fail(message, status)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # a bug, not a user error: one line, the traceback with -v
        import traceback

        from tfsctl.extras import missing_extra

        if isinstance(exc, ModuleNotFoundError) and (missing := missing_extra(exc)) is not None:
            _fail(str(missing), missing.exit_status, traceback.format_exc())
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (rerun with -v for the traceback, and report it)",
            ExitStatus.ERROR,
            traceback.format_exc(),
        )
    sys.exit(0)
