"""Cluster add-ons: upstream components that run as pods on the real nodes.

An add-on is what a managed cluster ships beside its nodes (a load-balancer
controller, an Ingress controller, a metrics pipeline). Each one lives in a module
of this package and is listed in :data:`ADDONS`, in the order ``cluster up``
installs them. ``up`` builds and pushes each add-on's images with the node images,
applies its objects once the nodes are Ready, then waits for it; a failure in any
step removes the real nodes as a node failure does.

An add-on's module keeps its manifests pure (data from :class:`Context`) and does
its I/O only through the context it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from tfsbed.cluster.node import config as nconfig
from tfsbed.cluster.node import images


@dataclass(frozen=True)
class Context:
    """What an add-on may know of the cluster it is installed on, and its only I/O."""

    plan: nconfig.Plan
    # https://host:port of the apiserver as the nodes reach it
    server: str
    # kubectl against the cluster (admin); raises tfsctl.errors.Unavailable on failure
    kubectl: Callable[..., str]
    say: Callable[[str], None]
    # the cluster CA (PEM), for add-ons that serve TLS the apiserver verifies (aggregated APIs)
    ca_cert: bytes = b""
    ca_key: bytes = b""


class Addon(Protocol):
    """One add-on; ``name`` is how ``cluster up`` and ``cluster status`` call it."""

    name: str

    def recipes(self) -> list[images.Recipe]:
        """The images it runs (built here, cached by content, pushed to the local registry)."""
        ...

    def manifests(self, ctx: Context) -> list[dict[str, Any]]:
        """Every object it needs, applied with ``kubectl apply`` (server-side, idempotent)."""
        ...

    def wait(self, ctx: Context, deadline: float) -> None:
        """Return once it serves; raise tfsctl.errors.Timeout naming what is not ready."""
        ...


def rolled_out(ctx: Context, namespace: str, what: str, deadline: float, label: str) -> None:
    """``kubectl rollout status`` of ``what`` (``deployment/x``, ``daemonset/y``) until ``deadline``.

    Raises tfsctl.errors.Timeout as ``<label> not available in time: ...``.
    """
    from tfsctl.errors import Timeout, Unavailable

    left = max(5, int(deadline - time.monotonic()))
    try:
        ctx.kubectl("rollout", "status", what, "-n", namespace, f"--timeout={left}s", timeout=left + 10)
    except Unavailable as exc:
        raise Timeout(f"{label} not available in time: {exc}") from exc


# In install order. Each add-on module appends itself here with one line.
ADDONS: list[Addon] = []

from tfsbed.cluster.addons.prometheus import MetricsPipeline  # noqa: E402

ADDONS.append(MetricsPipeline())

from tfsbed.cluster.addons.traefik import Traefik  # noqa: E402

ADDONS.append(Traefik())

from tfsbed.cluster.addons.metallb import MetalLB  # noqa: E402

ADDONS.append(MetalLB())


def select(names: tuple[str, ...] | None) -> list[Addon]:
    """The add-ons named (in install order), or all of them for None; an unknown name is refused."""
    if names is None:
        return list(ADDONS)
    known = {a.name for a in ADDONS}
    unknown = sorted(set(names) - known)
    if unknown:
        raise ValueError(f"unknown add-on {', '.join(unknown)}: the add-ons are {', '.join(sorted(known))}")
    return [a for a in ADDONS if a.name in names]
