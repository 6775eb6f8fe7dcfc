"""Kubernetes mode end to end on the local cluster: deploy, scale, promote/rollback, status, locks, HPA.

One release for the whole module (CPU is scarce): the local preset with a fixed
fleet (``autoscaling.enabled=false``, 2 replicas, then scaled to 3) on the real
node, models from a hostPath PV holding fashion versions 1, 2 and 3. The tests
run in file order and each leaves the fleet consistent for the next; the states
are written next to each test.
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

from support.cluster_helpers import Cluster, RealNode, wait_for
from support.release_cluster import (
    LoadBalancerProbe,
    load_balancer_ip,
    models_pv,
    module_namespace,
    release_models_dir,
    tfsctl,
    tfsctl_background,
)
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
PRESET = paths.VALUES_DIR / "local.yaml"
LIVE = {"START", "LOADING", "AVAILABLE"}


@dataclass
class Release:
    cluster: Cluster
    namespace: str
    core: Any
    node: str  # the real node the preset's pods run on

    @property
    def flags(self) -> list[str]:
        return ["--release", RELEASE, "-n", self.namespace, "--timeout", "180"]

    def ready_pods(self) -> list[Any]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=SELECTOR).items
        return [p for p in pods if kubestate.is_ready(p) and not kubestate.is_terminating(p)]

    def all_pods(self) -> list[Any]:
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=SELECTOR).items)

    def config(self) -> ServerConfig:
        cm = self.core.read_namespaced_config_map(f"{FULL}-config", self.namespace)
        return ServerConfig.parse(cm.data["model_config.pbtxt"])

    def pod_view(self, pod: Any) -> tuple[dict[int, str], dict[str, int]]:
        """What the pod itself reports: version -> state, label -> version."""
        labels = list(self.config().models["fashion"].labels)
        with ServingClient(Endpoint(pod.status.pod_ip), timeout=10) as c:
            versions = {s.version: s.state for s in c.model_status("fashion")}
            resolved = {label: c.label_version("fashion", label) for label in labels}
        return versions, resolved

    def wait_ready(self, count: int) -> list[Any]:
        return wait_for(
            lambda: len(self.ready_pods()) == count and len(self.all_pods()) == count and self.ready_pods(),
            timeout=180,
            what=f"{count} ready pods of {self.namespace}/{RELEASE}",
            interval=2,
        )

    def assert_fleet_serves_the_config(self) -> None:
        """Every ready pod loads exactly the config's versions and resolves every label as it says."""
        fashion = self.config().models["fashion"]
        want = set(fashion.policy.versions)
        for label, version in fashion.labels.items():
            assert version in want, f"the ConfigMap labels {label} -> {version}, not in the policy {want}"
        for pod in self.ready_pods():
            versions, labels = self.pod_view(pod)
            live = {v for v, s in versions.items() if s in LIVE}
            assert live == want and all(versions[v] == "AVAILABLE" for v in want), (
                pod.metadata.name,
                versions,
            )
            assert labels == dict(fashion.labels), (pod.metadata.name, labels)


