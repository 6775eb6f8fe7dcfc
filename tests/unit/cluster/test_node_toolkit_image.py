"""The toolkit image's recipe: the product's wheel (no test bed), helm, and the Job's user and HOME.

The wheel is really built (``uv build``, seconds); the dependencies' virtualenv is a
stand-in directory, since its contents are decided by uv and the lock, not here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tfsbed.cluster.node import images, toolkit
from tfsctl import __version__, paths


@pytest.fixture
def fake_venv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    venv = tmp_path / "venv"
    site = venv / "lib/python3.11/site-packages"
    for rel in ("numpy/__init__.py", "numpy/_core/tests/test_x.py", "kubernetes/aio/client.py", "yaml/x.py"):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text("#")
    (venv / "bin").mkdir()
    (venv / "bin" / "activate").write_text("#")
    monkeypatch.setattr(toolkit, "dependencies_venv", lambda root=paths.REPO_ROOT: venv)
    return venv


@pytest.mark.slow
def test_the_image_is_the_wheel_with_helm_and_no_test_bed(tmp_path: Path, fake_venv: Path) -> None:
    helm = tmp_path / "helm"
    helm.write_bytes(b"elf")
    recipe = toolkit.toolkit_recipe(tmp_path / "work", helm)
    values = yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text())
    assert recipe.ref == f"docker.io/tfsctl/tfsctl:{__version__}"
    assert recipe.entrypoint == ("tfsctl",)
    assert recipe.user == "1000:1000"
    # the chart's Job runs the pod as the values' podSecurityContext says: the image agrees
    psc = values["podSecurityContext"]
    assert recipe.user == f"{psc['runAsUser']}:{psc['runAsGroup']}"
    assert "HOME=/tmp" in recipe.env
    top = {e.path: e for e in recipe.entries if isinstance(e, images.Entry)}
    assert top["/usr/local/bin/helm"].source == helm
    site = "/opt/tfsctl/lib/python3.11/site-packages"
    assert f"{site}/tfsctl/cli/canary.py" in top
    # the chart as package data (setup.py), which is what `tfsctl canary` upgrades the release with
    assert f"{site}/tfsctl/data/chart/tensorflow-serving/Chart.yaml" in top
    assert not [p for p in top if "tfsbed" in p], "the product image carries no test bed"
    launcher = top["/opt/tfsctl/bin/tfsctl"].source
    assert launcher is not None and "from tfsctl.cli import main" in launcher.read_text()
    assert "built on this machine" in recipe.labels[images.LABEL_DESCRIPTION]


@pytest.mark.slow
def test_the_dependencies_leave_out_tests_and_the_async_client(tmp_path: Path, fake_venv: Path) -> None:
    recipe = toolkit.toolkit_recipe(tmp_path / "work", tmp_path / "helm")
    assert recipe.base is not None and recipe.base.tag == recipe.tag
    venv = next(e for e in recipe.base.entries if isinstance(e, images.Tree) and e.path == toolkit.VENV)
    kept = {str(f.relative_to(fake_venv / "lib/python3.11/site-packages")) for f in venv.files()}
    assert kept == {"numpy/__init__.py", "yaml/x.py"}
    prefix = next(e for e in recipe.base.entries if isinstance(e, images.Tree) and e.path != toolkit.VENV)
    names = {str(f.relative_to(prefix.source)) for f in prefix.files()}
    assert not [n for n in names if "/site-packages/" in n or "/test/" in n]
    assert any(n.endswith("/os.py") for n in names)


def test_omit_drops_a_directory_whole_and_keeps_its_namesakes(tmp_path: Path) -> None:
    for rel in ("lib/test/a.py", "lib/pkg/test/b.py", "lib/testing.py", "lib/ok.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("#")
    tree = images.Tree("/x", tmp_path, omit=("lib/test",))
    assert [str(f.relative_to(tmp_path)) for f in tree.files()] == [
        "lib/ok.py",
        "lib/pkg/test/b.py",
        "lib/testing.py",
    ]
