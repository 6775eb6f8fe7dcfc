"""``tfsctl loadtest`` and ``tfsctl verify-autoscaling``.

Both generate load with ``loadtest/locustfile.py`` through Locust's library API.
Locust (and with it gevent's monkey-patching) is imported only when a command
runs, before any network library, so ``tfsctl --help`` stays fast.
The token never appears as a flag value: it comes from ``TFSCTL_LOAD_TOKEN`` or
``--token-file``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tfsctl.cli.kube_options import cluster_options
from tfsctl.cli.output import OUTPUT, structured
from tfsctl.errors import CheckFailed, InvalidInput, Unavailable
from tfsctl.load.options import KNOBS, Knob, LoadSettings
from tfsctl.load.shapes import parse_duration


def _knob_option(knob: Knob, default: Any) -> Callable[[Any], Any]:
    """The click option of a load knob: Locust's flag, help and default (``tfsctl.load.options``)."""
    kind: Any = knob.type
    if knob.choices:
        kind = click.Choice(knob.choices)
    elif knob.cli == "int":
        kind, default = click.IntRange(min=0), (None if default == "" else default)
    elif knob.cli == "path":
        kind, default = click.Path(dir_okay=False, exists=True), (default or None)
    return click.option(knob.flag, knob.dest, type=kind, default=default, show_default=True, help=knob.help)


def _load_options(default_shape: str, default_users: int, default_duration: str, **defaults: Any) -> Any:
    """Every knob of the locustfile (the token comes from --token-file or the environment), then
    Locust's own run options: ``defaults`` overrides a knob's default by its dest."""
    defaults = {"shape": default_shape, **defaults}
    options = [_knob_option(k, defaults.get(k.dest, k.default)) for k in KNOBS if not k.secret]
    options += [
        click.option(
            "--duration", default=default_duration, show_default=True, help="Load duration (30s, 2m)."
        ),
        click.option("--users", type=int, default=default_users, show_default=True, help="(Peak) users."),
        click.option(
            "--spawn-rate", type=float, default=None, help="Users started per second (default: all at once)."
        ),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False, exists=True, path_type=Path),
            default=None,
            help="File holding the Authorization header value (else $TFSCTL_LOAD_TOKEN).",
        ),
        OUTPUT,
    ]

    def decorate(func: Any) -> Any:
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _token(token_file: Path | None) -> str | None:
    import os

    if token_file is not None:
        return token_file.read_text().strip() or None
    return os.environ.get("TFSCTL_LOAD_TOKEN") or None


def _settings(host: str, kw: dict[str, Any]) -> LoadSettings:
    try:
        duration = parse_duration(kw["duration"])
    except InvalidInput:
        raise InvalidInput(f"--duration {kw['duration']!r}: expected e.g. 30s, 2m") from None
    if kw["model_label"] and kw["model_version"] is not None:
        raise InvalidInput("--model-label and --model-version are exclusive: pick one")
    values = {k.dest: kw[k.dest] for k in KNOBS if k.dest in kw}
    if values.get("request_file"):
        values["request_file"] = str(Path(values["request_file"]).resolve())
    settings = LoadSettings.from_knobs(
        host,
        values,
        token=_token(kw["token_file"]),
        users=kw["users"],
        spawn_rate=kw["spawn_rate"],
        duration=duration,
    )
    settings.build_shape()  # validate shape parameters before anything starts
    return settings


def _require_payload(settings: LoadSettings, target: str) -> None:
    """Check a --request-file against the signature once here, so a bad one is one line rather
    than an error from every Locust user. (Without one, a target problem such as an unknown label
    is measured and reported by the run itself.)"""
    if not settings.request_file:
        return
    from tfsctl.load import runner
    from tfsctl.load import target as targets

    opts = runner.parse_options(settings)
    targets.build_payload(
        targets.Target.from_options(opts, target), opts.transport, opts.request_file, opts.batch_size
    )


