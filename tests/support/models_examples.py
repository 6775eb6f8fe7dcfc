"""Example model repositories for tests of every area (generated once per session).

``generate_once(base, versions)`` writes ``<base>/fashion/<v>/`` with
``tfsctl.models.example.generate`` and returns the model directory; tests copy
it when they need to mutate it.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def generate_once(base: Path, name: str = "fashion", versions: tuple[int, ...] = (1, 2)) -> Path:
    from tfsctl.models import example

    model_dir = base / name
    if all((model_dir / str(v) / "saved_model.pb").is_file() for v in versions):
        return model_dir
    return example.generate(base, name=name, versions=versions)


def copy_model(model_dir: Path, dest: Path) -> Path:
    """A mutable copy of ``model_dir`` under ``dest``."""
    target = dest / model_dir.name
    shutil.copytree(model_dir, target)
    return target
