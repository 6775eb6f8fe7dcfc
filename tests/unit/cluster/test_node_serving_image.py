"""The TF Serving drop-in image's recipe: the chart's default image name and command, said to be local."""

from __future__ import annotations

from pathlib import Path

import yaml

from tfsbed.cluster.node import images
from tfsctl import paths


def test_drop_in_has_the_chart_default_image_name_and_the_server_binary(tmp_path: Path) -> None:
    chart = yaml.safe_load((paths.CHART_DIR / "Chart.yaml").read_text())
    values = yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text())
    recipe = images.serving_recipe(images.chart_app_version(), tmp_path)
    assert recipe.ref == f"docker.io/{values['image']['repository']}:{chart['appVersion']}"
    paths_in_image = {e.path for e in recipe.entries}
    # the chart's default command, found on the image's PATH
    assert f"/usr/bin/{values['server']['command'][0]}" in paths_in_image
    assert "PATH=/usr/local/bin:/usr/bin:/bin" in recipe.env
    server = (tmp_path / "tensorflow_model_server").read_text()
    assert "-m tfsctl serve" in server and "not TensorFlow Serving" in server
    assert "not TensorFlow Serving" in recipe.labels[images.LABEL_DESCRIPTION]
    # the libraries its interpreter and extension modules load come along (ldd runs once here)
    libs = {e.path for e in recipe.entries if e.path.startswith(("/lib", "/usr/lib"))}
    assert any(p.endswith("/libc.so.6") for p in libs)
    assert any("ld-linux" in p for p in libs)


def test_tree_fingerprint_follows_files_and_skips_excluded_names(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.py").write_text("1")
    (tmp_path / "__editable__.pth").write_text("/somewhere")
    tree = images.Tree("/opt/t", tmp_path, exclude=("__editable__",))
    assert [f.name for f in tree.files()] == ["x.py"]
    before = tree.fingerprint()
    (tmp_path / "a" / "x.py").write_text("22")
    assert tree.fingerprint() != before
