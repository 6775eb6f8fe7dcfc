"""The CLI shell: command table, version, error handling and start-up cost."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from tfsctl import __version__
from tfsctl.cli import COMMANDS, cli


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfsctl", *args], capture_output=True, text=True)


def test_python_dash_m_prints_the_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"tfsctl, version {__version__}"


def test_help_lists_every_implemented_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "toolchain" in result.output
    for name in COMMANDS:
        if cli._available(name):  # type: ignore[attr-defined]
            assert name in result.output


def test_unknown_command_fails_with_usage_status_and_one_line() -> None:
    proc = run("no-such-command")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "tfsctl: error: No such command 'no-such-command' (see `tfsctl --help`)"


def test_help_does_not_import_tensorflow_grpc_or_kubernetes() -> None:
    code = (
        "import sys; from tfsctl.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'grpc', 'kubernetes'})\n"
        "print('HEAVY', heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
