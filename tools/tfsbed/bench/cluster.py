"""Benchmarks of the local cluster: first build per tool, start when built, reuse, stop.

Build times come from the toolchain's ``.complete`` stamps (seconds the first
build took on this machine). Start/stop are measured on a throw-away cluster
(own state dir and ports, no real node), so a running shared cluster is left alone.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from tfsbed import toolchain
from tfsbed.bench import Table

TOOLS = ("kubernetes", "etcd", "kwok", "metrics-server")
BENCH_PORT_BASE = 29400


def _build_table() -> Table:
    table = Table(
        "Local cluster: first build per tool (from source, cached afterwards)",
        ["tool", "version", "binaries", "first build (s)"],
        notes=[
            "Seconds recorded by `tfsbed.toolchain` in `<cache>/<tool>/<version>/.complete` when the tool "
            "was built; later runs reuse the cache.",
        ],
    )
    for name in TOOLS:
        tool = toolchain.TOOLS[name]
        stamp = toolchain.tool_dir(tool) / ".complete"
        try:
            seconds = f"{float(stamp.read_text().strip()):.1f}"
        except (OSError, ValueError):
            seconds = "not built"
        table.rows.append([name, tool.version, ", ".join(tool.binaries), seconds])
    return table


def _fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.median(values):.1f} (min {min(values):.1f}, max {max(values):.1f})"


def _start_stop_table(runs: int) -> Table:
    from tfsbed.cluster import spec as cspec
    from tfsbed.cluster.local import LocalCluster

    create: list[float] = []
    reuse: list[float] = []
    stop: list[float] = []
    steps: dict[str, list[float]] = {}
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="tfsctl-bench-cluster-") as tmp:
            lc = LocalCluster(
                cspec.ClusterSpec(name="tfsctl-bench", ports=cspec.Ports(BENCH_PORT_BASE), real_nodes=0),
                state_dir=Path(tmp) / "state",
                kubeconfig=Path(tmp) / "kubeconfig",
            )
            try:
                result = lc.up(timeout=300)
                create.append(result.seconds)
                for step, secs in result.steps.items():
                    steps.setdefault(step, []).append(secs)
                started = time.monotonic()
                lc.up(timeout=120)
                reuse.append(time.monotonic() - started)
            finally:
                started = time.monotonic()
                lc.down(timeout=30)
                stop.append(time.monotonic() - started)
    table = Table(
        "Local cluster: start and stop when built",
        ["operation", "seconds"],
        notes=[
            f"{runs} run(s), median (min, max) where more than one; kwok nodes and metrics.k8s.io included; "
            "measured with `python -m tfsbed.bench --only cluster`.",
            "Without the real node (`real_nodes=0`); area `realnode` times `up` with it.",
        ],
    )
    table.rows.append(
        ["`up` on a fresh state dir (control plane + 5 kwok nodes Ready + metrics API)", _fmt(create)]
    )
    for step, values in steps.items():
        table.rows.append([f"  of which {step}", _fmt(values)])
    table.rows.append(["`up` when already running (health check, reuse)", _fmt(reuse)])
    table.rows.append(["`down` (delete cluster and state)", _fmt(stop)])
    return table


def collect(quick: bool) -> list[Table]:
    return [_build_table(), _start_stop_table(1 if quick else 3)]
