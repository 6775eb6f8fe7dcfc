"""``tfsctl canary``: the spec it prints, one line for bad input, exit 0 only on promotion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfsctl.canary import judge as J
from tfsctl.canary import spec as S
from tfsctl.canary.run import CanaryResult
from tfsctl.cli import main


def tfsctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsctl", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_print_spec_is_a_spec_file_with_every_default() -> None:
    proc = tfsctl("canary", "m", "2", "--profile", "regressor", "--bake", "12", "--print-spec")
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)
    assert printed["profile"] == "regressor" and printed["bakeSeconds"] == 12
    assert printed["outputs"]["topK"] is None
    assert S.parse(printed) == S.parse({"profile": "regressor", "bakeSeconds": 12})


def test_a_bad_spec_is_one_line_naming_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("latency:\n  maxP95Ratio: 2\n")
    proc = tfsctl(
        "canary", "m", "2", "--spec", str(path), "--model-config", "x", "--endpoints", "127.0.0.1:9"
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and f"--spec {path}: latency: Additional properties" in proc.stderr


def _result(decision: str) -> CanaryResult:
    spec = S.parse({})
    failed = J.Check("outputs.maxAbsDiff", False, 0.5, 0.01, "<=", "4 of 4 paired inputs")
    ok = J.Check("health", True, None, None, "", "fine")
    checks = (ok,) if decision == "promoted" else (ok, failed)
    result = CanaryResult("m", 2, "memory", 1, None, spec=spec)
    result.decision = decision  # type: ignore[assignment]
    result.verdict = J.Verdict(decision == "promoted", checks)
    result.reason = result.verdict.summary()
    result.stable_after = 2 if decision == "promoted" else 1
    return result


@pytest.mark.parametrize(("decision", "status"), [("promoted", 0), ("reverted", 7)])
def test_exit_zero_only_on_promotion(
    decision: str,
    status: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    import tfsctl.canary.run as run

    seen: dict[str, Any] = {}

    def fake(target: Any, req: Any) -> CanaryResult:
        seen["req"] = req
        return _result(decision)

    monkeypatch.setattr(run, "canary", fake)
    args = ["canary", "m", "2", "--model-config", "c", "--endpoints", "127.0.0.1:9", "-o", "json"]
    with pytest.raises(SystemExit) as exited:
        main([*args, "--report", str(tmp_path), "--max-request-rate", "7"])
    assert exited.value.code == status
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["decision"] == decision and seen["req"].spec.max_request_rate == 7
    assert (tmp_path / "canary.json").is_file() and "<svg" in (tmp_path / "canary.html").read_text()
    if status:
        assert (
            err == "tfsctl: error: canary m 2 reverted: failed check(s) outputs.maxAbsDiff; stable stays 1\n"
        )
    else:
        assert err == ""


def test_the_label_moves_render_the_chart_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each move is a helm upgrade: like promote, canary takes --chart/--version (the chart's Job passes
    them)."""
    import tfsctl.canary.run as run

    seen: dict[str, Any] = {}

    def fake(target: Any, req: Any) -> CanaryResult:
        seen["target"] = target
        return _result("promoted")

    monkeypatch.setattr(run, "canary", fake)
    with pytest.raises(SystemExit) as exited:
        chart = ["--chart", "oci://reg.example/charts/tensorflow-serving", "--version", "0.8.0"]
        main(["canary", "m", "2", "-r", "tfs", *chart, "-o", "json"])
    assert exited.value.code == 0
    assert seen["target"].chart == "oci://reg.example/charts/tensorflow-serving"
    assert seen["target"].chart_version == "0.8.0"
