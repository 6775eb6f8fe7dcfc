"""templates/persistentvolumeclaim.yaml and templates/persistentvolume.yaml: model storage."""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_render import FULLNAME, find, render_chart

pytestmark = pytest.mark.chart

SELECTED = {"enabled": True, "selector": {"matchLabels": {"model": "mnist"}}}


def pv(pv_values: dict[str, Any]) -> dict[str, Any]:
    values = {"persistence": {**SELECTED, "pv": {"enabled": True, **pv_values}}}
    return find(render_chart(values, show_only="persistentvolume.yaml"), "PersistentVolume")


class TestPersistentVolumeClaim:
    def test_binds_a_pre_created_pv_by_selector_without_a_storage_class(self) -> None:
        docs = render_chart({"persistence": SELECTED}, show_only="persistentvolumeclaim.yaml")
        spec = find(docs, "PersistentVolumeClaim", f"{FULLNAME}-models")["spec"]
        assert spec["storageClassName"] == ""
        assert spec["selector"] == {"matchLabels": {"model": "mnist"}}
        assert spec["accessModes"] == ["ReadOnlyMany"]
        assert spec["resources"]["requests"]["storage"] == "10Gi"

    def test_not_rendered_for_an_existing_claim(self) -> None:
        values = {"persistence": {"enabled": True, "existingClaim": "models"}}
        assert render_chart(values, show_only="persistentvolumeclaim.yaml") == []

    def test_not_rendered_when_persistence_is_off(self) -> None:
        assert render_chart(None, show_only="persistentvolumeclaim.yaml") == []


class TestPersistentVolume:
    def test_nfs_pv_carries_the_selector_labels(self) -> None:
        volume = pv({"type": "nfs", "nfs": {"server": "nas.example.com", "path": "/mnist"}})
        assert volume["metadata"]["labels"]["model"] == "mnist"
        assert volume["metadata"]["name"] == f"{FULLNAME}-models"
        assert volume["spec"]["nfs"] == {"server": "nas.example.com", "path": "/mnist", "readOnly": True}
        assert volume["spec"]["storageClassName"] == ""
        assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Retain"

    def test_nas_csi_pv(self) -> None:
        volume = pv({"type": "nasCsi", "name": "mnist-nas", "nasCsi": {"server": "x.nas.aliyuncs.com"}})
        csi = volume["spec"]["csi"]
        assert csi["driver"] == "nasplugin.csi.alibabacloud.com"
        assert csi["volumeHandle"] == "mnist-nas"
        assert csi["volumeAttributes"]["server"] == "x.nas.aliyuncs.com"
        assert csi["volumeAttributes"]["vers"] == "3"

    def test_oss_csi_pv_takes_credentials_only_from_a_secret(self) -> None:
        oss = {
            "bucket": "models",
            "url": "oss-cn-hangzhou-internal.aliyuncs.com",
            "secretRef": {"name": "oss-secret"},
        }
        csi = pv({"type": "ossCsi", "ossCsi": oss})["spec"]["csi"]
        assert csi["driver"] == "ossplugin.csi.alibabacloud.com"
        assert csi["nodePublishSecretRef"] == {"name": "oss-secret", "namespace": "serving"}
        assert csi["volumeAttributes"]["bucket"] == "models"
        assert not any("ak" in key.lower() for key in csi["volumeAttributes"])

    def test_not_rendered_unless_enabled(self) -> None:
        assert render_chart({"persistence": SELECTED}, show_only="persistentvolume.yaml") == []


class TestPersistentVolumeClaimByName:
    def test_volume_name_binds_a_named_pv_without_a_selector(self) -> None:
        values = {
            "persistence": {"enabled": True, "volumeName": "model-csi-pv", "accessModes": ["ReadWriteMany"]}
        }
        claim = find(render_chart(values, show_only="persistentvolumeclaim.yaml"), "PersistentVolumeClaim")
        assert claim["spec"]["volumeName"] == "model-csi-pv"
        assert "selector" not in claim["spec"]

    def test_no_volume_name_by_default(self) -> None:
        claim = find(
            render_chart({"persistence": SELECTED}, show_only="persistentvolumeclaim.yaml"),
            "PersistentVolumeClaim",
        )
        assert "volumeName" not in claim["spec"]

    def test_chart_pv_may_be_tied_by_name_alone(self) -> None:
        values = {
            "persistence": {
                "enabled": True,
                "volumeName": "models-pv",
                "pv": {"enabled": True, "name": "models-pv", "nfs": {"server": "nas.example.com"}},
            }
        }
        docs = render_chart(values)
        volume = find(docs, "PersistentVolume", "models-pv")
        assert "model" not in volume["metadata"]["labels"]
        assert find(docs, "PersistentVolumeClaim")["spec"]["volumeName"] == "models-pv"
