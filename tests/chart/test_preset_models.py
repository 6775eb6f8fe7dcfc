"""What the e2e preset tests load onto a node for each preset, read from its render.

Where a preset's pods really run (the real node, a kind node) the e2e tests put
generated example models on that node (``support.cluster_models``); these checks pin
what they derive from each render, so a chart change that moves the models is caught
here rather than as a pod that never gets Ready on some cluster.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.chart_render import PRESETS_DIR, render_chart
from support.cluster_models import ModelsNeeded, models_needed, models_tar

pytestmark = pytest.mark.chart


def _needed(preset: str, **values: Any) -> ModelsNeeded:
    return models_needed(render_chart(values or None, values_files=[PRESETS_DIR / f"{preset}.yaml"]))


def test_local_preset_needs_both_fashion_versions_from_its_claim() -> None:
    needed = _needed("local")
    assert needed.claim == "tfs-tensorflow-serving-models"
    assert needed.dirs == {"fashion": (1, 2)}
    assert needed.remote == ()


def test_single_model_preset_mounted_at_the_base_path_needs_versions_at_the_volume_root() -> None:
    needed = _needed("ack-nas-mnist-cpu")
    assert needed.dirs == {".": (1,)}
    assert needed.claim is not None


def test_multi_model_preset_needs_what_each_version_policy_serves() -> None:
    needed = _needed("pai-eas-multi-model")
    # all -> two versions; specific [1, 2]; latest 2 -> 1 and 2
    assert needed.dirs == {"modelA": (1, 2), "modelB": (1, 2), "modelC": (1, 2)}


def test_a_base_path_in_cloud_storage_is_reported_as_remote() -> None:
    needed = _needed("gke-resnet-cpu-hpa")
    assert needed.remote == ("gs://my-models-bucket/resnet_101",)
    assert needed.dirs == {}


def test_the_models_tar_holds_a_saved_model_per_directory_and_version() -> None:
    import io
    import tarfile

    data = models_tar({".": (1,), "m": (1, 3)})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = sorted(n for n in tar.getnames() if n.endswith("saved_model.pb"))
        owners = {(m.uid, m.gid) for m in tar.getmembers()}
    assert names == ["1/saved_model.pb", "m/1/saved_model.pb", "m/3/saved_model.pb"]
    assert owners == {(0, 0)}
