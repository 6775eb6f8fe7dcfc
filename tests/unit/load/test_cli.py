"""CLI input errors: exit 2 and one line naming the flag, before any load or cluster call."""

from __future__ import annotations

import pytest

from support.load_servers import tfsctl


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--shape", "step", "--shape-params", "stepz=2"), "--shape-params stepz: not a parameter of step"),
        (("--duration", "5x"), "--duration '5x': expected e.g. 30s, 2m"),
        (
            ("--model-label", "stable", "--model-version", "2"),
            "--model-label and --model-version are exclusive",
        ),
        (("--shape", "spike", "--shape-params", "spike_at=50s", "--duration", "30s"), "spike_at (50s)"),
    ],
)
def test_loadtest_rejects_bad_options_naming_the_flag(args: tuple[str, ...], message: str) -> None:
    done = tfsctl("loadtest", "--target", "http://127.0.0.1:9", *args, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("tfsctl: error: ")
    assert message in done.stderr


def test_verify_autoscaling_rejects_an_impossible_expectation() -> None:
    done = tfsctl("verify-autoscaling", "--release", "tfs", "--expect-max-replicas-at-least", "0", timeout=60)
    assert done.returncode == 2
    assert "--expect-max-replicas-at-least 0: must be at least 1" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--distributed", "--node-selector", "pool"), "--node-selector 'pool': expected KEY=VALUE"),
        (
            ("--distributed", "--toleration", "k=v:Never"),
            "--toleration 'k=v:Never': expected KEY[=VALUE]:EFFECT",
        ),
        (("--distributed", "--image", "a b"), "--image 'a b': expected an image reference"),
        (
            (
                "--image",
                "x:1",
            ),
            "--image: only with --distributed",
        ),
    ],
)
def test_distributed_placement_flags_reject_bad_values_in_one_line(
    args: tuple[str, ...], message: str
) -> None:
    done = tfsctl("loadtest", "--target", "http://10.0.0.1:9", *args, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("tfsctl: error: ") and done.stderr.count("\n") == 1
    assert message in done.stderr
