"""Autoscaling report: ``report.json``, a PNG plot and a self-contained ``report.html``.

The plot (matplotlib, Agg backend, no display needed) stacks request rate,
p95 latency, replicas (HPA desired, Deployment ready) and, for every metric of
the HPA, the value the HPA computed against its target (with the tolerance
band in which the HPA does not act) on one time axis, with the load phases
shaded, the moment the load crossed the target and the moment it stopped
marked. The HTML embeds the PNG (base64) and lists each expectation
with its verdict and reason, the decisions and the load summary.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tfsctl.load.evaluate import Evaluation, Expectations, Observation, crossed_target
from tfsctl.load.metrics import MetricSpec, Tolerances
from tfsctl.load.shapes import Phase
from tfsctl.load.timeline import Sample

PLOT_NAME = "autoscaling.png"


@dataclass(frozen=True)
class MetricSeries:
    """One HPA metric over the run: its spec, tolerance and (t, value the HPA computed) points."""

    spec: MetricSpec
    tolerances: Tolerances
    points: tuple[tuple[float, float | None], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.spec.to_dict(),
            "tolerance": {"scale_up": self.tolerances.scale_up, "scale_down": self.tolerances.scale_down},
            "series": [{"t": t, "current": v} for t, v in self.points],
        }


def metric_series(obs: Observation) -> list[MetricSeries]:
    """Every metric of the HPA (spec order; those only seen in the status after) with its series."""
    specs: dict[str, MetricSpec] = {s.key: s for s in obs.metrics}
    tolerances: dict[str, Tolerances] = {}
    points: dict[str, list[tuple[float, float | None]]] = {key: [] for key in specs}
    for point in obs.hpa:
        for m in point.metrics:
            specs.setdefault(m.name, m.spec)
            tolerances[m.name] = m.tolerances
            points.setdefault(m.name, []).append((point.t, m.current))
    return [
        MetricSeries(spec, tolerances.get(key, Tolerances()), tuple(points[key]))
        for key, spec in specs.items()
    ]


@dataclass
class Report:
    """Everything the files show."""

    title: str
    context: dict[str, Any]  # release, namespace, target, model, transport, shape...
    expectations: Expectations
    observation: Observation
    evaluation: Evaluation
    samples: Sequence[Sample]
    phases: Sequence[Phase]
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        obs = self.observation
        return {
            "title": self.title,
            "passed": self.evaluation.passed,
            "context": self.context,
            "expectations": asdict(self.expectations),
            "checks": self.evaluation.to_dict()["checks"],
            "decisions": self.evaluation.decisions,
            "load": {
                "summary": obs.summary.to_dict(),
                "threshold_violations": list(obs.thresholds.violations),
                "stopped_at_s": obs.load_stopped,
                "peak_reached_at_s": obs.peak_reached,
                "phases": [asdict(p) for p in self.phases],
            },
            "metrics": [m.to_dict() for m in metric_series(obs)],
            "timeline": {
                "load": [s.to_dict() for s in self.samples],
                "hpa": [
                    {
                        "t": p.t,
                        "current": p.current,
                        "desired": p.desired,
                        "min": p.min_replicas,
                        "max": p.max_replicas,
                        "metrics": [m.to_dict() for m in p.metrics],
                    }
                    for p in obs.hpa
                ],
                "ready": [asdict(r) for r in obs.ready],
                "pods": [{"t": p.t, "counts": dict(p.counts)} for p in obs.pods],
                "end_s": obs.end,
            },
            "files": self.files,
        }


def _steps(points: Sequence[tuple[float, float]], end: float) -> tuple[list[float], list[float]]:
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    if xs and end > xs[-1]:
        xs.append(end)
        ys.append(ys[-1])
    return xs, ys


def plot(report: Report, path: Path) -> Path:
    """Write the PNG plot to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs = report.observation
    series = metric_series(obs)
    fig, axes = plt.subplots(
        3 + len(series), 1, sharex=True, figsize=(10, 7.5 + 2.2 * len(series)), dpi=100, squeeze=False
    )
    ax_rps, ax_lat, ax_rep, *ax_metrics = [row[0] for row in axes]
    fig.suptitle(report.title + ("  -  PASSED" if report.evaluation.passed else "  -  FAILED"), fontsize=12)
    t = [s.t for s in report.samples]

    ax_rps.plot(t, [s.rps for s in report.samples], color="tab:blue", label="requests/s")
    if any(s.failures_per_s for s in report.samples):
        ax_rps.plot(t, [s.failures_per_s for s in report.samples], color="tab:red", label="failures/s")
    users = ax_rps.twinx()
    users.step(t, [s.users for s in report.samples], where="post", color="tab:gray", alpha=0.6, label="users")
    users.set_ylabel("users")
    users.set_ylim(bottom=0)
    ax_rps.set_ylim(bottom=0)
    ax_rps.set_ylabel("requests/s")
    ax_rps.legend(loc="upper left", fontsize=8)

    lat_t = [s.t for s in report.samples if s.p95_ms is not None]
    ax_lat.plot(
        lat_t, [s.p95_ms for s in report.samples if s.p95_ms is not None], color="tab:orange", label="p95"
    )
    limit = report.context.get("p95_limit_ms")
    if limit:
        ax_lat.axhline(limit, color="tab:red", linestyle=":", linewidth=1, label=f"p95 limit {limit:g} ms")
    ax_lat.set_ylim(bottom=0)
    ax_lat.set_ylabel("p95 latency (ms)")
    ax_lat.legend(loc="upper left", fontsize=8)

    end = obs.end
    if obs.hpa:
        xs, ys = _steps([(p.t, p.desired) for p in obs.hpa], end)
        ax_rep.step(xs, ys, where="post", color="tab:purple", label="HPA desired")
    if obs.ready:
        xs, ys = _steps([(r.t, r.ready) for r in obs.ready], end)
        ax_rep.step(xs, ys, where="post", color="tab:green", linewidth=2, label="ready")
    if obs.max_replicas:
        ax_rep.axhline(obs.max_replicas, color="tab:red", linestyle=":", linewidth=1, label="maxReplicas")
    at_least = report.expectations.at_least
    ax_rep.axhline(
        at_least, color="tab:green", linestyle="--", linewidth=1, alpha=0.6, label=f"expected >= {at_least}"
    )
    ax_rep.set_ylabel("replicas")
    for ax, metric in zip(ax_metrics, series, strict=True):
        _plot_metric(ax, metric, end)
    (ax_metrics or [ax_rep])[-1].set_xlabel("seconds since the load started")
    ax_rep.set_ylim(bottom=0, top=max([obs.max_replicas or 0, report.expectations.at_least, 1]) + 1)
    ax_rep.legend(loc="upper right", fontsize=8)

    t_ref, _ = crossed_target(obs)
    every = (ax_rps, ax_lat, ax_rep, *ax_metrics)
    for i, phase in enumerate(report.phases):
        for ax in every:
            ax.axvspan(phase.start, phase.end, color="tab:blue" if i % 2 else "tab:cyan", alpha=0.07)
        ax_rps.annotate(
            phase.name, xy=((phase.start + phase.end) / 2, 1.0), xycoords=("data", "axes fraction"),
            ha="center", va="bottom", fontsize=7,
        )  # fmt: skip
    for ax in every:
        ax.axvline(obs.load_stopped, color="black", linestyle="--", linewidth=1)
        ax.axvline(t_ref, color="tab:red", linestyle="-.", linewidth=1)
        ax.grid(alpha=0.3)
    ax_rep.annotate(
        "load stopped", xy=(obs.load_stopped, 0.02), xycoords=("data", "axes fraction"), fontsize=7
    )
    ax_rep.annotate(
        "target crossed", xy=(t_ref, 0.9), xycoords=("data", "axes fraction"), fontsize=7, color="tab:red"
    )
    ax_rep.set_xlim(0, max(end, obs.load_stopped) + 1)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def _plot_metric(ax: Any, metric: MetricSeries, end: float) -> None:
    """The value the HPA computed (steps, as it holds until the next sync) against the target."""
    spec, tol = metric.spec, metric.tolerances
    unit = f" ({spec.unit})" if spec.unit else ""
    known = [(t, v) for t, v in metric.points if v is not None]
    if known:
        xs, ys = _steps(known, end)
        ax.step(xs, ys, where="post", color="tab:brown", linewidth=1.5, label=f"{spec.key}{unit}")
    ax.axhline(
        spec.target, color="tab:red", linestyle="--", linewidth=1,
        label=f"{spec.target_type} target {spec.target:g}{spec.unit if spec.unit == '%' else ''}",
    )  # fmt: skip
    ax.axhspan(
        spec.target * (1 - tol.scale_down), spec.target * (1 + tol.scale_up), color="tab:red", alpha=0.08,
        label=f"tolerance -{tol.scale_down:.0%}/+{tol.scale_up:.0%} (HPA does not act)",
    )  # fmt: skip
    if not known:
        ax.annotate(
            "the HPA reported no value for this metric", xy=(0.5, 0.5), xycoords="axes fraction",
            ha="center", fontsize=8, color="tab:red",
        )  # fmt: skip
    ax.set_ylim(bottom=0, top=max([spec.target * 1.5, *(v for _, v in known)]) * 1.1)
    ax.set_ylabel(f"{spec.source}{unit}", fontsize=8)
    ax.set_title(spec.describe(), fontsize=8, loc="left")
    ax.legend(loc="upper right", fontsize=7)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
