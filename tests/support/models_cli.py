"""Run ``tfsctl`` in-process through its real entry point (``tfsctl.cli.main``)."""

from __future__ import annotations

from typing import Any

from tfsctl.cli import main


def run_tfsctl(capsys: Any, *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``tfsctl ARGV`` (errors printed as the console script does)."""
    capsys.readouterr()
    try:
        main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:  # pragma: no cover - main always exits
        code = 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err
