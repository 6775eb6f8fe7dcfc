"""``tfsctl cluster up|down|status``: the local Kubernetes cluster the chart is tested against."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tfsbed.cluster.volumes import DEFAULT_NAME as DEFAULT_PV_NAME
from tfsctl import paths
from tfsctl.errors import NotFound

if TYPE_CHECKING:
    from tfsbed.cluster.local import LocalCluster

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ClusterOptions:
    port_base: int
    state_dir: Path
    kubeconfig: Path
    real_nodes: int = 0  # down and status find an earlier up's nodes in its state
    proxy_mode: str = "iptables"


def _progress(line: str) -> None:
    click.echo(f"cluster: {line}", err=True)


def _cluster(opts: ClusterOptions, quiet: bool = False) -> LocalCluster:
    from tfsbed.cluster import local, spec
    from tfsctl.errors import InvalidInput

    try:
        ports = spec.Ports(opts.port_base)
    except ValueError as exc:
        raise InvalidInput(f"--port-base: {exc}") from exc
    if not 0 <= opts.real_nodes <= 8:
        raise InvalidInput(f"--real-nodes: {opts.real_nodes} must be between 0 and 8")
    return local.LocalCluster(
        spec.ClusterSpec(ports=ports, real_nodes=opts.real_nodes, proxy_mode=opts.proxy_mode),
        state_dir=opts.state_dir,
        kubeconfig=opts.kubeconfig,
        progress=None if quiet else _progress,
    )


def _common(fn: F) -> F:
    fn = click.option(
        "--kubeconfig",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        envvar="TFSCTL_CLUSTER_KUBECONFIG",
        help="Kubeconfig this cluster writes.  [default: .tools/kubeconfig, or STATE_DIR/kubeconfig "
        "with --state-dir]",
    )(fn)
    fn = click.option(
        "--state-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        envvar="TFSCTL_CLUSTER_STATE_DIR",
        help="Where the cluster keeps its state (a second cluster needs its own).  [default: .tools/cluster]",
    )(fn)
    return click.option(
        "--port-base",
        type=int,
        default=26400,
        show_default=True,
        envvar="TFSCTL_CLUSTER_PORT_BASE",
        help="Control-plane ports are this base + a fixed offset (apiserver +43).",
    )(fn)


def _opts(
    port_base: int,
    state_dir: Path | None,
    kubeconfig: Path | None,
    real_nodes: int = 0,
    proxy_mode: str = "iptables",
) -> ClusterOptions:
    from tfsbed.cluster.local import STATE_DIR

    if kubeconfig is None:
        kubeconfig = paths.LOCAL_KUBECONFIG if state_dir is None else state_dir / "kubeconfig"
    return ClusterOptions(
        port_base,
        (state_dir or STATE_DIR).absolute(),
        kubeconfig.absolute(),
        real_nodes,
        proxy_mode,
    )


def _print_status(status_dict: dict[str, Any], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(status_dict, indent=2))
        return
    click.echo(f"cluster {status_dict['name']}: {status_dict['state']}")
    if status_dict["state"] != "absent":
        click.echo(f"server      {status_dict['server']}")
        click.echo(f"kubeconfig  {status_dict['kubeconfig']}")
    if status_dict["components"]:
        click.echo("")
        click.echo(f"{'COMPONENT':26}{'STATE':10}PID")
        for c in status_dict["components"]:
            state = "running" if c["running"] else "stopped"
            click.echo(f"{c['name']:26}{state:10}{c['pid'] or '-'}")
    if status_dict["nodes"]:
        click.echo("")
        click.echo(f"{'NODE':34}{'TYPE':9}{'PROVIDER':10}READY")
        for n in status_dict["nodes"]:
            click.echo(f"{n['name']:34}{n['node_type'] or '-':9}{n['provider']:10}{n['ready']}")
    for note in status_dict.get("notes", []):
        click.echo(f"note: {note}", err=True)


@click.group()
def cluster() -> None:
    """The local cluster: pinned Kubernetes control plane, simulated kwok nodes and a real node."""


@cluster.command()
@_common
@click.option("--timeout", type=float, default=300.0, show_default=True, help="Seconds to wait for Ready.")
@click.option(
    "--real-nodes",
    type=int,
    default=1,
    show_default=True,
    envvar="TFSCTL_CLUSTER_REAL_NODES",
    help="Real worker nodes (containerd + kubelet + kube-proxy, as root) beside the kwok nodes; "
    "0 for the control plane and kwok nodes alone.",
)
@click.option(
    "--proxy-mode",
    type=click.Choice(["iptables", "nftables"]),
    default="iptables",
    show_default=True,
    help="kube-proxy's mode on the real nodes.",
)
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def up(
    port_base: int,
    state_dir: Path | None,
    kubeconfig: Path | None,
    timeout: float,
    real_nodes: int,
    proxy_mode: str,
    output: str,
) -> None:
    """Build (first time) and start the cluster, or reuse the running one; writes .tools/kubeconfig."""
    opts = _opts(port_base, state_dir, kubeconfig, real_nodes, proxy_mode)
    result = _cluster(opts).up(timeout=timeout)
    data = result.status.to_dict()
    if output == "json":
        data.update(
            created=result.created,
            seconds=round(result.seconds, 2),
            steps={k: round(v, 2) for k, v in result.steps.items()},
        )
    _print_status(data, output)


@cluster.command()
@_common
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait per process.")
def down(port_base: int, state_dir: Path | None, kubeconfig: Path | None, timeout: float) -> None:
    """Stop the real nodes and delete the cluster and its state."""
    stopped = _cluster(_opts(port_base, state_dir, kubeconfig)).down(timeout=timeout)
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@cluster.command()
@_common
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
def status(port_base: int, state_dir: Path | None, kubeconfig: Path | None, output: str) -> None:
    """Components, nodes and their readiness (exit 0 also when the cluster is absent)."""
    _print_status(_cluster(_opts(port_base, state_dir, kubeconfig), quiet=True).status().to_dict(), output)


@cluster.command("models-volume")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--name", default=DEFAULT_PV_NAME, show_default=True, help="PersistentVolume name.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    help="key=value the presets' claims select on (repeatable).  [default: model=local-examples]",
)
def models_volume(directory: Path, name: str, labels: tuple[str, ...]) -> None:
    """Expose DIRECTORY (a model repository) to the cluster as a hostPath PersistentVolume."""
    from tfsbed.cluster.volumes import apply_models_pv, parse_labels
    from tfsctl.kubeclient import connect

    selected = parse_labels(labels)
    if not directory.is_dir():
        raise NotFound(f"DIRECTORY {directory}: no such directory")
    phase = apply_models_pv(connect(), name, directory, selected)
    shown = ",".join(f"{k}={v}" for k, v in selected.items())
    click.echo(f"persistentvolume/{name} ({shown}) -> {directory.resolve()}: {phase}")
