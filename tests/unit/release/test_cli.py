"""CLI behaviour that needs no server: exit codes and the one-line messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """model_config_list {
  config {
    name: "fashion"
    base_path: "/models/fashion"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
    version_labels { key: "canary" value: 2 }
  }
}
"""
# A loopback port nothing listens on: connections are refused at once.
DEAD = "127.0.0.1:9"


def tfsctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsctl", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def model_config(tmp_path: Path) -> Path:
    path = tmp_path / "models.config"
    path.write_text(CONFIG)
    return path


def test_promote_unknown_model_names_the_model_and_exits_3(model_config: Path) -> None:
    proc = tfsctl("promote", "nope", "stable", "2", "--model-config", str(model_config), "--endpoints", DEAD)
    assert proc.returncode == 3
    assert "model 'nope' is not in" in proc.stderr and "models: fashion" in proc.stderr


def test_promote_unknown_label_names_the_label(model_config: Path) -> None:
    proc = tfsctl("promote", "fashion", "prod", "2", "--model-config", str(model_config), "--endpoints", DEAD)
    assert proc.returncode == 3
    assert "label 'prod' of model fashion" in proc.stderr and "canary, stable" in proc.stderr


def test_promote_rejects_a_label_name_outside_the_toolkit_rule(model_config: Path) -> None:
    proc = tfsctl(
        "promote",
        "fashion",
        "bad-name",
        "2",
        "--create-label",
        "--model-config",
        str(model_config),
        "--endpoints",
        DEAD,
    )
    assert proc.returncode == 2
    assert "'bad-name'" in proc.stderr


def test_promote_with_unreachable_replica_exits_4_and_leaves_config_untouched(model_config: Path) -> None:
    proc = tfsctl(
        "promote", "fashion", "stable", "2", "--model-config", str(model_config), "--endpoints", DEAD
    )
    assert proc.returncode == 4
    assert DEAD in proc.stderr and "unreachable" in proc.stderr
    assert model_config.read_text() == CONFIG


def test_rollback_without_history_says_there_is_nothing_to_roll_back(model_config: Path) -> None:
    proc = tfsctl("rollback", "fashion", "stable", "--model-config", str(model_config), "--endpoints", DEAD)
    assert proc.returncode == 3
    assert "no promotion of fashion@stable recorded" in proc.stderr


def test_mixing_modes_is_a_usage_error(model_config: Path) -> None:
    proc = tfsctl("status", "--release", "tfs", "--model-config", str(model_config), "--endpoints", DEAD)
    assert proc.returncode == 2
    assert "exclusive" in proc.stderr


def test_endpoint_mode_needs_both_flags(model_config: Path) -> None:
    proc = tfsctl("status", "--model-config", str(model_config))
    assert proc.returncode == 2
    assert "--endpoints" in proc.stderr


def test_missing_model_config_file_is_named(tmp_path: Path) -> None:
    proc = tfsctl("status", "--model-config", str(tmp_path / "x.config"), "--endpoints", DEAD)
    assert proc.returncode == 3
    assert "x.config: no such file" in proc.stderr


def test_status_of_unreachable_fleet_flags_the_replica_and_exits_7(model_config: Path) -> None:
    proc = tfsctl("status", "--model-config", str(model_config), "--endpoints", DEAD, "--output", "json")
    assert proc.returncode == 7
    assert '"consistent": false' in proc.stdout
    assert f"{DEAD}: unreachable" in proc.stderr


@pytest.mark.chart
def test_validate_accepts_the_local_preset(repo_root: Path) -> None:
    proc = tfsctl("validate", "-f", str(repo_root / "values" / "local.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")


@pytest.mark.chart
def test_validate_names_the_bad_field(repo_root: Path) -> None:
    proc = tfsctl("validate", "-f", str(repo_root / "values" / "local.yaml"), "--set", "replicaCount=-1")
    assert proc.returncode == 7
    assert "values replicaCount: -1 is less than the minimum of 0" in proc.stderr


@pytest.mark.chart
def test_validate_flags_an_hpa_route_the_ingress_cannot_produce_for_a_release(repo_root: Path) -> None:
    preset = str(repo_root / "values" / "ack-eci-bert-oss.yaml")
    route = "autoscaling.externalMetrics[0].selector.matchLabels.sls\\.ingress\\.route=default-bert-8501"
    args = ["-f", preset, "--set", "autoscaling.externalMetrics[0].name=sls_ingress_qps"]
    args += ["--set", route, "--set", "autoscaling.externalMetrics[0].targetAverageValue=10"]
    proc = tfsctl("validate", *args, "--release", "bert-tfserving", "-n", "default")
    assert proc.returncode == 7
    assert "sls.ingress.route default-bert-8501 is not a route of the chart's Ingress" in proc.stderr
    assert "default-bert-tfserving-tensorflow-serving-8501" in proc.stderr


def test_validate_model_config_label_on_unserved_version(tmp_path: Path) -> None:
    path = tmp_path / "m.config"
    path.write_text(CONFIG.replace("value: 2", "value: 5"))
    proc = tfsctl("validate", "--model-config", str(path))
    assert proc.returncode == 7
    assert "label canary -> 5 but the policy serves [1, 2]" in proc.stderr


def test_validate_model_config_refuses_an_s3_base_path(tmp_path: Path) -> None:
    """tensorflow_model_server 2.7+ has no S3 file system (tensorflow/serving#1963)."""
    path = tmp_path / "m.config"
    path.write_text(CONFIG.replace('"/models/fashion"', '"s3://bucket/models/fashion"'))
    proc = tfsctl("validate", "--model-config", str(path))
    assert proc.returncode == 7
    assert (
        "base_path s3://bucket/models/fashion: tensorflow_model_server 2.7 and later cannot read s3://"
        in (proc.stderr)
    )


def test_bad_set_expression_is_a_usage_error(repo_root: Path) -> None:
    proc = tfsctl("validate", "-f", str(repo_root / "values" / "local.yaml"), "--set", "a[x]=1")
    assert proc.returncode == 7
    assert "not a non-negative integer" in proc.stderr


def test_unreachable_cluster_is_one_clear_error_with_exit_4(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:9"}}]\n'
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {token: x}}]\ncurrent-context: c\n"
    )
    proc = tfsctl(
        "promote", "fashion", "stable", "2", "--release", "tfs", "-n", "tfs", "--kubeconfig", str(kubeconfig)
    )
    assert proc.returncode == 4
    assert proc.stderr.count("\n") == 1
    assert "tfsctl: error: cannot reach the cluster at https://127.0.0.1:9" in proc.stderr
