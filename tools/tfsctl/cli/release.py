"""``tfsctl deploy|scale|promote|rollback|status|history|validate``: thin wrappers over
``tfsctl.release.ops``. Results on stdout (``--output table|json``), errors through
``tfsctl.cli.main``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tfsctl.cli.kube_options import cluster_options
from tfsctl.cli.output import OUTPUT, structured
from tfsctl.errors import CheckFailed, first_of
from tfsctl.release import DEFAULT_TIMEOUT

LOCK_TIMEOUT = click.option(
    "--lock-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait while a promotion (or another tfsctl change) holds the release.",
)


def _k8s(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--namespace", "-n", default="default", show_default=True, help="Namespace of the release."
    )(fn)
    fn = click.option("--release", "-r", default=None, help="Helm release (Kubernetes mode).")(fn)
    fn = cluster_options(fn)
    return click.option(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help="Seconds for the whole run (a label move waits for kubelet's sync, 1 min by default).",
    )(fn)


def _chart(fn: Callable[..., Any]) -> Callable[..., Any]:
    """For commands that render the chart (a deploy, and every change that upgrades the release)."""
    fn = click.option(
        "--version",
        "chart_version",
        default=None,
        help="With --chart oci://...: the chart version to pull (default: the newest).",
    )(fn)
    return click.option(
        "--chart",
        default=None,
        metavar="PATH|oci://REF",
        help="The chart: a directory, a .tgz, or oci://host/repository/chart. Default: the packaged chart.",
    )(fn)


def _connect(fn: Callable[..., Any]) -> Callable[..., Any]:
    """For commands that talk to every replica (Kubernetes mode)."""
    return click.option(
        "--connect",
        type=click.Choice(["auto", "pod-ip", "port-forward"]),
        default="auto",
        show_default=True,
        help="Reach pods by IP, or through the API server (from outside the cluster network); "
        "auto tries a pod IP first.",
    )(fn)


def _endpoint_mode(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--model-config",
        type=click.Path(path_type=Path),
        default=None,
        help="Endpoint mode: the model config file the servers share.",
    )(fn)
    return click.option("--endpoints", default=None, help="Endpoint mode: host:grpc_port[:rest_port],...")(fn)


def _target(kw: dict[str, Any]) -> Any:
    from tfsctl.release.ops import Target

    return Target(
        release=kw.pop("release", None),
        namespace=kw.pop("namespace", "default"),
        model_config=kw.pop("model_config", None),
        endpoints=kw.pop("endpoints", None),
        kubeconfig=kw.pop("kubeconfig", None),
        context=kw.pop("context", None),
        timeout=kw.pop("timeout", DEFAULT_TIMEOUT),
        connect=kw.pop("connect", "auto"),
        chart=kw.pop("chart", None),
        chart_version=kw.pop("chart_version", None),
    )


def _emit(output: str, data: Any, table: str) -> None:
    if not structured(output, data):
        click.echo(table)


@click.command()
@_k8s
@_chart
@click.option(
    "-f", "--values", "values_files", multiple=True, type=click.Path(path_type=Path), help="Repeatable."
)
@click.option("--set", "sets", multiple=True, help="a.b=c (Helm strvals syntax); repeatable.")
@click.option("--set-string", "set_strings", multiple=True, help="Like --set, values stay strings.")
@click.option("--set-json", "set_json", multiple=True, help="a.b=<JSON>.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the rollout.")
@click.option(
    "--atomic/--no-atomic",
    default=None,
    help="Roll back a failed upgrade (waits for the rollout, as Helm's --atomic does). [default: --wait]",
)
@click.option("--dry-run", is_flag=True, help="Show a diff of the rendered manifests; change nothing.")
@click.option(
    "--create-namespace",
    is_flag=True,
    help="Create the namespace (PodSecurity 'restricted' enforced) if it does not exist.",
)
@LOCK_TIMEOUT
@OUTPUT
def deploy(
    values_files: tuple[Path, ...],
    sets: tuple[str, ...],
    set_strings: tuple[str, ...],
    set_json: tuple[str, ...],
    wait: bool,
    atomic: bool | None,
    dry_run: bool,
    create_namespace: bool,
    lock_timeout: float,
    output: str,
    **kw: Any,
) -> None:
    """Install or upgrade a release of the chart with merged values."""
    from tfsctl.release import ops

    target = _target(kw)
    values = ops.load_values(list(values_files), list(sets), list(set_strings), list(set_json))
    result = ops.deploy(
        target,
        values,
        wait=wait,
        atomic=atomic,
        dry_run=dry_run,
        lock_timeout=lock_timeout,
        create_namespace=create_namespace,
    )
    verb = "would install" if result.installed else "would upgrade"
    if not dry_run:
        verb = "installed" if result.installed else "upgraded"
    head = f"{result.namespace}/{result.release}: {verb}" + (
        f", revision {result.revision}" if result.revision else ""
    )
    lines = [result.diff] if dry_run and result.diff else []
    lines += [head] + [f"  {s}" for s in result.summary or ["  no resource changes"]]
    _emit(output, result.__dict__, "\n".join(lines))


@click.command()
@_k8s
@_chart
@click.option("--replicas", type=int, required=True)
@click.option("--adjust-hpa", is_flag=True, help="When an HPA owns the replicas, move its min/max instead.")
@click.option("--wait/--no-wait", default=True, show_default=True)
@LOCK_TIMEOUT
@OUTPUT
def scale(replicas: int, adjust_hpa: bool, wait: bool, lock_timeout: float, output: str, **kw: Any) -> None:
    """Set the replica count of a release (through its values)."""
    from tfsctl.release import ops

    result = ops.scale(_target(kw), replicas, adjust_hpa, wait, lock_timeout)
    _emit(
        output,
        result.__dict__,
        f"{result.namespace}/{result.release}: {result.summary} (revision {result.revision})",
    )


def _promotion_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--allow-unavailable",
        is_flag=True,
        help="A new label only: assign it in the revision that loads its version (servers run with "
        "--allow_version_labels_for_unavailable_models); refused for an existing label.",
    )(fn)
    fn = click.option("--keep-previous", is_flag=True, help="Keep the previous version loaded.")(fn)
    fn = click.option(
        "--lock-timeout",
        type=float,
        default=30.0,
        show_default=True,
        help="Seconds to wait for another promotion to finish.",
    )(fn)
    fn = click.option("--dry-run", is_flag=True, help="Show the plan only.")(fn)
    return OUTPUT(_endpoint_mode(_connect(_chart(_k8s(fn)))))


def _print_promotion(result: Any, output: str) -> None:
    if structured(output, {**result.__dict__, "steps": [s.__dict__ for s in result.steps]}):
        return
    verb = {"promote": "promoted", "rollback": "rolled back"}[result.action]
    if result.dry_run:
        verb = f"plan to {result.action}"
    lines = [
        f"{result.model}@{result.label}: {verb} {result.from_version} -> {result.to_version}"
        + ("" if result.changed else " (already there: nothing to do)")
    ]
    lines += [
        f"  {s.name:<10} {s.description}" + ("" if result.dry_run else f"  ({s.seconds:.1f}s)")
        for s in result.steps
    ]
    lines += [f"  note: {n}" for n in result.notes]
    if not result.dry_run:
        lines.append(f"  verified on {len(result.replicas)} replica(s): {', '.join(result.replicas)}")
    if result.revision:
        lines.append(f"  helm revision {result.revision}")
    click.echo("\n".join(lines))


@click.command()
@click.argument("model")
@click.argument("label")
@click.argument("version", type=click.IntRange(min=0))
@click.option("--create-label", is_flag=True, help="Allow LABEL not yet in the config.")
@_promotion_options
def promote(
    model: str,
    label: str,
    version: int,
    create_label: bool,
    allow_unavailable: bool,
    keep_previous: bool,
    lock_timeout: float,
    dry_run: bool,
    output: str,
    **kw: Any,
) -> None:
    """Move LABEL of MODEL to VERSION on every replica (load, wait, move, retire)."""
    from tfsctl.release import ops
    from tfsctl.release.promote import PromotionRequest

    target = _target(kw)
    req = PromotionRequest(
        model,
        label,
        version,
        "promote",
        target.timeout,
        lock_timeout,
        allow_unavailable,
        keep_previous,
        create_label,
        dry_run,
    )
    _print_promotion(ops.promote(target, req), output)


@click.command()
@click.argument("model")
@click.argument("label")
@_promotion_options
def rollback(
    model: str,
    label: str,
    allow_unavailable: bool,
    keep_previous: bool,
    lock_timeout: float,
    dry_run: bool,
    output: str,
    **kw: Any,
) -> None:
    """Put LABEL of MODEL back on the version it had before the last promotion."""
    from tfsctl.release import ops
    from tfsctl.release.promote import PromotionRequest

    target = _target(kw)
    req = PromotionRequest(
        model,
        label,
        None,
        "rollback",
        target.timeout,
        lock_timeout,
        allow_unavailable,
        keep_previous,
        False,
        dry_run,
    )
    _print_promotion(ops.promote(target, req), output)


@click.command()
@_endpoint_mode
@_connect
@_k8s
@OUTPUT
def status(output: str, **kw: Any) -> None:
    """Per replica: ready, node, each model's versions and the version each label resolves to there
    (GetModelMetadata by label; ? when it resolves to nothing loaded); flags disagreeing replicas.

    Pods that are starting are shown with their phase and age; a fleet with only those is
    "converging" (exit 0), one where a Ready replica serves something else exits 7.
    """
    from tfsctl.release import ops

    report = ops.status(_target(kw))
    data = report.to_json()
    lines = [f"{report.target}" + (f" (helm revision {report.revision})" if report.revision else "")]
    for m, d in data["desired"].items():
        labels = ", ".join(f"{k}->{v}" for k, v in sorted(d["labels"].items())) or "no labels"
        lines.append(f"  desired {m}: {d['policy']}; {labels}")
    width = max([28, *(len(r["name"]) for r in data["replicas"])])
    lines.append(f"  {'REPLICA':<{width}} {'READY':<6} {'NODE':<18} MODELS")
    for r in data["replicas"]:
        lines.append(
            f"  {r['name']:<{width}} {str(r['ready']).lower():<6} {r['node'] or '-'!s:<18} {_replica_cell(r)}"
        )
    lines.append("  " + _fleet_summary(report))
    _emit(output, data, "\n".join(lines))
    if report.disagreements:
        first = report.disagreements[0]
        more = len(report.disagreements) - 1
        raise CheckFailed(
            f"{report.target}: replica {first}"
            + (f" (and {more} more disagreement(s) above)" if more else "")
        )


def _replica_cell(r: dict[str, Any]) -> str:
    """What one replica serves; a starting pod's phase and age; each problem said once."""
    if r["state"] != "ready" and not r["models"]:
        return r["state"] + ("  !! " + "; ".join(r["disagrees"]) if r["disagrees"] else "")
    models = "; ".join(
        f"{m} v["
        + ",".join(f"{v}:{s[:5]}" for v, s in o["versions"].items())
        + "] "
        + ",".join(f"{k}->{'?' if v is None else v}" for k, v in o["labels"].items())
        for m, o in r["models"].items()
    )
    flag = "!! " + "; ".join(r["disagrees"]) if r["disagrees"] else ""
    return "  ".join(part for part in (models, flag) if part) or (r["error"] or "")


