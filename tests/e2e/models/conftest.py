from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.models_examples import generate_once
from support.oss_server import OssServer
from tfsctl.models import oss

SECRET = "oss-test-secret-7d1f0c9e"  # checked never to appear in output or logs


@pytest.fixture(scope="session")
def example_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_once(tmp_path_factory.mktemp("examples"))


@pytest.fixture
def server() -> Iterator[OssServer]:
    with OssServer(access_key_id="test-key-id", access_key_secret=SECRET, buckets=("models",)) as srv:
        yield srv


@pytest.fixture
def credentials(server: OssServer) -> oss.Credentials:
    return oss.Credentials(server.access_key_id, server.access_key_secret, server.endpoint)


@pytest.fixture
def source(example_model: Path, tmp_path: Path) -> Path:
    """Version 2 of the example plus a 1 MiB asset, so it uploads in several 100 KiB parts."""
    src = tmp_path / "src"
    shutil.copytree(example_model / "2", src)
    (src / "assets").mkdir()
    (src / "assets" / "vocab.bin").write_bytes(bytes(range(256)) * 4096)
    return src
