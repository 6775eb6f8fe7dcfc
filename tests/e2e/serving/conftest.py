"""Servers for the serving e2e tests: real ``tfsctl serve`` processes on loopback.

Each test module starts one server (module scope): loading TensorFlow costs
seconds of CPU that the shared machine does not have to spare.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.serving_models import copy_model


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory, tf_serving_testdata: Path) -> Path:
    """Copies of the TF Serving test models (tests may add versions to them)."""
    root = tmp_path_factory.mktemp("models")
    copy_model("saved_model_half_plus_two_2_versions", root / "hp2")
    copy_model("saved_model_half_plus_three", root / "hp3")
    copy_model("saved_model_half_plus_two_tf2_cpu", root / "tf2")
    return root