def _require_answering(target: str, resolve: str = "") -> None:
    """One line before any load when nothing listens at --target (not a run of failed requests)."""
    import socket
    import urllib.parse

    from tfsctl.load.target import Resolve

    parts = urllib.parse.urlsplit(target if "://" in target else f"http://{target}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    if (entry := Resolve.for_url(resolve, target)) is not None:
        host = entry.address
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise Unavailable(
            f"--target {target}: nothing answers at {host}:{port} ({reason}): is the server "
            "(or its Service's load balancer) up?"
        ) from None


@click.command("loadtest")
@click.option("--target", required=True, help="REST base URL of the service, e.g. http://10.0.0.12:8501.")
@_load_options("constant", 4, "30s")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports/loadtest"),
)
@click.option(
    "--distributed", is_flag=True, help="Run Locust master + workers in the cluster (see loadtest/)."
)
@click.option("--workers", type=int, default=2, show_default=True, help="Workers for --distributed.")
@click.option("--namespace", "-n", default="default", show_default=True, help="Namespace for --distributed.")
@click.option(
    "--node-selector",
    "node_selector",
    multiple=True,
    metavar="KEY=VALUE",
    help="--distributed: run the Locust pods on nodes with this label (repeatable).",
)
@click.option(
    "--toleration",
    "tolerations",
    multiple=True,
    metavar="KEY[=VALUE]:EFFECT",
    help="--distributed: tolerate this taint, as `kubectl taint` writes it (repeatable).",
)
@click.option(
    "--image",
    default=None,
    help="--distributed: Locust + tfsctl image (loadtest/Dockerfile)  [default: tfsctl-loadtest:0.1.0]",
)
@cluster_options
def loadtest(
    target: str,
    report_dir: Path,
    distributed: bool,
    workers: int,
    namespace: str,
    node_selector: tuple[str, ...],
    tolerations: tuple[str, ...],
    image: str | None,
    kubeconfig: Path | None,
    context: str | None,
    **kw: Any,
) -> None:
    """Send load to TARGET with the locustfile; write Locust's CSV and HTML into --report.

    Exits 7 when a threshold (failure ratio, p95, p99) is violated.
    """
    if not distributed:
        for flag, given in (
            ("--node-selector", node_selector),
            ("--toleration", tolerations),
            ("--image", image),
        ):
            if given:
                raise InvalidInput(f"{flag}: only with --distributed (it places the Locust pods)")
    settings = _settings(target, kw)
    if distributed:
        import tfsctl.load.distributed as dist

        if workers < 1:
            raise InvalidInput(f"--workers {workers}: must be at least 1")
        request = dist.DistributedRequest(
            settings=settings,
            workers=workers,
            namespace=namespace,
            image=dist.check_image(image) if image is not None else dist.DEFAULT_IMAGE,
            node_selector=dist.parse_node_selector(node_selector),
            tolerations=tuple(dist.parse_toleration(t) for t in tolerations),
        )
        from tfsctl.kubeclient import api_client

        data = dist.run(
            request,
            report_dir,
            api=api_client(kubeconfig, context),
        )
    else:
        from tfsctl.load import runner

        _require_answering(target, settings.resolve)
        _require_payload(settings, target)
        result = runner.run(settings, report_dir)
        data = result.to_dict()
    if not structured(kw["output"], data):
        s = data["summary"]
        click.echo(
            f"{s['requests']} requests, {s['failures']} failures ({s['failure_ratio']:.2%}), "
            f"p95 {s['p95_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms, {s['rps']:.1f} req/s"
        )
        for name, path in sorted(data.get("files", {}).items()):
            click.echo(f"  {name}: {path}")
    if not data["thresholds"]["passed"]:
        raise CheckFailed("thresholds violated: " + "; ".join(data["thresholds"]["violations"]))


@click.command("verify-autoscaling")
@click.option("--release", "-r", required=True, help="Helm release whose HPA to verify.")
@click.option("--namespace", "-n", default="default", show_default=True)
@cluster_options
@click.option(
    "--through",
    type=click.Choice(["service", "ingress"]),
    default="service",
    show_default=True,
    help="Where the load enters: the Service's LoadBalancer address, or the release's Ingress "
    "(http(s)://<first rule host><path>, connecting to the Ingress's status address; REST only).",
)
@click.option(
    "--target",
    default=None,
    help="REST base URL (default: from --through); not with --through ingress.",
)
# paced users, periodic reconnects: a fixed request rate, and new pods get connections (spread check)
@_load_options("step", 8, "90s", user_rps=10.0, reconnect_every=50)
@click.option("--expect-max-replicas-at-least", "at_least", type=int, default=2, show_default=True)
@click.option(
    "--scale-out-within", default="90s", show_default=True, help="After the load crossed the target."
)
@click.option("--scale-in-within", default="180s", show_default=True, help="After the load stopped.")
@click.option("--max-busiest-share", type=float, default=0.9, show_default=True, help="Spread check limit.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports/autoscaling"),
)
def verify_autoscaling(
    release: str,
    namespace: str,
    kubeconfig: Path | None,
    context: str | None,
    target: str | None,
    through: str,
    at_least: int,
    scale_out_within: str,
    scale_in_within: str,
    max_busiest_share: float,
    report_dir: Path,
    **kw: Any,
) -> None:
    """Load RELEASE and prove its HPA scales out to K replicas and back in, within limits.

    The load enters --through the Service (its LoadBalancer address, or --target) or the
    release's Ingress (its first rule host by name, connecting to the address the Ingress
    controller published, as curl's --resolve does; an explicit --resolve wins).

    Writes report.json, report.html and autoscaling.png into --report; exits 7
    (naming each failed expectation) unless every expectation held.
    """
    from tfsctl.load.through import check_through

    if at_least < 1:
        raise InvalidInput(f"--expect-max-replicas-at-least {at_least}: must be at least 1")
    check_through(through, target, kw["transport"])
    import tfsctl.load.verify as verify

    request = verify.VerifyRequest(
        release=release,
        namespace=namespace,
        target=target,
        settings=_settings(target or "http://service.invalid", kw),
        at_least=at_least,
        scale_out_within=parse_duration(scale_out_within),
        scale_in_within=parse_duration(scale_in_within),
        max_busiest_share=max_busiest_share,
        through=through,
    )
    from tfsctl.kubeclient import connect

    outcome = verify.verify(request, report_dir, api=connect(kubeconfig, context))
    if not structured(kw["output"], outcome.report.to_dict()):
        for check in outcome.report.evaluation.checks:
            click.echo(f"{check.status.upper():4}  {check.name:13} {check.reason}")
        for name, path in sorted(outcome.files.items()):
            click.echo(f"  {name}: {path}")
    failures = outcome.report.evaluation.failures()
    if failures:
        raise CheckFailed("autoscaling not verified: " + "; ".join(f"{c.name}: {c.reason}" for c in failures))
