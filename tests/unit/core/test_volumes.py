"""The local cluster's models PersistentVolume (pure manifest and label parsing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsbed.cluster.volumes import DEFAULT_LABELS, models_pv_manifest, parse_labels
from tfsctl.errors import InvalidInput


def test_models_pv_is_selectable_by_the_presets_claims(tmp_path: Path) -> None:
    pv = models_pv_manifest("m", tmp_path, {"model": "local-examples"})
    assert pv["metadata"]["labels"] == {"model": "local-examples"}
    # The presets' claims set storageClassName "" and ask ReadOnlyMany.
    assert pv["spec"]["storageClassName"] == ""
    assert "ReadOnlyMany" in pv["spec"]["accessModes"]
    assert pv["spec"]["hostPath"] == {"path": str(tmp_path), "type": "Directory"}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert "claimRef" not in pv["spec"]


def test_a_claim_reserves_the_pv_for_that_one_claim(tmp_path: Path) -> None:
    pv = models_pv_manifest("m", tmp_path, DEFAULT_LABELS, claim=("ns", "tfs-models"))
    assert pv["spec"]["claimRef"] == {"namespace": "ns", "name": "tfs-models"}


def test_labels_default_to_the_local_preset_selector() -> None:
    assert parse_labels(()) == DEFAULT_LABELS == {"model": "local-examples"}
    assert parse_labels(["model=mnist", "tier=gold"]) == {"model": "mnist", "tier": "gold"}


@pytest.mark.parametrize("bad", ["model", "=x"])
def test_a_label_without_key_and_value_names_the_flag(bad: str) -> None:
    with pytest.raises(InvalidInput, match=rf"^--label '{bad}': expected key=value$"):
        parse_labels([bad])
