"""``tfsctl toolchain``: build and list the pinned upstream tools."""

from __future__ import annotations

import click

from tfsbed import toolchain as tc
from tfsctl.errors import ToolkitError


@click.group()
def toolchain() -> None:
    """Pinned upstream tools (helm, Kubernetes, etcd, kwok, ...) built from source."""


@toolchain.command("ensure")
@click.argument("tools", nargs=-1, required=True, type=click.Choice(sorted(tc.TOOLS)))
def ensure(tools: tuple[str, ...]) -> None:
    """Build (once, cached by version) and link TOOLS into .tools/bin."""
    for name in tools:
        try:
            path = tc.ensure(name)
        except tc.ToolchainError as exc:
            raise ToolkitError(str(exc)) from exc
        click.echo(f"{name} {tc.TOOLS[name].version} {path}")


@toolchain.command("list")
def list_tools() -> None:
    """Pinned tools, their versions and cache directories."""
    tc.main(["list"])
