"""kubectl's cluster flags, declared once for every command that talks to a cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


def cluster_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--kubeconfig FILE`` and ``--context NAME`` (as kubectl: a context of that kubeconfig)."""
    fn = click.option(
        "--context",
        default=None,
        help="The kubeconfig context to use (default: its current-context).",
    )(fn)
    return click.option(
        "--kubeconfig", type=click.Path(path_type=Path), default=None, help="Default: $KUBECONFIG."
    )(fn)
