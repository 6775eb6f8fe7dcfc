"""Differential: tfsctl.release.binding against the real PV controller, on the guides' own PVs.

The guide's PV is created as written (tests/chart/guides/*.yaml) with a local hostPath source in place of
NAS/OSS and a name made unique per test; the preset's rendered claim is applied and must become Bound to
it, exactly as our rule predicts. Claims our rule rejects (the NAS presets' old 10Gi ReadOnlyMany claim, a
wrong class, a selector nothing carries) must stay Pending while a control claim created after them binds.
Last, ``tfsctl deploy`` refuses a preset whose claim cannot bind, in one line, before installing anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client

from support.cluster_helpers import Cluster, render, wait_for
from support.cluster_presets import GUIDES_DIR, local_volume
from support.release_cluster import tfsctl
from tfsctl import paths
from tfsctl.release.binding import bind

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def guide_pv(guide: str, name: str) -> dict[str, Any]:
    """The guide's PV with ``name`` and a hostPath source in place of its NAS/OSS/flexVolume one."""
    objects = yaml.safe_load((GUIDES_DIR / guide).read_text())["objects"]
    [pv] = [o for o in objects if o["kind"] == "PersistentVolume"]
    return local_volume(pv, name)


def claim_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [pvc] = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    return pvc


def phase(core: Any, namespace: str, name: str) -> tuple[str, str | None]:
    pvc = core.read_namespaced_persistent_volume_claim(name, namespace)
    return pvc.status.phase, pvc.spec.volume_name


class Volumes:
    """Cluster-scoped PVs a test creates, deleted afterwards."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.names: list[str] = []

    def create(self, body: dict[str, Any]) -> None:
        self.core.create_persistent_volume(body)
        self.names.append(body["metadata"]["name"])

    def delete(self) -> None:
        for name in self.names:
            try:
                self.core.delete_persistent_volume(name)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.fixture()
def volumes(cluster: Cluster) -> Iterator[Volumes]:
    vols = Volumes(client.CoreV1Api(cluster.api))
    yield vols
    vols.delete()


def _bound(core: Any, namespace: str, name: str, volume: str) -> bool:
    got = phase(core, namespace, name)
    assert got[0] != "Lost", got
    return got == ("Bound", volume)


@pytest.mark.parametrize(
    ("guide", "preset"),
    [
        ("ack-eci-bert.yaml", "ack-eci-bert-oss.yaml"),
        ("ack-nas-mnist.yaml", "ack-nas-mnist-gpu.yaml"),
        ("ack-nas-mnist.yaml", "ack-nas-mnist-cpu.yaml"),
    ],
)
def test_the_presets_claim_binds_the_guides_pv_as_our_rule_predicts(
    cluster: Cluster, namespace: str, volumes: Volumes, guide: str, preset: str
) -> None:
    """Bound, and to the PV binding.bind names."""
    core = client.CoreV1Api(cluster.api)
    name = f"{namespace}-guide-pv"[:63]
    pv = guide_pv(guide, name)
    persistence = yaml.safe_load((paths.VALUES_DIR / preset).read_text())["persistence"]
    if persistence.get("volumeName"):
        extra: dict[str, Any] = {"persistence": {"volumeName": name}}
    else:
        # the label presets select `model: mnist`: this test's PV and claim also carry a label of their own,
        # so a PV that other tests left labelled `model: mnist` cannot take the claim
        extra = {"persistence": {"selector": {"matchLabels": {"e2e.tfsctl.dev/ns": namespace}}}}
        pv["metadata"]["labels"]["e2e.tfsctl.dev/ns"] = namespace
    docs = render(paths.CHART_DIR, "tfs", namespace, [paths.VALUES_DIR / preset], extra)
    pvc = claim_of(docs)
    assert bind(pvc, [pv]).volume == name, bind(pvc, [pv]).reason
    volumes.create(pv)
    core.create_namespaced_persistent_volume_claim(namespace, pvc)
    wait_for(
        lambda: _bound(core, namespace, pvc["metadata"]["name"], name),
        timeout=60,
        what=f"{preset}: claim bound to the guide's PV {name}",
    )


def _claim(name: str, size: str, modes: list[str], **spec: Any) -> dict[str, Any]:
    body = {"accessModes": modes, "storageClassName": "", "resources": {"requests": {"storage": size}}}
    return {"metadata": {"name": name}, "spec": {**body, **spec}}


def test_claims_our_rule_rejects_stay_pending_while_a_fitting_one_binds(
    cluster: Cluster, namespace: str, volumes: Volumes
) -> None:
    """Same PV, four claims: the controller binds only the one binding.bind accepts."""
    core = client.CoreV1Api(cluster.api)
    name = f"{namespace}-pv-nas"[:63]
    pv = guide_pv("ack-nas-mnist.yaml", name)
    pv["metadata"]["labels"] = {"e2e.tfsctl.dev/ns": namespace}
    mine = {"matchLabels": {"e2e.tfsctl.dev/ns": namespace}}
    rejected = {
        "too-big-read-only": _claim("too-big-read-only", "10Gi", ["ReadOnlyMany"], selector=mine),
        "read-only": _claim("read-only", "5Gi", ["ReadOnlyMany"], selector=mine),
        "other-class": _claim("other-class", "5Gi", ["ReadWriteMany"], selector=mine, storageClassName="nas"),
        "other-name": _claim("other-name", "5Gi", ["ReadWriteMany"], volumeName=f"{name}-absent"),
    }
    for claim in rejected.values():
        claim["metadata"]["namespace"] = namespace
        assert not bind(claim, [pv]).volume, claim["metadata"]["name"]
    volumes.create(pv)
    for claim in rejected.values():
        core.create_namespaced_persistent_volume_claim(namespace, claim)
    fitting = _claim("fitting", "1Gi", ["ReadWriteMany"], selector=mine)
    fitting["metadata"]["namespace"] = namespace
    assert bind(fitting, [pv]).volume == name
    core.create_namespaced_persistent_volume_claim(namespace, fitting)
    wait_for(lambda: _bound(core, namespace, "fitting", name), timeout=60, what="the fitting claim bound")
    for claim_name in rejected:
        assert phase(core, namespace, claim_name)[0] == "Pending", claim_name


def test_deploy_refuses_a_preset_whose_claim_cannot_bind_in_one_line(
    cluster: Cluster, namespace: str
) -> None:
    """No PV carries the selector: tfsctl deploy says so and installs nothing."""
    out = tfsctl(
        cluster,
        "deploy",
        "--release",
        "tfs",
        "-n",
        namespace,
        "-f",
        str(paths.VALUES_DIR / "ack-nas-mnist-cpu.yaml"),
        "--set",
        f"persistence.selector.matchLabels.model={namespace}",
        "--no-wait",
        timeout=180,
    )
    assert out.returncode == 7, out.stderr
    [line] = out.stderr.strip().splitlines()
    assert line == (
        f"tfsctl: error: claim {namespace}/tfs-tensorflow-serving-models: no PV matches the selector "
        f"model={namespace}; nothing was installed"
    )
    listed = cluster.helm("list", "-n", namespace, "-q").stdout.strip()
    assert not listed, f"a release was installed: {listed}"