def _fleet_summary(report: Any) -> str:
    if report.disagreements:
        return f"{len(report.disagreements)} disagreement(s)"
    if report.starting:
        ready = sum(1 for r in report.replicas if r.ready)
        return (
            f"converging: {len(report.starting)} pod(s) starting or terminating, {ready} Ready and consistent"
        )
    return "consistent"


@click.command()
@_endpoint_mode
@_k8s
@click.option("--model", default=None)
@OUTPUT
def history(model: str | None, output: str, **kw: Any) -> None:
    """Promotions and rollbacks recorded for a release or a model config file."""
    from tfsctl.release import ops

    records = [r for r in ops.read_history(_target(kw)) if model is None or r.model == model]
    lines = [f"{'WHEN':<21} {'WHO':<24} {'ACTION':<9} {'MODEL@LABEL':<22} FROM -> TO  REV"]
    lines += [
        f"{r.when:<21} {r.who[:24]:<24} {r.action:<9} {r.model + '@' + r.label:<22} "
        f"{r.from_version} -> {r.to_version}  {r.revision or '-'}"
        for r in records
    ]
    _emit(output, [r.to_dict() for r in records], "\n".join(lines))


@click.command()
@click.option("-f", "--values", "values_files", multiple=True, type=click.Path(path_type=Path))
@click.option("--set", "sets", multiple=True)
@click.option(
    "--model-repo", type=click.Path(path_type=Path), default=None, help="A model base path to check."
)
@click.option(
    "--model-config", type=click.Path(path_type=Path), default=None, help="A model config text file."
)
@click.option("--release", "-r", default="validate", show_default=True, help="Release name to render as.")
@click.option("--namespace", "-n", default="default", show_default=True, help="Namespace to render in.")
@_chart
@OUTPUT
def validate(
    values_files: tuple[Path, ...],
    sets: tuple[str, ...],
    model_repo: Path | None,
    model_config: Path | None,
    release: str,
    namespace: str,
    chart: str | None,
    chart_version: str | None,
    output: str,
) -> None:
    """Check values (schema + chart rules + HPA routes), a model repository layout and a model config file."""
    from tfsctl.release import ops

    report = ops.validate(
        list(values_files), list(sets), model_repo, model_config, release, namespace, chart, chart_version
    )
    lines = [f"checked {c}" for c in report.checked]
    _emit(output, report.__dict__, "\n".join(lines) + ("\nok" if not report.problems else ""))
    if report.problems:
        raise first_of(report.problems)  # each problem once: the first here, all with -v
