"""verify-autoscaling on the local cluster: the local preset (CPU HPA, LoadBalancer, real node).

The server pods are containers of the drop-in ``tfsctl serve`` image whose CPU the real
kubelet reports to metrics-server, so the HPA reacts to the load itself. Runs are kept
short: a minute of light load, the preset's short HPA behavior windows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cluster_helpers import Cluster, render
from support.cluster_presets import create_prerequisites, delete_prerequisites
from support.load_servers import tfsctl
from tfsctl import paths

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.usefixtures("real_node", "requires_loadbalancer"),
]

RELEASE = "tfs"
LOCAL = paths.VALUES_DIR / "local.yaml"


def install(cluster: Cluster, namespace: str, tmp_path: Path, overrides: dict[str, object]) -> list[str]:
    extra = tmp_path / "overrides.yaml"
    extra.write_text(json.dumps(overrides))
    docs = render(paths.CHART_DIR, RELEASE, namespace, [LOCAL, extra])
    pvs = create_prerequisites(cluster, namespace, docs)
    cluster.helm(
        "upgrade", "--install", RELEASE, str(paths.CHART_DIR), "-n", namespace,
        "-f", str(LOCAL), "-f", str(extra),
        "--wait", "--timeout", "5m", timeout=360,
    )  # fmt: skip
    return pvs


@pytest.fixture()
def release(
    cluster: Cluster, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:

    overrides = {"server": {"monitoring": {"enabled": True}}, **getattr(request, "param", {})}
    pvs = install(cluster, namespace, tmp_path, overrides)
    try:
        yield namespace
    finally:
        cluster.helm(
            "uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "2m", check=False, timeout=180
        )
        delete_prerequisites(cluster, pvs)


def verify(cluster: Cluster, namespace: str, report: Path, *extra: str) -> tuple[int, dict, str]:
    done = tfsctl(
        "verify-autoscaling", "--release", RELEASE, "--namespace", namespace, "--report", str(report),
        "--output", "json", "--shape", "step", "--shape-params", "steps=2",
        "--users", "8", "--user-rps", "12", "--reconnect-every", "10",
        "--p95-ms", "3000", "--p99-ms", "6000", *extra,
        timeout=900, env={"KUBECONFIG": str(cluster.kubeconfig)},
    )  # fmt: skip
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"no JSON report (exit {done.returncode}): {done.stderr[-3000:]}") from None
    return done.returncode, data, done.stderr


def test_passes_when_the_hpa_scales_out_and_back_in(cluster: Cluster, release: str, tmp_path: Path) -> None:
    code, data, stderr = verify(
        # 90 s: the second pod is ready about 45 s after the load crosses the target, and the spread
        # over the pods is judged on the requests after that
        cluster, release, tmp_path / "report", "--duration", "90s", "--expect-max-replicas-at-least", "2",
        "--scale-out-within", "90s", "--scale-in-within", "180s",
    )  # fmt: skip
    checks = {c["name"]: c for c in data["checks"]}
    assert code == 0, f"{stderr[-1500:]}\n" + "\n".join(
        f"{n}: {c['status']} {c['reason']}" for n, c in checks.items()
    )
    assert checks["scale-out"]["status"] == "pass"
    assert checks["scale-in"]["status"] == "pass"
    assert checks["spread"]["status"] == "pass", checks["spread"]["reason"]
    assert max(p["ready"] for p in data["timeline"]["ready"]) >= 2
    assert data["timeline"]["ready"][-1]["ready"] == 1
    assert data["load"]["summary"]["requests"] > 100
    for name in ("report.json", "report.html", "autoscaling.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0


@pytest.mark.parametrize("release", [{"autoscaling": {"maxReplicas": 1}}], indirect=True)
def test_fails_naming_max_replicas_when_the_hpa_cannot_scale(
    cluster: Cluster, release: str, tmp_path: Path
) -> None:
    code, data, stderr = verify(
        cluster, release, tmp_path / "report", "--duration", "30s", "--expect-max-replicas-at-least", "2",
        "--scale-out-within", "60s", "--scale-in-within", "60s",
    )  # fmt: skip
    assert code == 7, stderr[-2000:]
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["scale-out"]["status"] == "fail"
    assert "the HPA's maxReplicas is 1, so it cannot scale to 2" in checks["scale-out"]["reason"]
    assert "tfsctl: error: autoscaling not verified: scale-out: never reached 2 ready replicas" in stderr
    assert data["passed"] is False
    assert os.path.getsize(tmp_path / "report" / "report.html") > 0
