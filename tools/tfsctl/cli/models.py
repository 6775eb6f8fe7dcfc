"""``tfsctl models`` (example, validate, versions) and ``tfsctl upload``."""

from __future__ import annotations

from pathlib import Path

import click

from tfsctl.errors import InvalidInput


def _parse_versions(text: str) -> tuple[int, ...]:
    try:
        versions = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InvalidInput(f"--versions {text!r}: expected comma-separated integers such as 1,2,3") from None
    if not versions or any(v < 0 for v in versions):
        raise InvalidInput(f"--versions {text!r}: expected comma-separated non-negative integers")
    return versions


@click.group()
def models() -> None:
    """Model repositories: example models, validation, versions."""


@models.command("example")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="fashion", show_default=True, help="Model name (sub-directory of DIRECTORY).")
@click.option("--versions", "versions_text", default="1,2", show_default=True, help="Versions to write.")
@click.option("--no-warmup", is_flag=True, help="Do not write assets.extra/tf_serving_warmup_requests.")
def example_cmd(directory: Path, name: str, versions_text: str, no_warmup: bool) -> None:
    """Write a Fashion-MNIST-shaped example classifier to DIRECTORY/NAME/<version>/."""
    from tfsctl.models import example

    versions = _parse_versions(versions_text)
    model_dir = example.generate(directory, name=name, versions=versions, warmup=not no_warmup)
    for v in versions:
        click.echo(str(model_dir / str(v)))
