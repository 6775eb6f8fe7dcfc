"""The bad-values corpus through ``tfsctl validate``: one stderr line naming the value, exit 7.

tests/chart/test_bad_values.py holds helm to each file's ``# expect:`` fragment; this holds
``tfsctl validate`` to the same fragment, as a user reads it. The chart's own rules come back
word for word (helm's ``execution error at (...): <message>`` line, not its "Use --debug
flag" trailer); schema failures name the value as a dotted path (``/server/grpcPort`` is
``server.grpcPort``) because tfsctl checks the schema itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.chart_render import BAD_VALUES_DIR
from support.models_cli import run_tfsctl

pytestmark = pytest.mark.chart

BAD_FILES = sorted(BAD_VALUES_DIR.glob("*.yaml"))
HELM_ADDITIONAL = re.compile(r"additional properties (.+) not allowed")


def expected_words(path: Path) -> list[str]:
    """What the one line must contain, from the file's ``# expect: <fragment>``."""
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <message fragment>'"
    fragment = first.removeprefix("# expect: ").strip()
    if fragment.startswith("/"):
        return [".".join(fragment.strip("/").split("/"))]
    additional = HELM_ADDITIONAL.search(fragment)
    if additional:
        return [name.strip() for name in additional.group(1).split(",")]
    return [fragment]


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_validate_names_the_value_in_one_line(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_tfsctl(capsys, "validate", "-f", str(path))
    lines = err.splitlines()
    assert len(lines) == 1, f"{path.name}: want one line on stderr, got:\n{err}"
    assert lines[0].startswith("tfsctl: error: "), err
    missing = [w for w in expected_words(path) if w not in lines[0]]
    assert not missing, f"{path.name}: the line lacks {missing}: {lines[0]}"
    assert "--debug" not in lines[0]
    assert code == 7, err
