"""Ship the chart and the load test inside the wheel, as ``tfsctl/data/``.

They live at the top of the repository (``charts/``, ``loadtest/``) where Helm and
Locust users expect them; an installed ``tfsctl`` finds its copies through
``importlib.resources`` (``tfsctl.paths``). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# destination under tfsctl/data -> source in the repository
PACKAGE_DATA = {
    "chart/tensorflow-serving": "charts/tensorflow-serving",
    "loadtest/locustfile.py": "loadtest/locustfile.py",
    "loadtest/manifests": "loadtest/manifests",
}


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout itself
            return
        data = Path(self.build_lib) / "tfsctl" / "data"
        for dest, src in PACKAGE_DATA.items():
            source, target = ROOT / src, data / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)


setup(cmdclass={"build_py": BuildPyWithData})
