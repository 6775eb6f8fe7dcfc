"""``-o/--output table|json|yaml``, declared once for every command that prints a result.

As with kubectl: the result goes to stdout in the format asked for; diagnostics and
progress go to stderr (logging), so ``tfsctl status -o json | jq`` always parses.
"""

from __future__ import annotations

import json
from typing import Any

import click

FORMATS = ("table", "json", "yaml")

OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Result format on stdout (diagnostics go to stderr).",
)


def render(output: str, data: Any) -> str:
    """``data`` as JSON or YAML (values JSON cannot hold become strings, in both)."""
    plain = json.loads(json.dumps(data, default=str))
    if output == "yaml":
        import yaml

        return str(yaml.safe_dump(plain, sort_keys=False)).rstrip("\n")
    return json.dumps(plain, indent=2)


def structured(output: str, data: Any) -> bool:
    """Print ``data`` when ``output`` is json or yaml (True); False leaves the table to the caller."""
    if output == "table":
        return False
    click.echo(render(output, data))
    return True
