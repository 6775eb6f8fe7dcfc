"""What a values preset needs from the cluster, and where its pods must land, read from its render.

Prerequisites a real cluster has and a fresh test namespace does not: a PV for
each PVC selector or ``volumeName`` (the chart renders its own for some presets), Secrets the
pods or PVs reference (OSS credentials: dummy values, never real keys), and the
IngressClass an Ingress names.

Where the preset's pods really run (the local cluster's real node; any node of kind), the PV
holds generated example models on the disk of the node they run on
(``support.cluster_models``); on kwok's simulated nodes an empty directory does.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from support import cluster_models
from support.cluster_capabilities import require
from support.cluster_helpers import Cluster

GUIDES_DIR = Path(__file__).resolve().parents[1] / "chart" / "guides"
EMPTY_DIR = Path("/tmp/tfsctl-e2e-empty")  # simulated pods read nothing

DUMMY_SECRET_DATA = {
    "akId": "e2e-not-a-real-access-key-id",
    "akSecret": "e2e-not-a-real-access-key-secret",
}


def local_volume(pv: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """A guide's PV as written, with a hostPath source in place of its NAS/OSS/flexVolume one."""
    body = copy.deepcopy(pv)
    for source in ("csi", "flexVolume", "nfs"):
        body["spec"].pop(source, None)
    EMPTY_DIR.mkdir(parents=True, exist_ok=True)
    body["spec"]["hostPath"] = {"path": str(EMPTY_DIR), "type": "Directory"}
    if name:
        body["metadata"]["name"] = name
    return dict(body)


def guide_volumes(preset: str) -> list[dict[str, Any]]:
    """The PVs of the guide ``preset`` stands for (tests/chart/guides/*.yaml), sources made local."""
    for path in sorted(GUIDES_DIR.glob("*.yaml")):
        guide = yaml.safe_load(path.read_text())
        if preset in (guide.get("presets") or [guide.get("preset")]):
            return [local_volume(o) for o in guide.get("objects", []) if o["kind"] == "PersistentVolume"]
    return []


def workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    return dep


def expected_node_type(docs: list[dict[str, Any]]) -> str:
    """``real``, ``eci``, ``gpu`` or ``cpu``: where kube-scheduler must put the preset's pods."""
    spec = workload(docs)["spec"]["template"]["spec"]
    text = repr(spec.get("nodeSelector", {})) + repr(spec.get("affinity", {}))
    if "node.tfsctl.dev/type" in text and "real" in text:
        return "real"
    if "virtual-kubelet" in text:
        return "eci"
    for c in spec["containers"]:
        if "nvidia.com/gpu" in (c.get("resources", {}).get("limits") or {}):
            return "gpu"
    return "cpu"


def is_hook(doc: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (doc.get("metadata", {}).get("annotations") or {})


def create_prerequisites(
    cluster: Cluster, namespace: str, docs: list[dict[str, Any]], guide_pvs: Sequence[dict[str, Any]] = ()
) -> list[str]:
    """Create what the preset expects to exist; returns cluster-scoped PV names to delete afterwards.

    ``guide_pvs`` (from :func:`guide_volumes`) are created as the guide wrote them, unpinned, for the claims
    they can bind under Kubernetes' rule: the preset must then bind them on its own.
    """
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from tfsctl.release.binding import bind

    core = client.CoreV1Api(cluster.api)
    rendered_pvs = [d for d in docs if d["kind"] == "PersistentVolume"]
    target = cluster_models.target_node(cluster.api, docs)
    real = target is not None and target.real
    needed = cluster_models.models_needed(docs)
    if real and needed.remote:
        require(
            cluster.local,
            False,
            f"access to the preset's model store {', '.join(needed.remote)}",
            "point the preset at models on a PVC",
        )
    created_pvs: list[str] = []
    for pvc in (d for d in docs if d["kind"] == "PersistentVolumeClaim"):
        spec = pvc["spec"]
        labels = (spec.get("selector") or {}).get("matchLabels") or {}
        if any(
            all(pv["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())
            for pv in rendered_pvs
        ):
            continue
        if not labels and not spec.get("volumeName"):
            continue
        guide = next((v for v in guide_pvs if not real and bind(pvc, [v]).volume), None)
        if guide is not None:
            # PV names are cluster-wide: keep the guide's name only where the claim names it
            own = (
                guide["metadata"]["name"]
                if spec.get("volumeName")
                else f"{namespace}-{guide['metadata']['name']}"
            )
            core.create_persistent_volume(local_volume(guide, own[:63]))
            created_pvs.append(own[:63])
            continue
        # a claim bound by name (persistence.volumeName, as the ECI guide's) gets a PV of that name
        name = spec.get("volumeName") or f"{namespace}-{pvc['metadata']['name']}"[:63]
        # bind only to this namespace's claim: presets share selector labels across tests
        claim_ref = {"namespace": namespace, "name": pvc["metadata"]["name"]}
        if target is not None and target.real and needed.claim == pvc["metadata"]["name"]:
            core.create_persistent_volume(cluster_models.pinned_pv(name, target.hostname, claim_ref, spec))
            created_pvs.append(name)
            cluster_models.place_models(cluster.api, name, target.name, needed.dirs)
            continue
        EMPTY_DIR.mkdir(parents=True, exist_ok=True)
        pv = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": name, "labels": dict(labels)},
            "spec": {
                "capacity": {"storage": spec["resources"]["requests"]["storage"]},
                "accessModes": spec["accessModes"],
                "storageClassName": spec.get("storageClassName", ""),
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(EMPTY_DIR), "type": "Directory"},
                "claimRef": claim_ref,
            },
        }
        core.create_persistent_volume(pv)
        created_pvs.append(name)
    for secret in sorted(_referenced_secrets(docs, namespace)):
        body = {"metadata": {"name": secret}, "type": "Opaque", "stringData": DUMMY_SECRET_DATA}
        try:
            core.create_namespaced_secret(namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
    net = client.NetworkingV1Api(cluster.api)
    for ing in (d for d in docs if d["kind"] == "Ingress"):
        cls = ing["spec"].get("ingressClassName")
        if not cls:
            continue
        try:
            net.create_ingress_class(
                {"metadata": {"name": cls}, "spec": {"controller": f"example.com/{cls}"}}
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
    return created_pvs


def delete_prerequisites(cluster: Cluster, pvs: list[str]) -> None:
    """Delete the PVs :func:`create_prerequisites` made, and the models it loaded onto a node."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(cluster.api)
    for name in pvs:
        cluster_models.remove_models(cluster.api, name)
        try:
            core.delete_persistent_volume(name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _referenced_secrets(docs: list[dict[str, Any]], namespace: str) -> set[str]:
    names: set[str] = set()
    rendered = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    for d in docs:
        if d["kind"] == "PersistentVolume":
            ref = ((d["spec"].get("csi") or {}).get("nodePublishSecretRef")) or {}
            if ref.get("name") and ref.get("namespace", namespace) == namespace:
                names.add(ref["name"])
        if d["kind"] in ("Deployment", "Pod"):
            spec = d["spec"]["template"]["spec"] if d["kind"] == "Deployment" else d["spec"]
            for vol in spec.get("volumes", []):
                if "secret" in vol:
                    names.add(vol["secret"]["secretName"])
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                for env in c.get("env", []):
                    ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        names.add(ref["name"])
                for src in c.get("envFrom", []):
                    if "secretRef" in src:
                        names.add(src["secretRef"]["name"])
    return names - rendered
