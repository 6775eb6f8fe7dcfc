"""Canary benchmark: time from ``tfsctl canary`` to its decision for 1, 3 and 10 replicas with a
30-second bake, and the extra load the analysis puts on the service.

Endpoint mode against local ``tfsctl serve`` processes sharing one model config file (no
cluster), with the canary e2e tests' generated classifier (version 2 computes the same
function as 1, so every run promotes). Extra load = the analysis's own requests per second
(against its ``maxRequestRate`` cap) and the servers' CPU seconds per second during the run,
next to the same servers idle for as long.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from tfsbed.bench import Table

RATE = 20.0


def _support() -> tuple[Any, Any]:
    from tfsbed import canary_models
    from tfsbed.serve import fleet

    return canary_models, fleet


def _cpu_seconds(servers: list[Any]) -> float:
    import psutil

    total = 0.0
    for s in servers:
        try:
            times = psutil.Process(s.proc.pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def phase(result: Any, name: str) -> float:
    return sum(p.seconds for p in result.phases if p.name == name)


def _run(fleet_mod: Any, config: Path, servers: list[Any], bake: float) -> tuple[Any, float]:
    from tfsctl.canary import spec
    from tfsctl.canary.run import CanaryRequest, canary
    from tfsctl.release.ops import Target

    effective = spec.parse(
        {
            "bakeSeconds": bake,
            "maxRequestRate": RATE,
            "latency": {"maxP99Ratio": None},
            "inputs": {"count": 4},
        }
    )
    target = Target(model_config=config, endpoints=fleet_mod.endpoints_flag(servers), timeout=300)
    started = time.monotonic()
    result = canary(target, CanaryRequest("clf", 2, effective, timeout=300))
    return result, time.monotonic() - started


def collect(quick: bool) -> list[Table]:
    models_mod, fleet_mod = _support()
    counts = (1, 3) if quick else (1, 3, 10)
    bake = 10.0 if quick else 30.0
    base = models_mod.canary_models_dir()
    table = Table(
        f"Canary to decision ({bake:.0f}-second bake, endpoint mode, local tfsctl serve processes)",
        [
            "replicas",
            "decision",
            "seconds to decision",
            "load + canary label s",
            "bake s",
            "promote s",
            "paired inputs",
            "analysis requests/s",
            "server CPU s/s during canary",
            "server CPU s/s idle",
        ],
        notes=[
            "each run: load version 2 under canary on every replica (two-phase), bake, promote "
            "stable 1 -> 2; seconds to decision = the whole tfsctl.canary.run.canary call, "
            "the wait for a converged fleet included",
            f"analysis requests/s: REST predicts to stable and canary together, capped by "
            f"maxRequestRate {RATE:g} for the whole service whatever the replica count",
            "server CPU: user+system seconds of all tfsctl serve processes per wall second (psutil), "
            "during the canary call and during a wait with no traffic before it (as long as the bake, "
            "at most 10 s)",
            "command: python -m tfsbed.bench --only canary" + (" --quick" if quick else ""),
        ],
    )
    with tempfile.TemporaryDirectory(prefix="tfsctl-bench-canary-") as tmp:
        root = Path(tmp)
        for n in counts:
            config = root / f"models-{n}.config"
            config.write_text(fleet_mod.model_config_text(base, (1,), {"stable": 1}, name="clf"))
            with fleet_mod.fleet(config, n, model="clf") as servers:
                idle_cpu = _cpu_seconds(servers)
                time.sleep(min(bake, 10.0))
                idle_rate = (_cpu_seconds(servers) - idle_cpu) / min(bake, 10.0)
                cpu0 = _cpu_seconds(servers)
                result, seconds = _run(fleet_mod, config, servers, bake)
                busy_rate = (_cpu_seconds(servers) - cpu0) / seconds
                table.rows.append(
                    [
                        str(n),
                        result.decision,
                        f"{seconds:.1f}",
                        f"{phase(result, 'canary'):.1f}",
                        f"{result.bake_seconds:.1f}",
                        f"{phase(result, 'promote'):.1f}",
                        str(len(result.pairs)),
                        f"{result.request_rate:.1f}",
                        f"{busy_rate:.2f}",
                        f"{idle_rate:.2f}",
                    ]
                )
    return [table]
