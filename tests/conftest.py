"""Fixtures shared by every suite. Area fixtures live in each suite's conftest."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_TESTDATA = REPO_ROOT.parent / "shared" / "testdata" / "tf_serving"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tf_serving_testdata() -> Path:
    """The TF Serving project's own test models (../shared/testdata/tf_serving).

    They are not part of this repository (never copied in); CI has them beside the
    clone. When they are absent the conformance tests fail with this message rather
    than skip, because a skipped conformance test is not a passing one.
    """
    if not (SHARED_TESTDATA / "saved_model_half_plus_two_cpu").is_dir():
        pytest.fail(
            f"TF Serving test models not found at {SHARED_TESTDATA}: conformance tests need the "
            "TF Serving project's testdata (tensorflow_serving/servables/tensorflow/testdata) there",
            pytrace=False,
        )
    return SHARED_TESTDATA
