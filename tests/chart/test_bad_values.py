"""The bad-values corpus: every file must be rejected by `helm template` with a message naming the value.

Each file in bad_values/ starts with `# expect: <fragment>`; the fragment must appear in helm's
error and must itself name a key of the file (so a message that names nothing cannot pass).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from support.chart_render import BAD_VALUES_DIR, HelmError, render_chart

pytestmark = pytest.mark.chart

BAD_FILES = sorted(BAD_VALUES_DIR.glob("*.yaml"))


def expectation(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path.name}: first line must be '# expect: <message fragment>'"
    return first.removeprefix("# expect: ").strip()


def test_corpus_has_at_least_40_cases() -> None:
    assert len(BAD_FILES) >= 40


@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.stem)
def test_bad_values_are_rejected_with_a_message_naming_the_value(path: Path) -> None:
    fragment = expectation(path)
    keys = yaml.safe_load(path.read_text()).keys()
    assert any(key in fragment for key in keys), (
        f"{path.name}: the expected message names none of {list(keys)}"
    )
    with pytest.raises(HelmError) as caught:
        render_chart(values_files=[path])
    assert fragment in caught.value.stderr
    if "execution error" in caught.value.stderr:
        message = caught.value.stderr.strip().splitlines()[0]
        assert fragment in message, "validateValues failures must fit on one line"
