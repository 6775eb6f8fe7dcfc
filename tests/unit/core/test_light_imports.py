"""Release commands start without the heavy extras (no TensorFlow runtime, no Locust, no plots)
and without the test bed (tfsbed): the product stands on its own.

Each check runs in a fresh interpreter and reads its ``sys.modules``, so nothing
imported by the test session can hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tfsctl import paths

HEAVY = ("tensorflow.python", "locust", "gevent", "matplotlib", "oss2")
# What `import tfsctl` and the release commands' help must not load at all.
FORBIDDEN = ("tensorflow", "locust", "tfsbed")


def _heavy_modules_after(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    probe = code + (
        "\nimport json, sys\n"
        f"heavy = {heavy!r}\n"
        "prefixes = tuple(h + '.' for h in heavy)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m in heavy or m.startswith(prefixes))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(paths.REPO_ROOT / "tools"), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_import_tfsctl_loads_no_heavy_module() -> None:
    assert _heavy_modules_after("import tfsctl, tfsctl.cli") == []


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["status", "--help"], ["promote", "--help"], ["deploy", "--help"], ["loadtest", "--help"]],
)
def test_help_of_a_command_loads_no_heavy_module(argv: list[str]) -> None:
    code = (
        "import contextlib, io\n"
        "from tfsctl.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})\n"
    )
    assert _heavy_modules_after(code) == []


def _help_code(argv: list[str]) -> str:
    return (
        "import contextlib, io\n"
        "from tfsctl.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})\n"
    )


def test_import_tfsctl_loads_neither_tensorflow_nor_locust_nor_the_test_bed() -> None:
    assert _heavy_modules_after("import tfsctl, tfsctl.cli", FORBIDDEN) == []


@pytest.mark.parametrize("argv", [["status", "--help"], ["deploy", "--help"]])
def test_release_help_loads_neither_tensorflow_nor_locust_nor_the_test_bed(argv: list[str]) -> None:
    assert _heavy_modules_after(_help_code(argv), FORBIDDEN) == []


def test_the_probe_sees_a_forbidden_module() -> None:
    """The check itself: a module that is loaded is reported."""
    assert _heavy_modules_after("import tfsbed", FORBIDDEN) == ["tfsbed"]
