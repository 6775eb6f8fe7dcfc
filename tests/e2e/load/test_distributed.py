"""``tfsctl loadtest --distributed`` on the local cluster: a Locust master and 2 workers as pods.

A ``tfsctl serve`` release of the local preset and the Locust pods all run on the real node
(upstream kubelet + containerd), placed there the way a user would: ``node_selector`` and
``tolerations`` (the CLI's ``--node-selector`` / ``--toleration``), and the image the local
cluster builds and serves (``tfsbed.cluster.node.images.loadtest_image``, the CLI's
``--image``). The request count Locust reports must match the server's own counter.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.cluster_helpers import Cluster, RealNode
from support.load_servers import request_count, tfsctl
from support.release_cluster import local_preset_on_real_node, models_pv
from support.release_cluster import tfsctl as tfsctl_on
from tfsbed.canary_models import MODEL, canary_models_dir
from tfsbed.cluster.node import images
from tfsctl.load import distributed
from tfsctl.load.options import LoadSettings
from tfsctl.load.thresholds import Thresholds

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RELEASE = "tfs"
FULL = "tfs-tensorflow-serving"


@pytest.fixture
def server_url(cluster: Cluster, namespace: str, real_node: RealNode, tmp_path: Path) -> Iterator[str]:
    """REST URL (pod IP) of a ready ``tfsctl serve`` pod of the local preset on the real node."""
    values = local_preset_on_real_node(real_node, MODEL)
    values["server"]["monitoring"] = {**values["server"].get("monitoring", {}), "enabled": True}
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    with models_pv(cluster, namespace, f"{FULL}-models", canary_models_dir()):
        try:
            done = tfsctl_on(
                cluster, "deploy", "--release", RELEASE, "-n", namespace, "--timeout", "240",
                "-f", str(tmp_path / "values.yaml"), timeout=300,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            (pod,) = (
                client.CoreV1Api(cluster.api)
                .list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/instance={RELEASE}")
                .items
            )
            yield f"http://{pod.status.pod_ip}:8501"
        finally:
            cluster.helm(
                "uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "2m", check=False, timeout=180
            )  # fmt: skip


def leftovers(api: Any, namespace: str, name: str) -> list[str]:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    selector = f"app.kubernetes.io/instance={name}"
    found = [
        f"pod/{p.metadata.name}" for p in core.list_namespaced_pod(namespace, label_selector=selector).items
    ]
    found += [
        f"job/{j.metadata.name}"
        for j in batch.list_namespaced_job(namespace).items
        if name in j.metadata.name
    ]
    found += [
        f"configmap/{c.metadata.name}"
        for c in core.list_namespaced_config_map(namespace).items
        if c.metadata.name == name
    ]
    found += [
        f"secret/{s.metadata.name}"
        for s in core.list_namespaced_secret(namespace).items
        if s.metadata.name == name
    ]
    return found


def test_master_and_two_workers_count_what_the_server_counted(
    cluster: Cluster, namespace: str, real_node: RealNode, server_url: str, tmp_path: Path
) -> None:
    before = request_count(server_url, MODEL)
    settings = LoadSettings(
        host=server_url, model=MODEL, label="stable", users=2, user_rps=4, duration=15,
        limits=Thresholds(max_failure_ratio=0.0, p95_ms=None, p99_ms=None),
    )  # fmt: skip
    placement = real_node.placement
    request = distributed.DistributedRequest(
        settings=settings,
        workers=2,
        namespace=namespace,
        image=images.loadtest_image(images.chart_app_version()),
        node_selector=placement["nodeSelector"],
        tolerations=tuple(placement["tolerations"]),
        start_timeout=120,
    )
    report = tmp_path / "report"
    data = distributed.run(request, report, api=cluster.api)
    served = request_count(server_url, MODEL) - before
    counted = data["summary"]["requests"]
    assert counted > 0 and data["summary"]["failures"] == 0
    assert [e["name"] for e in data["requests_by_name"]] == [f"predict:{MODEL}@stable"]
    # the server also counts the payload builder's metadata reads; a few at most
    assert counted <= served <= counted + 8, (counted, served)
    assert data["distributed"] == {"workers": 2, "namespace": namespace, "master_exit_code": 0}
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv", "locust_report.html"):
        assert (report / name).stat().st_size > 0, name
    assert f"predict:{MODEL}@stable" in (report / "locust_stats.csv").read_text()
    assert "<html" in (report / "locust_report.html").read_text()[:2000].lower()
    assert leftovers(cluster.api, namespace, request.name) == []
    pods = client.CoreV1Api(cluster.api).list_namespaced_pod(namespace).items
    # only the release's pod is left, and it ran on the real node
    assert {p.spec.node_name for p in pods if p.spec} == {real_node.name}


def test_cli_refuses_a_loopback_target_before_creating_anything(cluster: Cluster, tmp_path: Path) -> None:
    done = tfsctl(
        "loadtest", "--distributed", "--workers", "2", "--target", "http://127.0.100.1:8501",
        "--duration", "5s", "--report", str(tmp_path / "r"),
        env={"KUBECONFIG": str(cluster.kubeconfig)},
    )  # fmt: skip
    assert done.returncode == 2
    assert "--target http://127.0.100.1:8501: a loopback address" in done.stderr
