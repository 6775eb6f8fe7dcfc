"""Expose a host directory of SavedModels to the local cluster as a PersistentVolume.

The chart's presets mount models through a PVC that selects a pre-created PV by
label (``persistence.selector.matchLabels``), as on ACK with NAS or OSS. On the
local cluster the PV is a hostPath volume: the real node shares the host's
filesystem, so its kubelet bind-mounts the directory itself. ``models_pv_manifest``
is pure; ``apply_models_pv`` creates or replaces the object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfsctl.errors import Conflict, InvalidInput, Unavailable

DEFAULT_NAME = "tfsctl-local-models"
DEFAULT_LABELS = {"model": "local-examples"}


def models_pv_manifest(
    name: str,
    host_dir: Path,
    labels: dict[str, str],
    size: str = "1Gi",
    claim: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A ReadOnlyMany hostPath PV with no storage class, as the presets' claims select it.

    ``claim`` (namespace, name) reserves it for that one claim (``spec.claimRef``), so releases
    in other namespaces, each with a PV of its own, never take each other's.
    """
    pv: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": name,
            "labels": dict(labels),
            "annotations": {"tfsctl.dev/host-dir": str(host_dir)},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadOnlyMany", "ReadWriteOnce"],
            "storageClassName": "",
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": str(host_dir), "type": "Directory"},
        },
    }
    if claim is not None:
        pv["spec"]["claimRef"] = {"namespace": claim[0], "name": claim[1]}
    return pv


def parse_labels(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["model=local-examples"]`` -> ``{"model": "local-examples"}``; one-line errors name the pair."""
    labels: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--label {pair!r}: expected key=value")
        labels[key] = value
    return labels or dict(DEFAULT_LABELS)


def apply_models_pv(api: Any, name: str, host_dir: Path, labels: dict[str, str]) -> str:
    """Create the PV, or replace it when it is not bound to a claim; returns its phase."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    from urllib3.exceptions import HTTPError

    host_dir = host_dir.resolve()
    if not host_dir.is_dir():
        raise InvalidInput(f"models directory {host_dir} does not exist")
    core: Any = client.CoreV1Api(api)  # the client models are loosely typed; we pass dicts
    body = models_pv_manifest(name, host_dir, labels)
    try:
        try:
            current = core.read_persistent_volume(name)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return str(core.create_persistent_volume(body).status.phase)
        claim = current.spec.claim_ref
        if current.spec.host_path and current.spec.host_path.path == str(host_dir):
            return str(current.status.phase)
        if claim is not None:
            raise Conflict(
                f"PersistentVolume {name} is bound to {claim.namespace}/{claim.name} and points at "
                f"{current.spec.host_path.path if current.spec.host_path else 'another volume'}: "
                "uninstall that release first or pick another --name"
            )
        core.delete_persistent_volume(name)
        return str(core.create_persistent_volume(body).status.phase)
    except (ApiException, HTTPError) as exc:
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        raise Unavailable(f"cannot create PersistentVolume {name}: {reason}") from exc
