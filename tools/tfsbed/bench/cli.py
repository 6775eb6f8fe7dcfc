"""CLI cold start: how long a fresh ``tfsctl`` process takes, and that it skips TensorFlow.

Commands that do not run a model must not import the TensorFlow runtime; the
table shows wall time per command (median of several fresh processes) and
whether ``tensorflow.python`` (the runtime) was in ``sys.modules`` at exit.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tfsbed.bench import Table

# Runs the CLI in-process and reports whether the TF runtime got imported.
_PROBE = (
    "import sys\n"
    "from tfsctl.cli import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print('TF_RUNTIME_IMPORTED=%s' % ('tensorflow.python' in sys.modules), file=sys.stderr)\n"
)


def _env() -> dict[str, str]:
    tools = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tools, os.environ.get("PYTHONPATH")]))}


def _time(argv: list[str], runs: int) -> tuple[float, float, str]:
    """(median s, max s, whether TF was imported) over ``runs`` fresh processes."""
    times = []
    imported = "?"
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=_env(), check=False)
        times.append(time.perf_counter() - start)
        for line in result.stderr.splitlines():
            if line.startswith("TF_RUNTIME_IMPORTED="):
                imported = "yes" if line.endswith("True") else "no"
    return statistics.median(times), max(times), imported


def collect(quick: bool) -> list[Table]:
    from tfsbed.serve.testing import LocalServer
    from tfsctl.paths import REPO_ROOT

    runs = 3 if quick else 7
    py = sys.executable
    probe = [py, "-c", _PROBE]
    rows: list[list[str]] = []
    hp2 = REPO_ROOT.parent / "shared" / "testdata" / "tf_serving" / "saved_model_half_plus_two_cpu"
    with LocalServer(model_name="half_plus_two", base_path=hp2) as server:
        commands = {
            "tfsctl --help": [*probe, "--help"],
            "tfsctl model-status (gRPC)": [
                *probe,
                "model-status",
                "half_plus_two",
                "--grpc-port",
                str(server.grpc_port),
            ],
            "tfsctl model-status (REST)": [
                *probe,
                "model-status",
                "half_plus_two",
                "--transport",
                "rest",
                "--rest-port",
                str(server.rest_port),
            ],
            "tfsctl predict (REST)": [
                *probe,
                "predict",
                "half_plus_two",
                "-d",
                "[1.0]",
                "--rest-port",
                str(server.rest_port),
            ],
        }
        for label, argv in commands.items():
            median, worst, imported = _time(argv, runs)
            rows.append([label, f"{median * 1000:.0f}", f"{worst * 1000:.0f}", imported])
    median, worst, _ = _time([py, "-c", "import tensorflow"], max(2, runs // 2))
    rows.append(
        ["python -c 'import tensorflow' (reference)", f"{median * 1000:.0f}", f"{worst * 1000:.0f}", "yes"]
    )
    return [
        Table(
            title="CLI cold start",
            columns=["command", "median ms", "max ms", "TF runtime imported"],
            rows=rows,
            notes=[
                f"{runs} fresh processes each (python {sys.version.split()[0]}), "
                "against a local tfsctl serve; "
                "'TF runtime imported' = tensorflow.python in sys.modules when the command finished.",
            ],
        )
    ]
