"""Pod volumes materialised under the state directory, kept in sync like the kubelet does.

ConfigMap, Secret, downwardAPI and projected volumes are written with the
kubelet's atomic writer layout: files live in a timestamped ``..<ts>`` directory,
``..data`` is a symlink to it that is swapped with one ``rename(2)``, and each
user-visible name is a symlink through ``..data``. A reader therefore sees the old
or the new content, never a mix. A container cannot mount at its paths on the
host, so each container gets a root directory with a symlink per ``mountPath``;
``TFSCTL_FS_ROOT`` points there.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tfsctl.errors import ToolkitError

from .env import field_value, resource_value

log = logging.getLogger(__name__)

Payload = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)
DATA = "..data"


class VolumeError(ToolkitError):
    """A volume cannot be set up; ``fatal`` when waiting will not help (unsupported type)."""

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class Sources(Protocol):
    def configmap(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def claim_path(self, namespace: str, claim: str) -> str: ...
    def token(self, pod: dict[str, Any], audience: str | None, expiration: int) -> str: ...


class AtomicWriter:
    """Writes a payload into ``target`` with the kubelet's ``..data`` symlink swap."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def current(self) -> Payload | None:
        data = self.target / DATA
        if not data.is_symlink():
            return None
        out: Payload = {}
        root = data.resolve()
        for path in root.rglob("*"):
            if path.is_file():
                out[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mode & 0o777)
        return out

    def write(self, payload: Payload) -> bool:
        """Make ``target`` hold exactly ``payload``; return False when it already did."""
        for rel in payload:
            if rel.startswith("/") or ".." in rel.split("/") or rel.startswith(".."):
                raise VolumeError(f"volume item path {rel!r} must be relative and must not contain '..'")
        if self.current() == payload:
            return False
        self.target.mkdir(parents=True, exist_ok=True)
        old = (self.target / DATA).resolve() if (self.target / DATA).is_symlink() else None
        ts_dir = Path(tempfile.mkdtemp(prefix="..", dir=self.target))
        for rel, (content, mode) in payload.items():
            path = ts_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            os.chmod(path, mode)
        ts_dir.chmod(0o755)
        tmp_link = self.target / "..data_tmp"
        if tmp_link.is_symlink() or tmp_link.exists():
            tmp_link.unlink()
        os.symlink(ts_dir.name, tmp_link)
        os.rename(tmp_link, self.target / DATA)
        visible = {rel.split("/")[0] for rel in payload}
        for name in visible:
            link = self.target / name
            if not link.is_symlink():
                os.symlink(f"{DATA}/{name}", link)
        for entry in self.target.iterdir():
            if not entry.name.startswith("..") and entry.name not in visible and entry.is_symlink():
                entry.unlink()
        if old is not None and old.parent == self.target and old.exists():
            shutil.rmtree(old, ignore_errors=True)
        return True


def _items(
    data: dict[str, bytes], items: list[dict[str, Any]] | None, default_mode: int, what: str, optional: bool
) -> Payload:
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    out: Payload = {}
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            raise VolumeError(f"{what} has no key {item['key']!r}")
        out[item["path"]] = (data[item["key"]], int(item.get("mode") or default_mode))
    return out


