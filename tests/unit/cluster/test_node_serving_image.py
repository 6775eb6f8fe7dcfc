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
    # `serve` is a tfsbed command: the image carries that package beside tfsctl
    assert {p.rsplit("/", 1)[-1] for p in paths_in_image if "/site-packages/" in p} >= {"tfsctl", "tfsbed"}
    assert "not TensorFlow Serving" in recipe.labels[images.LABEL_DESCRIPTION]
    # the libraries its interpreter and extension modules load come along (ldd runs once here)
    assert recipe.base is not None and recipe.base.tag == recipe.tag
    libs = {e.path for e in recipe.base.entries if e.path.startswith(("/lib", "/usr/lib"))}
    assert any(p.endswith("/libc.so.6") for p in libs)
    assert any("ld-linux" in p for p in libs)


def test_drop_in_has_the_commands_the_chart_execs_in_the_server_container(tmp_path: Path) -> None:
    """TF Serving's image is Ubuntu: the chart's ``preStop`` runs ``sleep`` in it, as probes may run sh."""
    values = yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text())
    recipe = images.serving_recipe(images.chart_app_version(), tmp_path)
    assert recipe.base is not None
    links = {e.path: e.link for e in recipe.base.entries if isinstance(e, images.Entry) and e.link}
    assert values["preStop"]["sleepSeconds"] > 0 and not values["preStop"]["useSleepAction"]
    assert links["/bin/sleep"] == links["/bin/sh"] == "busybox"


def test_a_tfsctl_change_rebuilds_the_top_layer_and_leaves_the_base_as_it_was(tmp_path: Path) -> None:
    (tmp_path / "lib.so").write_bytes(b"elf")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "serve.py").write_text("v1")
    base = images.Recipe("docker.io/b:1", (images.Entry("/lib/lib.so", tmp_path / "lib.so"),))
    top = images.Recipe("docker.io/t:1", (images.Tree("/opt/pkg", pkg),), base=base)
    base_before, top_before = base.digest(), top.digest()
    (pkg / "serve.py").write_text("v2, longer")
    assert base.digest() == base_before
    assert top.digest() != top_before


def test_tree_fingerprint_follows_files_and_skips_excluded_names(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.py").write_text("1")
    (tmp_path / "__editable__.pth").write_text("/somewhere")
    tree = images.Tree("/opt/t", tmp_path, exclude=("__editable__",))
    assert [f.name for f in tree.files()] == ["x.py"]
    before = tree.fingerprint()
    (tmp_path / "a" / "x.py").write_text("22")
    assert tree.fingerprint() != before
