"""The canary report: ``canary.json`` and a self-contained ``canary.html`` (pure rendering).

The HTML draws its plots as inline SVG (no plotting library, so the in-cluster Job's image
needs nothing extra): the largest output difference of every paired input against the
absolute tolerance, and the latency distributions of both labels; then every check with its
measured value and threshold, and the label moves that were made.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

WIDTH, HEIGHT, PAD = 640, 220, 40
COLOURS = {"stable": "#1f77b4", "canary": "#ff7f0e"}


def write(data: dict[str, Any], directory: Path) -> dict[str, Path]:
    """``canary.json`` and ``canary.html`` under ``directory`` (created); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "canary.json", "html": directory / "canary.html"}
    paths["json"].write_text(json.dumps(data, indent=2, default=str) + "\n")
    paths["html"].write_text(render_html(data))
    return paths


def _axes(title: str, x_label: str, y_label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" role="img">',
        f"<title>{html.escape(title)}</title>",
        f'<text x="{WIDTH / 2}" y="14" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 10}" y2="{HEIGHT - PAD}" stroke="#333"/>',
        f'<line x1="{PAD}" y1="{PAD - 15}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11">'
        f"{html.escape(x_label)}</text>",
        f'<text x="10" y="{HEIGHT / 2}" font-size="11" transform="rotate(-90 10 {HEIGHT / 2})" '
        f'text-anchor="middle">{html.escape(y_label)}</text>',
    ]


def differences_svg(per_input: Sequence[float], tolerance: float | None) -> str:
    """Bars: the largest absolute output difference of each paired input; a line at the tolerance."""
    parts = _axes("largest |canary - stable| per paired input", "paired input", "max abs difference")
    top = max([*per_input, tolerance or 0.0, 1e-12])
    n = max(len(per_input), 1)
    bar = (WIDTH - PAD - 10) / n
    for i, value in enumerate(per_input):
        h = (HEIGHT - 2 * PAD + 15) * value / top
        parts.append(
            f'<rect x="{PAD + i * bar:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{max(bar - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{COLOURS["canary"]}"/>'
        )
    if tolerance:
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD + 15) * tolerance / top
        parts.append(
            f'<line x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" stroke="red" '
            'stroke-dasharray="4"/>'
        )
        parts.append(
            f'<text x="{WIDTH - 12}" y="{y - 3:.1f}" text-anchor="end" font-size="10" fill="red">'
            f"absTolerance {tolerance:g}</text>"
        )
    parts.append(f'<text x="{PAD + 4}" y="{PAD - 18}" font-size="10">max {top:.3g}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def latency_svg(stable: Sequence[float], canary: Sequence[float], bins: int = 30) -> str:
    """Histograms (as step lines) of both labels' latencies in milliseconds."""
    parts = _axes("latency distribution by label", "latency (ms)", "requests")
    values = [v * 1000 for v in (*stable, *canary)]
    if not values:
        parts.append("</svg>")
        return "\n".join(parts)
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    counts = {}
    for name, series in (("stable", stable), ("canary", canary)):
        c = [0] * bins
        for v in series:
            c[min(bins - 1, int((v * 1000 - lo) / span * bins))] += 1
        counts[name] = c
    peak = max(max(c) for c in counts.values()) or 1
    width = (WIDTH - PAD - 10) / bins
    for name, c in counts.items():
        points = []
        for i, count in enumerate(c):
            y = HEIGHT - PAD - (HEIGHT - 2 * PAD + 15) * count / peak
            points += [f"{PAD + i * width:.1f},{y:.1f}", f"{PAD + (i + 1) * width:.1f},{y:.1f}"]
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{COLOURS[name]}" stroke-width="2"/>'
        )
    for i, name in enumerate(("stable", "canary")):
        parts.append(
            f'<text x="{WIDTH - 80}" y="{30 + 14 * i}" font-size="11" fill="{COLOURS[name]}">{name}</text>'
        )
    parts.append(f'<text x="{PAD}" y="{HEIGHT - PAD + 12}" font-size="10">{lo:.2f}</text>')
    parts.append(
        f'<text x="{WIDTH - 10}" y="{HEIGHT - PAD + 12}" font-size="10" text-anchor="end">{hi:.2f}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def render_html(data: dict[str, Any]) -> str:
    e = html.escape
    decision = data.get("decision", "?")
    colour = "#2a7" if data.get("promoted") else "#c33"
    rows = "\n".join(
        f"<tr><td>{e(c['name'])}</td><td style='color:{'#2a7' if c['passed'] else '#c33'}'>"
        f"{'ok' if c['passed'] else 'FAILED'}</td><td>{_cell(c['value'])}</td><td>{e(c['comparison'])}</td>"
        f"<td>{_cell(c['threshold'])}</td><td>{e(c['detail'])}</td></tr>"
        for c in data.get("checks", [])
    )
    phases = "\n".join(
        f"<li><b>{e(p['name'])}</b>: {e(p['description'])} ({p['seconds']:.1f}s)"
        + ("<ul>" + "".join(f"<li>{e(s)}</li>" for s in p["steps"]) + "</ul>" if p["steps"] else "")
        + "</li>"
        for p in data.get("phases", [])
    )
    outputs = data.get("outputs") or {}
    spec = data.get("spec") or {}
    tolerance = (spec.get("outputs") or {}).get("absTolerance")
    lat = data.get("latency") or {}
    plots = differences_svg(outputs.get("per_input_max_abs_diff", []), tolerance) + latency_svg(
        (lat.get("stable") or {}).get("seconds", []), (lat.get("canary") or {}).get("seconds", [])
    )
    summary = "".join(
        f"<tr><td>{e(label)}</td><td>{_cell(v.get('count'))}</td><td>{_cell(v.get('p50_ms'))}</td>"
        f"<td>{_cell(v.get('p99_ms'))}</td><td>{_cell(v.get('error_rate'))}</td></tr>"
        for label, v in lat.items()
    )
    model, version = e(str(data.get("model"))), e(str(data.get("version")))
    stable, canary = data["stable"], data["canary"]
    moves = (
        f"stable {_cell(stable['before'])} &rarr; {_cell(stable['after'])}, "
        f"canary {_cell(canary['before'])} &rarr; {_cell(canary['after'])}"
    )
    load = (
        f"{data.get('requests_sent', 0)} requests over {data.get('bake_seconds', 0):.1f}s "
        f"({data.get('request_rate', 0):.2f}/s) to {len(data.get('replicas', []))} replica(s)"
    )
    head = "<tr><th>check</th><th>result</th><th>value</th><th></th><th>threshold</th><th>detail</th></tr>"
    lat_head = "<tr><th>label</th><th>requests</th><th>p50 ms</th><th>p99 ms</th><th>error rate</th></tr>"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>canary {model} {version}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}td,th{{border:1px solid #ccc;padding:3px 6px}}
table{{border-collapse:collapse;margin:1em 0}}</style></head><body>
<h1>canary {model} version {version}: <span style="color:{colour}">{e(decision)}</span></h1>
<p>{e(str(data.get("target")))}; {moves}.</p>
<p>{e(str(data.get("reason")))}</p>
<p>Inputs: {e(str(data.get("inputs")))}; {load}.</p>
<h2>Checks</h2>
<table>{head}
{rows}</table>
<h2>Outputs and latency</h2>
{plots}
<table>{lat_head}{summary}</table>
<h2>Label moves</h2><ul>{phases}</ul>
</body></html>
"""