def _configmap_data(obj: dict[str, Any]) -> dict[str, bytes]:
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _secret_data(obj: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


@dataclass
class MountTarget:
    volume: str
    path: Path  # the host directory (or file) the volume is at


class PodVolumes:
    """The volumes of one pod under ``pod_dir/volumes``; :meth:`sync` re-materialises them."""

    ATOMIC = ("configMap", "secret", "downwardAPI", "projected")

    def __init__(self, pod: dict[str, Any], pod_dir: Path, sources: Sources) -> None:
        self.pod = pod
        self.pod_dir = pod_dir
        self.sources = sources
        self.namespace = pod["metadata"]["namespace"]
        self.paths: dict[str, Path] = {}
        self._tokens: dict[tuple[str, int], str] = {}

    def setup(self) -> None:
        """Prepare every volume; raise VolumeError when one cannot be (yet)."""
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            kind = next((k for k in volume if k != "name"), "")
            target = self.pod_dir / "volumes" / name
            if kind in self.ATOMIC:
                AtomicWriter(target).write(self._payload(volume, kind))
                self.paths[name] = target
            elif kind == "emptyDir":
                target.mkdir(parents=True, exist_ok=True)
                self.paths[name] = target
            elif kind == "hostPath":
                path = Path(volume["hostPath"]["path"])
                if volume["hostPath"].get("type") == "DirectoryOrCreate":
                    path.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    raise VolumeError(f"volume {name}: hostPath {path} does not exist on the process node")
                self.paths[name] = path
            elif kind == "persistentVolumeClaim":
                claim = volume["persistentVolumeClaim"]["claimName"]
                self.paths[name] = Path(self.sources.claim_path(self.namespace, claim))
            else:
                raise VolumeError(
                    f"volume {name}: type {kind or '?'} is not supported on the process node "
                    "(use configMap, secret, projected, downwardAPI, emptyDir, hostPath or a PVC "
                    "bound to a hostPath/local PV)",
                    fatal=True,
                )

    def sync(self) -> list[str]:
        """Rewrite the atomic volumes whose source changed; return their names."""
        changed = []
        for volume in self.pod["spec"].get("volumes") or []:
            kind = next((k for k in volume if k != "name"), "")
            if kind in self.ATOMIC and volume["name"] in self.paths:
                try:
                    if AtomicWriter(self.paths[volume["name"]]).write(self._payload(volume, kind)):
                        changed.append(volume["name"])
                except VolumeError as exc:
                    log.debug("volume %s not refreshed: %s", volume["name"], exc)
        return changed

    def _payload(self, volume: dict[str, Any], kind: str) -> Payload:
        spec = volume[kind] or {}
        if kind == "projected":
            mode = int(spec.get("defaultMode") or 0o644)
            out: Payload = {}
            for source in spec.get("sources") or []:
                out.update(self._source_payload(source, mode))
            return out
        return self._source_payload({kind: spec}, int(spec.get("defaultMode") or 0o644))

    def _source_payload(self, source: dict[str, Any], mode: int) -> Payload:
        ns = self.namespace
        if "configMap" in source:
            ref = source["configMap"]
            obj = self.sources.configmap(ns, ref["name"])
            what = f"configmap {ns}/{ref['name']}"
            if obj is None:
                if ref.get("optional"):
                    return {}
                raise VolumeError(f"{what} not found")
            return _items(_configmap_data(obj), ref.get("items"), mode, what, bool(ref.get("optional")))
        if "secret" in source:
            ref = source["secret"]
            secret_name = ref.get("secretName") or ref.get("name", "")
            obj = self.sources.secret(ns, secret_name)
            what = f"secret {ns}/{secret_name}"
            if obj is None:
                if ref.get("optional"):
                    return {}
                raise VolumeError(f"{what} not found")
            return _items(_secret_data(obj), ref.get("items"), mode, what, bool(ref.get("optional")))
        if "downwardAPI" in source:
            out: Payload = {}
            for item in source["downwardAPI"].get("items") or []:
                if item.get("fieldRef"):
                    value = field_value(self.pod, item["fieldRef"]["fieldPath"])
                else:
                    ref = item.get("resourceFieldRef") or {}
                    container = next(
                        (c for c in self.pod["spec"]["containers"] if c["name"] == ref.get("containerName")),
                        self.pod["spec"]["containers"][0],
                    )
                    value = resource_value(container, ref)
                out[item["path"]] = (value.encode(), int(item.get("mode") or mode))
            return out
        if "serviceAccountToken" in source:
            ref = source["serviceAccountToken"]
            key = (str(ref.get("audience") or ""), int(ref.get("expirationSeconds") or 3607))
            if key not in self._tokens:
                try:
                    self._tokens[key] = self.sources.token(self.pod, ref.get("audience"), key[1])
                except Exception as exc:  # a token is a nicety for process pods; never block the pod on it
                    log.warning(
                        "service account token for %s not issued: %s", self.pod["metadata"]["name"], exc
                    )
                    self._tokens[key] = ""
            return {ref["path"]: (self._tokens[key].encode(), 0o600)}
        if "clusterTrustBundle" in source or "podCertificate" in source:
            return {}
        raise VolumeError(f"projected source {sorted(source)} is not supported", fatal=True)


def build_root(root: Path, mounts: list[dict[str, Any]], paths: dict[str, Path]) -> None:
    """Create ``root`` with a symlink at each ``mountPath`` to its volume (or ``subPath`` in it)."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for mount in sorted(mounts, key=lambda m: m["mountPath"]):
        volume = mount["name"]
        if volume not in paths:
            raise VolumeError(f"volumeMount {mount['mountPath']} names unknown volume {volume!r}", fatal=True)
        target = paths[volume]
        if mount.get("subPath"):
            target = target / mount["subPath"]
            if not target.exists() and paths[volume].is_dir() and "." not in Path(mount["subPath"]).name:
                target.mkdir(parents=True, exist_ok=True)
        link = root / mount["mountPath"].strip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            continue  # a mount nested in another one resolves through the outer volume
        os.symlink(target, link)


def resolver(root: Path) -> Callable[[str], Path]:
    """Map an absolute container path to the host path under ``root``."""
    return lambda path: root / path.lstrip("/")
