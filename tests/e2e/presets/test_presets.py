"""Every preset in values/ installs into a PodSecurity-restricted namespace and lands where it should."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.cluster_helpers import Cluster, pods, render, simulated_cloud_lb, wait_for
from support.cluster_presets import (
    create_prerequisites,
    delete_prerequisites,
    expected_node_type,
    guide_volumes,
    is_hook,
)
from tfsctl import paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RELEASE = "tfs"
PRESETS = sorted(paths.VALUES_DIR.glob("*.yaml"))
PRESET_PARAMS = [pytest.param(p, id=p.stem) for p in PRESETS] or [pytest.param(None, id="no-presets")]
SELECTOR = f"app.kubernetes.io/instance={RELEASE}"
SELECTOR_TEST = f"{SELECTOR},app.kubernetes.io/component=test"
# Kinds checked for leftovers after uninstall (namespaced), by kubectl resource name.
LEFTOVER_KINDS = ",".join(
    [
        *("deployments", "replicasets", "pods", "services", "configmaps", "persistentvolumeclaims"),
        *("ingresses", "hpa", "pdb", "serviceaccounts"),
    ]
)


def _preset(preset: Path | None) -> Path:
    if preset is None:
        pytest.fail(
            f"no presets in {paths.VALUES_DIR}: the e2e preset tests need values/*.yaml", pytrace=False
        )
    return preset


def _api_has(cluster: Cluster, namespace: str, doc: dict[str, Any]) -> bool:
    kind, name = doc["kind"], doc["metadata"]["name"]
    args = ["get", kind.lower(), name, "-o", "name"]
    if kind not in ("PersistentVolume", "IngressClass", "ClusterRole", "ClusterRoleBinding"):
        args += ["-n", namespace]
    return cluster.kubectl(*args, check=False).returncode == 0


def _node_types_of(cluster: Cluster, namespace: str) -> set[str]:
    return {
        cluster.node_types.get(p.spec.node_name, f"unknown:{p.spec.node_name}")
        for p in pods(cluster.api, namespace, SELECTOR)
    }


@pytest.mark.parametrize("preset", PRESET_PARAMS)
def test_preset_installs_ready_on_its_node_type_and_uninstalls_clean(
    cluster: Cluster, namespace: str, preset: Path | None
) -> None:
    values = _preset(preset)
    docs = render(paths.CHART_DIR, RELEASE, namespace, [values])
    want = expected_node_type(docs)
    # the local preset needs the real node; GPU/ECI presets need such nodes (kind has neither);
    # where pods really run (the real node, kind) the PV is pinned to a node holding example models
    cluster.require_node_type(want)
    # next to the guide's own objects: its PV as written (local source), which the claim must bind by itself
    guide_pvs = guide_volumes(values.name)
    pvs = create_prerequisites(cluster, namespace, docs, guide_pvs)
    try:
        with simulated_cloud_lb(cluster, namespace):
            cluster.helm(
                "upgrade",
                "--install",
                RELEASE,
                str(paths.CHART_DIR),
                "-n",
                namespace,
                "-f",
                str(values),
                "--wait",
                "--timeout",
                "5m",
                timeout=360,
            )
        running = pods(cluster.api, namespace, f"{SELECTOR},app.kubernetes.io/component=server")
        assert running, f"{values.name}: no server pods"
        for pod in running:
            ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
            assert ready, f"{values.name}: pod {pod.metadata.name} is not Ready"
        assert _node_types_of(cluster, namespace) == {want}, f"{values.name} should run on {want} nodes"
        guide_names = {v["metadata"]["name"] for v in guide_pvs}
        for claim in (d for d in docs if d["kind"] == "PersistentVolumeClaim" and guide_pvs):
            got = cluster.kubectl(
                "get", "pvc", claim["metadata"]["name"], "-n", namespace, "-o", "jsonpath={.spec.volumeName}"
            ).stdout
            assert any(got == n or got == f"{namespace}-{n}"[:63] for n in guide_names), (
                f"{values.name}: claim bound {got!r}, not the guide's PV {sorted(guide_names)}"
            )
        missing = [
            f"{d['kind']}/{d['metadata']['name']}"
            for d in docs
            if not is_hook(d) and not _api_has(cluster, namespace, d)
        ]
        assert not missing, f"{values.name}: rendered objects not in the API: {missing}"
        if want in cluster.capabilities.real_types:
            # helm test pods run for real only where pods do (the real node here; kind's nodes)
            # (no --logs: the chart deletes a passed test pod, so helm would fail fetching its log;
            # a failed one stays and its log goes into the message)
            out = cluster.helm("test", RELEASE, "-n", namespace, "--timeout", "3m", check=False, timeout=240)
            if out.returncode != 0:
                logs = cluster.kubectl("logs", "-n", namespace, "-l", SELECTOR_TEST, check=False)
                pytest.fail(f"{values.name}: helm test failed:\n{out.stdout}{out.stderr}\n{logs.stdout}")
            assert re.search(r"Phase:\s+Succeeded", out.stdout), out.stdout
        cluster.helm("uninstall", RELEASE, "-n", namespace, "--wait", "--timeout", "2m", timeout=180)
        wait_for(
            lambda: (
                not cluster.kubectl(
                    "get", LEFTOVER_KINDS, "-n", namespace, "-l", SELECTOR, "-o", "name"
                ).stdout.strip()
            ),
            timeout=90,
            what=f"{values.name}: release objects to be gone after uninstall",
        )
        chart_pvs = [d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolume"]
        for name in chart_pvs:
            assert not _api_has(cluster, namespace, {"kind": "PersistentVolume", "metadata": {"name": name}})
        releases = cluster.kubectl(
            "get", "secrets", "-n", namespace, "-l", f"owner=helm,name={RELEASE}", "-o", "name"
        )
        assert not releases.stdout.strip(), "helm release records left behind"
    finally:
        delete_prerequisites(cluster, pvs)


@pytest.mark.parametrize("preset", PRESET_PARAMS)
def test_preset_passes_server_side_dry_run(cluster: Cluster, namespace: str, preset: Path | None) -> None:
    values = _preset(preset)
    docs = render(paths.CHART_DIR, RELEASE, namespace, [values])
    text = yaml.safe_dump_all(docs)
    out = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", stdin=text, check=False)
    assert out.returncode == 0, f"{values.name}: the API server rejected the render:\n{out.stderr}"
    assert out.stdout.count("(server dry run)") == len(docs)
