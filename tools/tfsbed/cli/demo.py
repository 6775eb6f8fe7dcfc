"""``tfsctl demo``: the main job end to end on the local cluster."""

from __future__ import annotations

from pathlib import Path

import click

from tfsbed.demo import DemoPlan, run


@click.command()
@click.option("--reports", type=click.Path(path_type=Path), default=DemoPlan.reports, show_default=True)
@click.option("--release", default=DemoPlan.release, show_default=True)
@click.option("--namespace", default=DemoPlan.namespace, show_default=True)
def demo(reports: Path, release: str, namespace: str) -> None:
    """Validate presets, start the local cluster, deploy, promote, load test, report."""
    run(DemoPlan(release=release, namespace=namespace, reports=reports), echo=click.echo)
