from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support.load_servers import example_models, fashion_config
from tfsbed.serve.testing import LocalServer


@pytest.fixture(scope="session")
def fashion_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return example_models(tmp_path_factory.mktemp("load-models"))


@pytest.fixture(scope="module")
def fashion_server(fashion_models: Path) -> Iterator[LocalServer]:
    """``tfsctl serve`` with fashion versions 1 and 2, labels stable -> 1 and canary -> 2."""
    with LocalServer(config=fashion_config(fashion_models), allow_labels_for_unavailable=True) as server:
        yield server