@pytest.fixture(scope="module")
def release(cluster: Cluster, real_node: RealNode) -> Iterator[Release]:
    models = release_models_dir()
    with module_namespace(cluster, "e2e-release-k8s") as ns, models_pv(cluster, ns, f"{FULL}-models", models):
        rel = Release(cluster, ns, client.CoreV1Api(cluster.api), real_node.name)
        done = tfsctl(
            cluster,
            "deploy",
            *rel.flags,
            "-f",
            str(PRESET),
            "--set",
            "autoscaling.enabled=false",
            "--set",
            "replicaCount=2",
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert f"{ns}/{RELEASE}: installed, revision 1" in done.stdout
        yield rel


def test_deploy_installs_ready_and_dry_run_shows_a_diff_without_changing_anything(release: Release) -> None:
    assert len(release.wait_ready(2)) == 2
    dry = tfsctl(
        release.cluster,
        "deploy",
        *release.flags,
        "-f",
        str(PRESET),
        "--set",
        "autoscaling.enabled=false",
        "--set",
        "replicaCount=3",
        "--dry-run",
    )
    assert dry.returncode == 0, dry.stderr
    assert "-  replicas: 2" in dry.stdout and "+  replicas: 3" in dry.stdout
    assert f"~ Deployment/{FULL}" in dry.stdout
    assert "would upgrade" in dry.stdout
    history = release.cluster.helm("history", RELEASE, "-n", release.namespace, "-o", "json")
    assert len(json.loads(history.stdout)) == 1, "a dry run must not create a revision"


def test_scale_sets_the_replica_count_through_the_release_values(release: Release) -> None:
    done = tfsctl(release.cluster, "scale", *release.flags, "--replicas", "3")
    assert done.returncode == 0, done.stderr
    assert "replicaCount 2 -> 3" in done.stdout
    # --wait (the default) returns once every pod is Ready and serving the config: no waiting here
    assert len(release.ready_pods()) == len(release.all_pods()) == 3
    values = release.cluster.helm("get", "values", RELEASE, "-n", release.namespace, "-o", "json")
    assert json.loads(values.stdout)["replicaCount"] == 3


def test_status_reports_what_each_replica_itself_serves(release: Release) -> None:
    done = tfsctl(release.cluster, "status", *release.flags, "-o", "json")
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["consistent"] is True
    pods = {p.metadata.name: p for p in release.ready_pods()}
    assert sorted(r["name"] for r in report["replicas"]) == sorted(pods)
    for row in report["replicas"]:
        pod = pods[row["name"]]
        versions, labels = release.pod_view(pod)
        assert row["ready"] is True and row["node"] == pod.spec.node_name == release.node
        assert row["models"]["fashion"]["versions"] == {str(v): s for v, s in sorted(versions.items())}
        assert row["models"]["fashion"]["labels"] == labels == {"stable": 1, "canary": 2}
        assert row["disagrees"] == []


def test_status_through_the_api_server_port_forward_matches_the_pods(release: Release) -> None:
    by_ip = tfsctl(release.cluster, "status", *release.flags, "--connect", "pod-ip", "-o", "json")
    forwarded = tfsctl(release.cluster, "status", *release.flags, "--connect", "port-forward", "-o", "json")
    assert by_ip.returncode == 0, by_ip.stderr + by_ip.stdout
    assert forwarded.returncode == 0, forwarded.stderr + forwarded.stdout
    rows = {r["name"]: r for r in json.loads(forwarded.stdout)["replicas"]}
    direct = {r["name"]: r for r in json.loads(by_ip.stdout)["replicas"]}
    assert len(rows) == 3 and all(r["error"] in (None, "") for r in rows.values()), rows
    # dialled through loopback ports forwarded by the API server, not the pod IPs
    assert all(r.pop("address").startswith("127.0.0.1:") for r in rows.values()), rows
    assert all(not r.pop("address").startswith("127.") for r in direct.values()), direct
    assert rows == direct

    # and a forwarded port is a plain TCP tunnel: REST and gRPC both work through it
    from tfsctl.portforward import PortForwarder

    pod = release.ready_pods()[0].metadata.name
    with PortForwarder(release.cluster.api, release.namespace) as forwarder:
        endpoint = Endpoint(
            "127.0.0.1",
            grpc_port=forwarder.local_port(pod, 8500),
            rest_port=forwarder.local_port(pod, 8501),
        )
        with ServingClient(endpoint, timeout=10) as c:
            for transport in ("rest", "grpc"):
                states = {s.version: s.state for s in c.model_status("fashion", transport=transport)}
                assert states == {1: "AVAILABLE", 2: "AVAILABLE"}, (transport, states)


def test_promote_and_rollback_stable_with_zero_failed_requests_through_the_load_balancer(
    release: Release,
) -> None:
    # before: [1, 2] stable -> 1, canary -> 2; after promote: [2] stable -> 2; after rollback: as before
    probe = LoadBalancerProbe(load_balancer_ip(release.cluster, release.namespace, FULL))
    probe.start()
    try:
        wait_for(lambda: probe.ok >= 5, timeout=60, what="the probe's first answers through the LB")
        promoted = tfsctl(release.cluster, "promote", "fashion", "stable", "2", *release.flags)
        assert promoted.returncode == 0, promoted.stderr
        assert "fashion@stable: promoted 1 -> 2" in promoted.stdout
        assert "verified on 3 replica(s)" in promoted.stdout
        fashion = release.config().models["fashion"]
        assert dict(fashion.labels) == {"stable": 2, "canary": 2}
        assert tuple(fashion.policy.versions) == (2,)
        release.assert_fleet_serves_the_config()

        # the same through the API server's pods/portforward, as from outside the cluster network
        rolled = tfsctl(
            release.cluster, "rollback", "fashion", "stable", *release.flags, "--connect", "port-forward"
        )
        assert rolled.returncode == 0, rolled.stderr
        assert "fashion@stable: rolled back 2 -> 1" in rolled.stdout
        fashion = release.config().models["fashion"]
        assert dict(fashion.labels) == {"stable": 1, "canary": 2}
        release.assert_fleet_serves_the_config()
        time.sleep(3)  # one more config poll period under the probe
    finally:
        probe.stop()
    assert probe.failed == [], (
        f"{len(probe.failed)} failed of {probe.ok + len(probe.failed)}: {probe.failed[:5]}"
    )
    assert probe.ok > 20

    history = tfsctl(release.cluster, "history", *release.flags, "-o", "json")
    records = json.loads(history.stdout)
    assert [(r["action"], r["label"], r["from_version"], r["to_version"]) for r in records] == [
        ("promote", "stable", 1, 2),
        ("rollback", "stable", 2, 1),
    ]
    descriptions = release.cluster.helm("history", RELEASE, "-n", release.namespace, "-o", "json")
    assert any(
        "tfsctl: fashion: move label(s) stable -> 2" in h["description"]
        for h in json.loads(descriptions.stdout)
    )


def test_a_second_promotion_or_a_scale_refuses_while_the_first_holds_the_lease(
    release: Release, tmp_path: Path
) -> None:
    # before: [1, 2] stable -> 1, canary -> 2; after: [1, 3] stable -> 1, canary -> 3
    coordination = client.CoordinationV1Api(release.cluster.api)
    first = tfsctl_background(
        release.cluster, "promote", "fashion", "canary", "3", *release.flags, log=tmp_path / "first.log"
    )
    started = [first]
    second_log, scaled_log = tmp_path / "second.log", tmp_path / "scaled.log"
    try:
        wait_for(
            lambda: any(
                lease.metadata.name == f"tfsctl-promote-{RELEASE}"
                for lease in coordination.list_namespaced_lease(release.namespace).items
            ),
            timeout=60,
            what="the first promotion to take the Lease",
            interval=0.2,
        )
        # Both at once, so both ask for the Lease while the first holds it (one after the other,
        # their start-up alone can outlast a promotion on a loaded machine).
        lock = ("--lock-timeout", "2")
        second = tfsctl_background(
            release.cluster, "promote", "fashion", "stable", "2", *release.flags, *lock, log=second_log
        )
        started.append(second)
        scaled = tfsctl_background(
            release.cluster, "scale", *release.flags, "--replicas", "2", *lock, log=scaled_log
        )
        started.append(scaled)
        second.communicate(timeout=240)
        scaled.communicate(timeout=240)
        out, _ = first.communicate(timeout=240)
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
    assert second.returncode == 6, second_log.read_text()
    assert "a promotion of this release is in progress" in second_log.read_text()
    assert scaled.returncode == 6, "scale must not upgrade the values a promotion is changing"
    assert "a promotion of this release is in progress" in scaled_log.read_text()
    assert len(release.ready_pods()) == 3
    assert first.returncode == 0, (tmp_path / "first.log").read_text()
    assert "fashion@canary: promoted 2 -> 3" in out
    fashion = release.config().models["fashion"]
    assert dict(fashion.labels) == {"stable": 1, "canary": 3}, (
        "the refused promotion must not have interleaved"
    )
    release.assert_fleet_serves_the_config()


def test_a_replica_killed_mid_promotion_leaves_a_consistent_fleet(release: Release, tmp_path: Path) -> None:
    # before: [1, 3] stable -> 1, canary -> 3; after: [3] stable -> 3 (completed) or as before (restored)
    before = release.config().to_text()
    running = tfsctl_background(
        release.cluster, "promote", "fashion", "stable", "3", *release.flags, log=tmp_path / "promote.log"
    )
    victim = release.ready_pods()[0].metadata.name
    try:
        wait_for(
            lambda: release.config().to_text() != before,
            timeout=60,
            what="the promotion's first step in the ConfigMap",
            interval=0.2,
        )
        release.core.delete_namespaced_pod(victim, release.namespace, grace_period_seconds=0)
        out, _ = running.communicate(timeout=240)
    finally:
        if running.poll() is None:
            running.kill()
    log = (tmp_path / "promote.log").read_text()
    print(f"killed {victim} mid-promotion: exit {running.returncode}\n{out}{log[-2000:]}")
    fashion = release.config().models["fashion"]
    if running.returncode == 0:
        assert "fashion@stable: promoted 1 -> 3" in out
        assert dict(fashion.labels) == {"stable": 3, "canary": 3}
        assert victim not in out.split("verified on")[1], "the killed pod cannot have verified the promotion"
    else:
        assert "restored the pre-promotion state" in log, log
        assert release.config().to_text() == before
    pods = release.wait_ready(3)
    assert victim not in {p.metadata.name for p in pods}
    release.assert_fleet_serves_the_config()
    status = tfsctl(release.cluster, "status", *release.flags, "-o", "json")
    assert status.returncode == 0 and json.loads(status.stdout)["consistent"] is True, status.stdout


def test_a_version_missing_from_the_repository_times_out_and_restores_the_fleet(release: Release) -> None:
    # before and after: [3] stable -> 3, canary -> 3 (version 9 does not exist on the PV)
    before = release.config()
    flags = [*release.flags[:-1], "25"]  # --timeout 25
    failed = tfsctl(release.cluster, "promote", "fashion", "stable", "9", *flags)
    assert failed.returncode == 5, failed.stderr
    assert "step load (load version(s) 9) failed" in failed.stderr
    assert "version 9 is absent" in failed.stderr
    assert "restored the pre-promotion state on every replica" in failed.stderr
    assert release.config() == before
    release.assert_fleet_serves_the_config()


def test_scale_refuses_while_an_hpa_owns_the_replicas_and_adjust_hpa_moves_its_bounds(
    release: Release, tmp_path: Path
) -> None:
    current = release.cluster.helm("get", "values", RELEASE, "-n", release.namespace, "-o", "yaml")
    values = tmp_path / "current.yaml"
    values.write_text(current.stdout)
    enabled = tfsctl(
        release.cluster, "deploy", *release.flags, "-f", str(values), "--set", "autoscaling.enabled=true"
    )
    assert enabled.returncode == 0, enabled.stderr
    assert f"+ HorizontalPodAutoscaler/{FULL}" in enabled.stdout
    assert (
        yaml.safe_load(values.read_text())["models"]
        == yaml.safe_load(
            release.cluster.helm("get", "values", RELEASE, "-n", release.namespace, "-o", "yaml").stdout
        )["models"]
    ), "the redeploy must keep the promoted models"

    refused = tfsctl(release.cluster, "scale", *release.flags, "--replicas", "2")
    assert refused.returncode == 6
    assert f"HorizontalPodAutoscaler {FULL} owns the replica count" in refused.stderr
    assert "--adjust-hpa" in refused.stderr

    adjusted = tfsctl(
        release.cluster, "scale", *release.flags, "--replicas", "2", "--adjust-hpa", "--no-wait"
    )
    assert adjusted.returncode == 0, adjusted.stderr
    assert f"HPA {FULL}: minReplicas 1 -> 2, maxReplicas 4 -> 4" in adjusted.stdout
    hpa = client.AutoscalingV2Api(release.cluster.api).read_namespaced_horizontal_pod_autoscaler(
        FULL, release.namespace
    )
    assert (hpa.spec.min_replicas, hpa.spec.max_replicas) == (2, 4)

    # With --wait (the default) scale returns only after the HPA has acted on its new minimum and
    # every pod is Ready and serving the config; status right after agrees (the report).
    waited = tfsctl(release.cluster, "scale", *release.flags, "--replicas", "4", "--adjust-hpa")
    assert waited.returncode == 0, waited.stderr
    assert len(release.ready_pods()) == len(release.all_pods()) == 4
    status = tfsctl(release.cluster, "status", *release.flags, "-o", "json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["consistent"] is True
