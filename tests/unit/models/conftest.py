from __future__ import annotations

from pathlib import Path

import pytest

from support.models_examples import generate_once


@pytest.fixture(scope="session")
def example_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<tmp>/fashion`` with versions 1 and 2 (read-only: copy before mutating)."""
    return generate_once(tmp_path_factory.mktemp("examples"))
