"""Benchmarks: each area module exposes ``collect(quick: bool) -> list[Table]``.

``python -m tfsbed.bench --out reports/bench.md`` runs them all (or ``--only
serving,release``) and writes one Markdown file of tables, each with the
command that produced it, so quoted figures can be traced and re-measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# area name -> module; each module has collect(quick: bool) -> list[Table]
AREAS: dict[str, str] = {
    "cli": "tfsbed.bench.cli",
    "serving": "tfsbed.bench.serving",
    "cluster": "tfsbed.bench.cluster",
    "release": "tfsbed.bench.release",
    "load": "tfsbed.bench.load",
    "canary": "tfsbed.bench.canary",
    "realnode": "tfsbed.bench.realnode",
    "autoscaling": "tfsbed.bench.autoscaling",
}


@dataclass
class Table:
    """One result table: a title, column names, rows of cells and notes."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in self.rows]
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"
