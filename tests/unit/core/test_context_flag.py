"""``--context`` (kubectl's): every command that talks to a cluster takes it, and it picks the context."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from support.models_cli import run_tfsctl
from tfsctl.cli import cli

CLUSTER_COMMANDS = [
    "deploy",
    "scale",
    "promote",
    "rollback",
    "status",
    "history",
    "loadtest",
    "verify-autoscaling",
]
KUBECONFIG = """apiVersion: v1
kind: Config
current-context: first
clusters:
- name: first
  cluster: {server: "https://127.0.0.1:9"}
- name: second
  cluster: {server: "https://127.0.0.1:7"}
contexts:
- name: first
  context: {cluster: first, user: u}
- name: second
  context: {cluster: second, user: u}
users:
- name: u
  user: {token: not-a-secret}
"""


@pytest.mark.parametrize("name", CLUSTER_COMMANDS)
def test_every_command_that_talks_to_a_cluster_takes_context_and_kubeconfig(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    opts = {o for p in command.params for o in p.opts}
    assert {"--context", "--kubeconfig"} <= opts, f"tfsctl {name}: {sorted(opts)}"


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    return path


def test_without_context_the_current_context_is_used(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_tfsctl(capsys, "status", "-r", "r", "--kubeconfig", str(kubeconfig))
    assert code == 4, err
    assert "127.0.0.1:9" in err and "127.0.0.1:7" not in err


def test_context_picks_another_context_of_the_kubeconfig(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_tfsctl(
        capsys, "status", "-r", "r", "--kubeconfig", str(kubeconfig), "--context", "second"
    )
    assert code == 4, err
    assert "127.0.0.1:7" in err and "127.0.0.1:9" not in err


def test_an_unknown_context_is_one_line_naming_the_flag(
    kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_tfsctl(
        capsys, "status", "-r", "r", "--kubeconfig", str(kubeconfig), "--context", "nope"
    )
    assert err.strip() == f"tfsctl: error: --context nope: no such context in kubeconfig {kubeconfig}"
    assert code == 3


def test_helm_is_told_the_context() -> None:
    from tfsctl.release.helm import helm_client

    client = helm_client(None, context="second")
    assert client._command._kubecontext == "second"  # pyhelm3 passes it as --kube-context
