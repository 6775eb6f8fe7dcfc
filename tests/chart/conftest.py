"""Chart suite fixtures: the pinned helm binary (built on first use if missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.chart_render import HELM, HELM_DOCS, ensure_tool


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.chart)


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm (``.tools/bin/helm``); built through ``tfsbed.toolchain`` when absent."""
    return ensure_tool(HELM, "helm")


@pytest.fixture(scope="session")
def helm_docs() -> Path:
    """The pinned helm-docs (``.tools/bin/helm-docs``); built through ``tfsbed.toolchain`` when absent."""
    return ensure_tool(HELM_DOCS, "helm-docs")
