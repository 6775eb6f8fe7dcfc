"""``tfsctl canary`` end to end on the local cluster, with generated models (``tfsbed.canary_models``).

One release for the module (CPU is scarce): the local preset serving ``clf`` (stable -> 1)
on 2 pods of the real node, models from a hostPath PV, pods started with
``--max_num_load_retries=0`` so a version that cannot load ends in END with its error at
once (the real server does the same after its retries). The tests run in file order; each
leaves stable on a known version and the fleet consistent:

- a canary with shifted outputs, one slower beyond the latency ratio and one that fails to
  load are each reverted, naming the failed check; stable stays 1 and serves throughout;
- a canary computing the same function is promoted (stable -> 2) with zero failed requests
  to stable through the LoadBalancer, and writes its report;
- a pod deleted during the bake fails the health check, and the fleet ends consistent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.cluster_helpers import Cluster, wait_for
from support.release_cluster import (
    LoadBalancerProbe,
    load_balancer_ip,
    models_pv,
    module_namespace,
    tfsctl,
    tfsctl_background,
)
from tfsbed.canary_models import BROKEN, MODEL, SAME, SHIFTED, SLOW, canary_models_dir
from tfsctl import kubestate, paths
from tfsctl.serving.client import Endpoint, ServingClient
from tfsctl.serving.config import ServerConfig

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.usefixtures("real_node", "requires_loadbalancer"),
]

RELEASE = "tfs"
FULL = "tfs-tensorflow-serving"
SELECTOR = kubestate.server_selector(RELEASE)
SPEC = {
    "bakeSeconds": 6,
    "intervalSeconds": 1,
    "maxRequestRate": 40,
    "loadTimeoutSeconds": 120,
    "inputs": {"count": 4, "batchSize": 2},
    # p50 is robust on a shared 2-core machine; p99 of a few dozen samples is not
    "latency": {"maxP50Ratio": 3.0, "maxP99Ratio": None, "minSamples": 10},
}
BODY = json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]]}).encode()


@dataclass
class Release:
    cluster: Cluster
    namespace: str
    core: Any
    spec_file: Path

    @property
    def flags(self) -> list[str]:
        return ["--release", RELEASE, "-n", self.namespace, "--timeout", "180"]

    def ready_pods(self) -> list[Any]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=SELECTOR).items
        return [p for p in pods if kubestate.is_ready(p) and not kubestate.is_terminating(p)]

    def config(self) -> ServerConfig:
        cm = self.core.read_namespaced_config_map(f"{FULL}-config", self.namespace)
        return ServerConfig.parse(cm.data["model_config.pbtxt"])

    def pod_labels(self) -> dict[str, dict[str, int]]:
        """What each ready pod itself resolves stable and canary to (GetModelMetadata by label)."""
        out = {}
        for pod in self.ready_pods():
            with ServingClient(Endpoint(pod.status.pod_ip), timeout=10) as c:
                seen = {}
                for label in ("stable", "canary"):
                    try:
                        seen[label] = c.label_version(MODEL, label)
                    except Exception:
                        continue
                out[pod.metadata.name] = seen
        return out

    def pod_available(self) -> dict[str, list[int]]:
        out = {}
        for pod in self.ready_pods():
            with ServingClient(Endpoint(pod.status.pod_ip), timeout=10) as c:
                out[pod.metadata.name] = sorted(
                    s.version for s in c.model_status(MODEL) if s.state == "AVAILABLE"
                )
        return out

    def canary(self, version: int, *extra: str) -> tuple[int, dict[str, Any], str]:
        done = tfsctl(
            self.cluster,
            "canary",
            MODEL,
            str(version),
            *self.flags,
            "--spec",
            str(self.spec_file),
            "-o",
            "json",
            *extra,
            timeout=400,
        )
        return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


def _values(tmp: Path) -> Path:
    values = yaml.safe_load((paths.VALUES_DIR / "local.yaml").read_text())
    values["models"] = {
        MODEL: {"versionPolicy": {"specific": {"versions": [1]}}, "versionLabels": {"stable": 1}}
    }
    values["autoscaling"] = {"enabled": False}
    values["replicaCount"] = 2
    values.setdefault("server", {})["extraArgs"] = ["--max_num_load_retries=0"]
    path = tmp / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.fixture(scope="module")
def release(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    models = canary_models_dir()
    tmp = tmp_path_factory.mktemp("canary")
    spec_file = tmp / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    with module_namespace(cluster, "e2e-canary") as ns, models_pv(cluster, ns, f"{FULL}-models", models):
        done = tfsctl(
            cluster,
            "deploy",
            "--release",
            RELEASE,
            "-n",
            ns,
            "--timeout",
            "300",
            "-f",
            str(_values(tmp)),
            timeout=400,
        )
        assert done.returncode == 0, done.stderr
        rel = Release(cluster, ns, client.CoreV1Api(cluster.api), spec_file)
        wait_for(lambda: len(rel.ready_pods()) == 2, timeout=180, what="2 ready pods", interval=2)
        yield rel


@pytest.fixture
def probe(release: Release) -> Iterator[LoadBalancerProbe]:
    ip = load_balancer_ip(release.cluster, release.namespace, FULL)
    p = LoadBalancerProbe(ip, model=MODEL, label="stable")
    p.body = BODY
    p.start()
    yield p
    p.stop()


def _assert_reverted(
    release: Release, code: int, report: dict[str, Any], stderr: str, check: str, stable: int
) -> None:
    assert code == 7, stderr
    assert report["decision"] == "reverted" and not report["promoted"]
    assert any(name.startswith(check) for name in report["failed_checks"]), report["failed_checks"]
    assert f"failed check(s) {check}" in stderr
    assert report["stable"] == {"before": stable, "after": stable}
    labels = release.pod_labels()
    assert len(labels) == 2 and all(v.get("stable") == stable for v in labels.values()), labels
    assert all(v.get("canary") == stable for v in labels.values()), labels
    assert all(versions == [stable] for versions in release.pod_available().values())
    assert set(release.config().models[MODEL].policy.versions) == {stable}


def test_shifted_outputs_are_reverted_by_the_output_checks(
    release: Release, probe: LoadBalancerProbe
) -> None:
    code, report, stderr = release.canary(SHIFTED)
    probe.stop()
    _assert_reverted(release, code, report, stderr, "outputs.", stable=1)
    assert report["outputs"]["max_abs_diff"] > 0.1
    assert probe.ok > 0 and probe.failed == []


def test_a_slower_canary_is_reverted_by_the_latency_ratio(release: Release, probe: LoadBalancerProbe) -> None:
    code, report, stderr = release.canary(SLOW)
    probe.stop()
    _assert_reverted(release, code, report, stderr, "latency.maxP50Ratio", stable=1)
    # the outputs agreed: only latency failed it
    assert report["failed_checks"] == ["latency.maxP50Ratio"], report["checks"]
    assert report["latency"]["canary"]["p50_ms"] > 3 * report["latency"]["stable"]["p50_ms"]
    assert probe.failed == []


def test_a_version_that_fails_to_load_is_reverted_by_the_load_check(
    release: Release, probe: LoadBalancerProbe
) -> None:
    code, report, stderr = release.canary(BROKEN)
    probe.stop()
    _assert_reverted(release, code, report, stderr, "load", stable=1)
    assert f"version {BROKEN} failed to load" in report["reason"]
    assert probe.failed == []


def test_the_same_function_is_promoted_with_zero_failed_requests_to_stable(
    release: Release, probe: LoadBalancerProbe, tmp_path: Path
) -> None:
    code, report, stderr = release.canary(SAME, "--report", str(tmp_path))
    time.sleep(1)
    probe.stop()
    assert code == 0, stderr
    assert report["decision"] == "promoted" and report["stable"] == {"before": 1, "after": SAME}
    assert report["failed_checks"] == [] and {c["name"] for c in report["checks"]} >= {
        "health",
        "outputs.maxAbsDiff",
        "outputs.topK",
        "latency.maxP50Ratio",
        "errors.maxCanaryErrorRate",
    }
    labels = release.pod_labels()
    assert all(v == {"stable": SAME, "canary": SAME} for v in labels.values()), labels
    assert all(versions == [SAME] for versions in release.pod_available().values())
    assert probe.ok > 0 and probe.failed == [], probe.failed[:3]
    # the analysis kept under its rate (40/s, both labels), and wrote its report
    assert report["request_rate"] <= 40 * 1.1
    assert (tmp_path / "canary.html").read_text().count("<svg") == 2
    assert json.loads((tmp_path / "canary.json").read_text())["decision"] == "promoted"
    history = tfsctl(release.cluster, "history", *release.flags[:4], "--model", MODEL, "-o", "json")
    moves = [
        (r["label"], r["from_version"], r["to_version"], r["action"]) for r in json.loads(history.stdout)
    ]
    assert moves[-2:] == [("canary", 1, SAME, "promote"), ("stable", 1, SAME, "promote")]


def test_a_pod_deleted_during_the_bake_fails_health_and_the_fleet_ends_consistent(
    release: Release, tmp_path: Path
) -> None:
    stable = release.config().models[MODEL].labels["stable"]
    version = 1 if stable == SAME else SAME  # the same function as stable: only the lost pod can fail it
    long_bake = tmp_path / "spec.yaml"
    # the pod's loss skews both labels' latency for a while; this test is about health alone
    lenient = {**SPEC["latency"], "maxP50Ratio": None}
    long_bake.write_text(yaml.safe_dump({**SPEC, "bakeSeconds": 40, "latency": lenient}))
    proc = tfsctl_background(
        release.cluster,
        "canary",
        MODEL,
        str(version),
        *release.flags,
        "--spec",
        str(long_bake),
        "-o",
        "json",
        log=tmp_path / "canary.log",
    )

    def canary_recorded() -> bool:
        history = tfsctl(release.cluster, "history", *release.flags[:4], "--model", MODEL, "-o", "json")
        records = json.loads(history.stdout or "[]")
        return bool(records) and (records[-1]["label"], records[-1]["to_version"]) == ("canary", version)

    try:
        # the canary move is recorded once it is verified on every pod: the bake has started
        wait_for(canary_recorded, timeout=120, what=f"canary -> {version} recorded", interval=1)
        victim = release.ready_pods()[0].metadata.name
        release.core.delete_namespaced_pod(victim, release.namespace, grace_period_seconds=0)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = (tmp_path / "canary.log").read_text()
    assert proc.returncode == 7, stderr
    report = json.loads(out)
    assert report["failed_checks"] == ["health"], report["checks"]
    health = next(c for c in report["checks"] if c["name"] == "health")
    assert victim in health["detail"]
    assert report["stable"]["after"] == stable
    done = wait_for(
        lambda: (
            (r := tfsctl(release.cluster, "status", *release.flags, "-o", "json")).returncode == 0
            and json.loads(r.stdout)["consistent"]
            and len(json.loads(r.stdout)["replicas"]) == 2
            and r
        ),
        timeout=180,
        what="a consistent fleet of 2 after the pod was replaced",
        interval=3,
    )
    status = json.loads(done.stdout)
    assert all(
        r["models"][MODEL]["labels"] == {"stable": stable, "canary": stable} for r in status["replicas"]
    )
    assert set(release.config().models[MODEL].policy.versions) == {stable}
