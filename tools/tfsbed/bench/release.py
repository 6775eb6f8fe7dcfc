"""Release benchmark: time from ``promote`` to every replica serving the new version,
next to a rolling restart of the same servers, with failed probe requests during each.

Runs in endpoint mode against local ``tfsctl serve`` processes sharing one model
config file (no cluster needed); the table says so.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tfsbed.bench import Table


def _support() -> object:
    from tfsbed.serve import fleet

    return fleet


def _promote_seconds(fleet_mod: object, config: Path, servers: list, version: int) -> tuple[float, int, int]:
    from tfsctl.release.ops import Target, promote
    from tfsctl.release.promote import PromotionRequest
    from tfsctl.serving.client import ServingClient

    probe = fleet_mod.Probe(servers)  # type: ignore[attr-defined]
    probe.start()
    t0 = time.monotonic()
    target = Target(model_config=config, endpoints=fleet_mod.endpoints_flag(servers), timeout=300)  # type: ignore[attr-defined]
    promote(target, PromotionRequest("fashion", "stable", version, timeout=300))
    for s in servers:  # promote verified already; confirm independently
        with ServingClient(s.endpoint, timeout=5) as c:
            assert c.label_version("fashion", "stable") == version
    elapsed = time.monotonic() - t0
    time.sleep(0.5)
    probe.stop()
    return elapsed, probe.ok, len(probe.failed)


def _rolling_restart_seconds(
    fleet_mod: object, config: Path, servers: list, final: str
) -> tuple[float, int, int]:
    """The alternative: write the final config, restart servers one by one, wait for each."""
    from tfsctl.release.store import write_atomic

    probe = fleet_mod.Probe(servers)  # type: ignore[attr-defined]
    probe.start()
    t0 = time.monotonic()
    write_atomic(config, final)
    for s in servers:
        url = f"http://127.0.0.1:{s.rest_port}/v1/models/fashion/labels/stable:predict"
        probe.skip.add(url)  # a real LB would drain it first; we count only requests it would send
        s.stop()
        s.start()
        s.wait_available("fashion")
        probe.skip.discard(url)
    elapsed = time.monotonic() - t0
    time.sleep(0.5)
    probe.stop()
    return elapsed, probe.ok, len(probe.failed)


def collect(quick: bool) -> list[Table]:
    from tfsctl.models.example import generate

    fleet_mod = _support()
    counts = (1, 3) if quick else (1, 3, 10)
    table = Table(
        "Label promotion vs rolling restart (endpoint mode, local tfsctl serve processes)",
        ["replicas", "method", "seconds to all serving new version", "probe ok", "probe failed"],
        notes=[
            "endpoint mode: N `tfsctl serve` processes on loopback sharing one model config file "
            "(not the Kubernetes cluster); promote = tfsctl.release.ops.promote "
            "(load, wait, move label, retire)",
            "rolling restart: write the final config, then stop/start each server and wait until AVAILABLE; "
            "the probe skips the server being restarted, as a draining load balancer would",
            "probe: REST predict on /v1/models/fashion/labels/stable round-robin over all servers",
            "command: python -m tfsbed.bench --only release" + (" --quick" if quick else ""),
        ],
    )
    with tempfile.TemporaryDirectory(prefix="tfsctl-bench-release-") as tmp:
        root = Path(tmp)
        generate(root / "models", "fashion", versions=(1, 2), warmup=False)
        for n in counts:
            config = root / f"models-{n}.config"
            config.write_text(
                fleet_mod.model_config_text(root / "models", (1,), {"stable": 1})  # type: ignore[attr-defined]
            )
            with fleet_mod.fleet(config, n) as servers:  # type: ignore[attr-defined]
                secs, ok, failed = _promote_seconds(fleet_mod, config, servers, 2)
                table.rows.append([str(n), "tfsctl promote", f"{secs:.1f}", str(ok), str(failed)])
                # back to stable -> 1 (untimed), then the same move by restarting servers
                _promote_seconds(fleet_mod, config, servers, 1)
                final = fleet_mod.model_config_text(root / "models", (2,), {"stable": 2})  # type: ignore[attr-defined]
                secs, ok, failed = _rolling_restart_seconds(fleet_mod, config, servers, final)
                table.rows.append([str(n), "rolling restart", f"{secs:.1f}", str(ok), str(failed)])
    return [table]
