"""The product and the test bed stay apart, read from the sources (no module is imported).

- no module of ``tfsctl`` (the product users pip install) imports ``tfsbed`` (the local
  test bed) or the test suite (``tests``, or ``support``/``conftest`` through pytest's path);
- no module under ``tools/`` imports the test suite;
- the product names no ``tfsbed`` module in a string either (a lazy command table or an
  ``importlib.import_module`` argument is an import edge all the same).
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[3] / "tools"
TEST_SUITE = {"tests", "support", "conftest"}
MODULE_PATH = re.compile(r"^tfsbed(\.\w+)*(:\w+)?$")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(TOOLS).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import statement in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            elif node.module:
                yield node.lineno, node.module


def _sources(package: str) -> list[Path]:
    return sorted((TOOLS / package).rglob("*.py"))


def _top(module: str) -> str:
    return module.split(".")[0]


def test_both_packages_are_there() -> None:
    assert _sources("tfsctl"), f"no tfsctl sources under {TOOLS}"
    assert _sources("tfsbed"), f"no tfsbed sources under {TOOLS}"


@pytest.mark.parametrize("path", _sources("tfsctl"), ids=lambda p: str(p.relative_to(TOOLS)))
def test_the_product_imports_neither_the_test_bed_nor_the_tests(path: Path) -> None:
    edges = [(line, m) for line, m in _imports(path) if _top(m) in {"tfsbed", *TEST_SUITE}]
    assert edges == [], f"{path.relative_to(TOOLS)} imports {edges}: the product must not depend on them"


@pytest.mark.parametrize("path", _sources("tfsctl"), ids=lambda p: str(p.relative_to(TOOLS)))
def test_the_product_names_no_test_bed_module_in_a_string(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    named = [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.match(node.value)
    ]
    assert named == [], f"{path.relative_to(TOOLS)} names {named}: commands come through entry points"


@pytest.mark.parametrize("path", sorted(TOOLS.rglob("*.py")), ids=lambda p: str(p.relative_to(TOOLS)))
def test_nothing_under_tools_imports_the_tests(path: Path) -> None:
    edges = [(line, m) for line, m in _imports(path) if _top(m) in TEST_SUITE]
    assert edges == [], f"{path.relative_to(TOOLS)} imports {edges} from the test suite"


def test_the_checker_sees_relative_and_absolute_edges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The AST walk itself: a relative import resolves against the package, a plain one as is."""
    source = TOOLS / "tfsctl" / "release" / "ops.py"
    assert "tfsctl.serving.config" in {m for _, m in _imports(source)}
    sample = tmp_path / "tfsbed" / "cluster" / "node" / "sample.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("from ..spec import Ports\nfrom . import config\n")
    monkeypatch.setattr(sys.modules[__name__], "TOOLS", tmp_path)
    assert [m for _, m in _imports(sample)] == ["tfsbed.cluster.spec", "tfsbed.cluster.node"]


HELM_ADAPTER = TOOLS / "tfsctl" / "release" / "helm.py"


@pytest.mark.parametrize("path", _sources("tfsctl"), ids=lambda p: str(p.relative_to(TOOLS)))
def test_helm_is_reached_only_through_its_adapter(path: Path) -> None:
    """pyhelm3 is imported by tfsctl.release.helm alone, and no module runs helm itself."""
    if path == HELM_ADAPTER:
        return
    tree = ast.parse(path.read_text(), filename=str(path))
    pyhelm3 = [(line, m) for line, m in _imports(path) if _top(m) == "pyhelm3"]
    assert pyhelm3 == [], f"{path.relative_to(TOOLS)} imports pyhelm3: go through tfsctl.release.helm"
    runs_helm = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and any(isinstance(a, ast.Constant) and a.value == "helm" for a in ast.walk(node))
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"run", "Popen", "check_output", "call"}
    ]
    assert runs_helm == [], f"{path.relative_to(TOOLS)}:{runs_helm} runs helm: go through tfsctl.release.helm"


def test_the_helm_adapter_uses_no_private_pyhelm3_api() -> None:
    tree = ast.parse(HELM_ADAPTER.read_text())
    private = [
        (node.lineno, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "client"
    ]
    assert private == [], f"tfsctl.release.helm reaches into pyhelm3's privates: {private}"
