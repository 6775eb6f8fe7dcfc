"""``tfsctl serve`` flag handling, through the real CLI (no model is loaded)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsctl", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unknown_flag_exits_2_naming_it() -> None:
    result = _serve("--model_name=m", "--model_base_path=/x", "--rest_port=1")
    assert result.returncode == 2
    assert "tfsctl: error: unknown flag --rest_port" in result.stderr


def test_unsupported_flag_exits_2_with_reason() -> None:
    result = _serve("--model_name=m", "--model_base_path=/x", "--platform_config_file=/tmp/p.pbtxt")
    assert result.returncode == 2
    assert "--platform_config_file is not supported by tfsctl serve (custom platform configs" in result.stderr


def test_missing_model_flags_exit_2() -> None:
    result = _serve("--port=8500")
    assert result.returncode == 2
    assert "give --model_config_file, or --model_name and --model_base_path" in result.stderr


def test_malformed_config_file_reports_the_text_format_error(tmp_path: Path) -> None:
    config = tmp_path / "model_config.pbtxt"
    config.write_text('model_config_list { config { name: "m" base_path: "/m" versions: 3 } }')
    result = _serve(f"--model_config_file={config}")
    assert result.returncode == 2
    assert "Error parsing text-format tensorflow.serving.ModelServerConfig" in result.stderr
    assert 'has no field named "versions"' in result.stderr


def test_labels_at_start_up_fail_like_tf_serving_without_the_allow_flag(
    tmp_path: Path,
) -> None:
    config = tmp_path / "model_config.pbtxt"
    config.write_text(
        'model_config_list { config { name: "m" base_path: "/nonexistent" '
        'version_labels { key: "stable" value: 1 } } }'
    )
    result = _serve(f"--model_config_file={config}", "--port=1")
    assert result.returncode == 1
    assert (
        "Failed to start server. Error: FAILED_PRECONDITION: Request to assign label to version 1 "
        "of model m, which is not currently available for inference"
    ) in result.stderr
