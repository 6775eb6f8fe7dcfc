"""The misuse corpus, rows that need nothing outside the process (tests/e2e/misuse/corpus.yaml).

Each row runs the real CLI and asserts one stderr line naming what to change, and the exit
status from the table in ``tfsctl --help``. Rows against a server or the cluster run in
tests/e2e/misuse; a cluster that is down is a kubeconfig naming a closed loopback port.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import misuse
from tfsctl.errors import ExitStatus

CORPUS = misuse.load()
# validate -f renders the chart: those rows need the pinned helm, like tests/chart.
ROWS = [
    pytest.param(r, id=r.id, marks=[pytest.mark.chart] if r.run[0] == "validate" and "-f" in r.run else [])
    for r in CORPUS.needing("none")
]


@pytest.fixture(scope="module")
def situation(tmp_path_factory: pytest.TempPathFactory) -> misuse.Situation:
    return misuse.Situation.create(tmp_path_factory.mktemp("misuse"), CORPUS)


def test_corpus_covers_every_command() -> None:
    from tfsctl.cli import COMMANDS

    used = {row.run[0] for row in CORPUS.rows}
    assert set(COMMANDS) - used == set(), "every command needs at least one misuse row"


def test_corpus_rows_have_unique_ids_and_documented_exit_statuses() -> None:
    ids = [row.id for row in CORPUS.rows]
    assert len(ids) == len(set(ids))
    assert {row.exit for row in CORPUS.rows} <= {int(s) for s in ExitStatus}


@pytest.mark.parametrize("row", ROWS)
def test_misuse_gets_one_line_naming_what_to_change(row: misuse.Row, situation: misuse.Situation) -> None:
    misuse.check(row, misuse.run(row, situation), situation)


def test_help_documents_every_exit_status() -> None:
    proc = misuse.run(
        misuse.Row("help", "none", "help", ("--help",), 0, ("x",)), misuse.Situation(Path("."), "")
    )
    for status in ExitStatus:
        assert f"{int(status):>3}  {status.meaning}" in proc.stdout
