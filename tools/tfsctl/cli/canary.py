"""``tfsctl canary MODEL VERSION``: a thin wrapper over ``tfsctl.canary.run``.

Exit 0 only when VERSION was promoted to stable; a reverted canary exits 7 (a check did
not hold) after printing the result, so a pipeline can gate on the status alone.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click
import yaml

from tfsctl.cli.output import OUTPUT, structured
from tfsctl.cli.release import _chart, _connect, _endpoint_mode, _k8s, _target
from tfsctl.errors import CheckFailed


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@click.command()
@click.argument("model")
@click.argument("version", type=click.IntRange(min=0))
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(path_type=Path),
    default=None,
    help="YAML check spec (see --print-spec); default: the profile's defaults.",
)
@click.option(
    "--profile",
    type=click.Choice(["classifier", "regressor"]),
    default=None,
    help="Defaults for class scores or for numbers (overrides the spec's profile).",
)
@click.option("--bake", type=float, default=None, help="Seconds to analyse (spec bakeSeconds).")
@click.option(
    "--max-request-rate",
    type=float,
    default=None,
    help="Requests/s the analysis may send to the whole service (spec maxRequestRate).",
)
@click.option(
    "--request-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Inputs: a REST predict body, or a TF Serving warmup file (spec inputs.file).",
)
@click.option("--prometheus-url", default=None, help="Judge live traffic too (spec prometheus.url).")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write canary.json and canary.html into this directory.",
)
@click.option("--print-spec", is_flag=True, help="Print the effective spec as YAML and exit.")
@click.option(
    "--lock-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait while another promotion holds the release.",
)
@OUTPUT
@_endpoint_mode
@_connect
@_chart
@_k8s
def canary(
    model: str,
    version: int,
    spec_file: Path | None,
    profile: str | None,
    bake: float | None,
    max_request_rate: float | None,
    request_file: Path | None,
    prometheus_url: str | None,
    report_dir: Path | None,
    print_spec: bool,
    lock_timeout: float,
    output: str,
    **kw: Any,
) -> None:
    """Load VERSION under the canary label on every replica, compare it with stable for a bake
    window, then promote stable to VERSION or move canary back and retire VERSION."""
    from tfsctl.canary import report, spec
    from tfsctl.canary.run import CanaryRequest
    from tfsctl.canary.run import canary as run_canary

    overrides: dict[str, Any] = {}
    if profile is not None:
        overrides["profile"] = profile
    if bake is not None:
        overrides["bakeSeconds"] = bake
    if max_request_rate is not None:
        overrides["maxRequestRate"] = max_request_rate
    if request_file is not None:
        overrides["inputs"] = {"source": "file", "file": str(request_file)}
    if prometheus_url is not None:
        overrides["prometheus"] = {"url": prometheus_url}
    effective = spec.load(spec_file, overrides)
    if print_spec:
        click.echo(yaml.safe_dump(effective.to_json(), sort_keys=False), nl=False)
        return
    target = _target(kw)
    # SIGTERM (a Job past its deadline, a pipeline cancelled) takes the Ctrl-C path: canary moves back.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = run_canary(target, CanaryRequest(model, version, effective, target.timeout, lock_timeout))
    finally:
        signal.signal(signal.SIGTERM, previous)
    data = result.to_json()
    if report_dir is not None:
        files = report.write(data, report_dir)
        data["files"] = {k: str(v) for k, v in files.items()}
    # the per-request latencies are in the report; the pipeline's answer stays small
    summary = {k: v for k, v in data.items() if k != "latency"} | {
        "latency": {k: {x: y for x, y in v.items() if x != "seconds"} for k, v in data["latency"].items()}
    }
    if not structured(output, summary):
        lines = [f"{model}: canary {version} {result.decision}: {result.reason}"]
        lines += [f"  {c}" for c in (result.verdict.checks if result.verdict else ())]
        lines += [f"  {p.name:<8} {p.description} ({p.seconds:.1f}s)" for p in result.phases]
        lines.append(
            f"  stable {result.stable_before} -> {result.stable_after}, "
            f"canary {result.canary_before} -> {result.canary_after}; "
            f"{result.requests_sent} requests in {result.bake_seconds:.1f}s ({result.inputs})"
        )
        if report_dir is not None:
            lines.append(f"  report: {data['files']['html']}")
        click.echo("\n".join(lines))
    if not result.promoted:
        failed = [c.name for c in result.verdict.failed] if result.verdict else []
        raise CheckFailed(
            f"canary {model} {version} reverted: failed check(s) {', '.join(failed) or '?'}; "
            f"stable stays {result.stable_after}"
        )
