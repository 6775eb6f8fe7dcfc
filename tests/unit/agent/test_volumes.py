from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from tfsbed.cluster.agent.volumes import AtomicWriter, PodVolumes, VolumeError, build_root


class Objects:
    def __init__(self) -> None:
        self.configmaps: dict[str, dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}

    def configmap(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.configmaps.get(name)

    def secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.secrets.get(name)

    def claim_path(self, namespace: str, claim: str) -> str:
        return f"/srv/{claim}"

    def token(self, pod: dict[str, Any], audience: str | None, expiration: int) -> str:
        return "tok"


def pod(volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
        "spec": {"containers": [{"name": "c"}], "volumes": volumes},
    }


def test_atomic_writer_layout_is_the_kubelets(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert AtomicWriter(target).write({"a.txt": (b"1", 0o644), "dir/b.txt": (b"2", 0o600)})
    assert os.readlink(target / "..data").startswith("..")
    assert os.readlink(target / "a.txt") == "..data/a.txt"
    assert (target / "dir" / "b.txt").read_bytes() == b"2"
    assert (target / "dir" / "b.txt").stat().st_mode & 0o777 == 0o600


def test_atomic_writer_swaps_data_and_removes_old_generation(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    writer = AtomicWriter(target)
    writer.write({"a.txt": (b"1", 0o644), "gone.txt": (b"x", 0o644)})
    first = os.readlink(target / "..data")
    assert writer.write({"a.txt": (b"2", 0o644)})
    assert os.readlink(target / "..data") != first
    assert not (target / first).exists()
    assert not (target / "gone.txt").is_symlink()
    assert (target / "a.txt").read_bytes() == b"2"


def test_atomic_writer_reports_no_change_for_same_payload(tmp_path: Path) -> None:
    writer = AtomicWriter(tmp_path / "vol")
    writer.write({"a": (b"1", 0o644)})
    assert not writer.write({"a": (b"1", 0o644)})


def test_atomic_writer_rejects_escaping_paths(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match=r"\.\./x"):
        AtomicWriter(tmp_path / "vol").write({"../x": (b"", 0o644)})


def test_config_map_items_and_secret_volume_follow_source_changes(tmp_path: Path) -> None:
    objects = Objects()
    objects.configmaps["cfg"] = {"data": {"model_config.pbtxt": "v1", "other": "o"}}
    objects.secrets["s"] = {"data": {"key": base64.b64encode(b"k").decode()}}
    volumes = PodVolumes(
        pod(
            [
                {
                    "name": "config",
                    "configMap": {
                        "name": "cfg",
                        "items": [{"key": "model_config.pbtxt", "path": "model_config.pbtxt"}],
                    },
                },
                {"name": "creds", "secret": {"secretName": "s"}},
            ]
        ),
        tmp_path,
        objects,
    )
    volumes.setup()
    assert (volumes.paths["config"] / "model_config.pbtxt").read_text() == "v1"
    assert not (volumes.paths["config"] / "other").exists()
    assert (volumes.paths["creds"] / "key").read_text() == "k"
    assert volumes.sync() == []
    objects.configmaps["cfg"] = {"data": {"model_config.pbtxt": "v2"}}
    assert volumes.sync() == ["config"]
    assert (volumes.paths["config"] / "model_config.pbtxt").read_text() == "v2"


def test_missing_config_map_is_retryable_and_optional_is_empty(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match="configmap ns/nope not found") as info:
        PodVolumes(pod([{"name": "v", "configMap": {"name": "nope"}}]), tmp_path, Objects()).setup()
    assert not info.value.fatal
    optional = PodVolumes(
        pod([{"name": "v", "configMap": {"name": "nope", "optional": True}}]), tmp_path, Objects()
    )
    optional.setup()
    assert list(optional.paths["v"].glob("[!.]*")) == []


def test_unsupported_volume_type_is_fatal_and_named(tmp_path: Path) -> None:
    with pytest.raises(VolumeError, match="volume data: type nfs is not supported") as info:
        PodVolumes(pod([{"name": "data", "nfs": {"server": "x", "path": "/"}}]), tmp_path, Objects()).setup()
    assert info.value.fatal


def test_projected_volume_merges_sources(tmp_path: Path) -> None:
    objects = Objects()
    objects.configmaps["kube-root-ca.crt"] = {"data": {"ca.crt": "CA"}}
    volumes = PodVolumes(
        pod(
            [
                {
                    "name": "api",
                    "projected": {
                        "sources": [
                            {"serviceAccountToken": {"path": "token"}},
                            {
                                "configMap": {
                                    "name": "kube-root-ca.crt",
                                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                                }
                            },
                            {
                                "downwardAPI": {
                                    "items": [
                                        {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                                    ]
                                }
                            },
                        ]
                    },
                }
            ]
        ),
        tmp_path,
        objects,
    )
    volumes.setup()
    root = volumes.paths["api"]
    assert [(root / n).read_text() for n in ("token", "ca.crt", "namespace")] == ["tok", "CA", "ns"]


def test_build_root_links_mount_paths_and_sub_paths(tmp_path: Path) -> None:
    vol = tmp_path / "models"
    (vol / "fashion").mkdir(parents=True)
    root = tmp_path / "root"
    build_root(
        root,
        [{"name": "m", "mountPath": "/models"}, {"name": "m", "mountPath": "/data/f", "subPath": "fashion"}],
        {"m": vol},
    )
    assert (root / "models").resolve() == vol.resolve()
    assert (root / "data" / "f").resolve() == (vol / "fashion").resolve()
