"""tests/e2e/serving/FIDELITY.md: every row names a TF Serving source and tests that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[2]
TABLE = TESTS / "e2e" / "serving" / "FIDELITY.md"
_REF = re.compile(r"`([\w/]+\.py)::([\w:]+)`")


def _rows() -> list[list[str]]:
    rows = []
    for line in TABLE.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("| Behaviour") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            rows.append(cells)
    return rows


def _defined(path: Path) -> set[str]:
    """``name`` and ``Class::name`` of every test function and class in ``path``."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    names.add(f"{node.name}::{item.name}")
    return names


def test_the_table_has_rows_of_three_cells() -> None:
    rows = _rows()
    assert len(rows) >= 30
    assert all(len(r) == 3 for r in rows), [r[0] for r in rows if len(r) != 3]


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r[0][:60])
def test_each_row_names_an_upstream_source_and_existing_tests(row: list[str]) -> None:
    behaviour, source, tests = row
    assert re.search(r"`[\w/]+\.(cc|h)`", source), f"{behaviour}: no TF Serving source file"
    refs = _REF.findall(tests)
    assert refs, f"{behaviour}: no test"
    for file, name in refs:
        path = TESTS / file
        assert path.is_file(), f"{behaviour}: {file} does not exist"
        assert name in _defined(path), f"{behaviour}: {file}::{name} is not defined"
        assert name.split("::")[-1].startswith("test"), f"{file}::{name} is not a test"