.pass{color:#17702c;font-weight:600} .fail{color:#b00020;font-weight:600}
.skip{color:#777;font-weight:600} .banner{padding:.6rem 1rem;border-radius:6px;font-weight:600}
.banner.pass{background:#e6f4ea} .banner.fail{background:#fde7e9} img{max-width:100%} code{background:#f4f4f4}
"""


def _peak(metric: MetricSeries) -> str:
    values = [v for _, v in metric.points if v is not None]
    return f"{max(values):g} {metric.spec.unit}".strip() if values else "no value reported"


def render_html(report: Report, png: bytes) -> str:
    e = html.escape
    ev = report.evaluation
    verdict = "pass" if ev.passed else "fail"
    rows = "".join(
        f"<tr><td>{e(c.name)}</td><td class='{c.status}'>{c.status.upper()}</td><td>{e(c.reason)}</td></tr>"
        for c in ev.checks
    )
    context = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in report.context.items())
    exp = report.expectations
    expectations = (
        f"at least {exp.at_least} ready replicas within {exp.scale_out_within:g}s after the load crossed the "
        f"target; back to minReplicas within {exp.scale_in_within:g}s after the load stopped; never above "
        f"maxReplicas; thresholds held; busiest pod at most {exp.max_busiest_share:.0%} of requests after "
        "scale-out"
    )
    decisions = "".join(f"<li>{e(d)}</li>" for d in ev.decisions)
    metrics = "".join(
        f"<tr><td>{e(m.spec.key)}</td><td>{e(m.spec.source)}</td><td>{e(m.spec.api)}</td>"
        f"<td>{e(m.spec.target_type)} {m.spec.target:g} {e(m.spec.unit)}</td><td>{e(_peak(m))}</td></tr>"
        for m in metric_series(report.observation)
    )
    summary = report.observation.summary
    phases = "".join(
        f"<tr><td>{e(p.name)}</td><td>{p.start:g}s - {p.end:g}s</td><td>{p.users}</td></tr>"
        for p in report.phases
    )
    image = base64.b64encode(png).decode()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(report.title)}</title><style>{_CSS}</style></head>
<body>
<h1>{e(report.title)}</h1>
<p class="banner {verdict}">{
        "Every expectation held."
        if ev.passed
        else f"{len(ev.failures())} expectation(s) failed: " + e(", ".join(c.name for c in ev.failures()))
    }</p>
<h2>Expectations</h2>
<p>{e(expectations)}</p>
<table><tr><th>check</th><th>verdict</th><th>reason</th></tr>{rows}</table>
<h2>Timeline</h2>
<img alt="load, latency, replicas and HPA metrics against targets over time" src="data:image/png;base64,{
        image
    }">
<h2>HPA metrics</h2>
<table><tr><th>metric</th><th>type</th><th>read from</th><th>target</th><th>peak the HPA saw</th></tr>{
        metrics
    }</table>
<h2>Decisions</h2>
<ol>{decisions}</ol>
<h2>Load</h2>
<p>{summary.requests} requests, {summary.failures} failures ({summary.failure_ratio:.2%}), p95 {
        summary.p95_ms:.0f} ms,
p99 {summary.p99_ms:.0f} ms, {summary.rps:.1f} requests/s on average.</p>
<table><tr><th>phase</th><th>time</th><th>users</th></tr>{phases}</table>
<h2>Run</h2>
<table>{context}</table>
<p>Raw data: <code>report.json</code> (timeline of load samples, HPA status, ready replicas, per-pod request
counts) next to this file.</p>
</body></html>
"""


def write(report: Report, directory: Path) -> dict[str, Path]:
    """Write the PNG, ``report.json`` and ``report.html`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    png_path = plot(report, directory / PLOT_NAME)
    json_path = directory / "report.json"
    html_path = directory / "report.html"
    report.files = {**report.files, "plot": png_path.name, "json": json_path.name, "html": html_path.name}
    json_path.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    html_path.write_text(render_html(report, png_path.read_bytes()))
    return {"json": json_path, "html": html_path, "plot": png_path}
