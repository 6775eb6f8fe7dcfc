"""The e2e suite runs against an external cluster named by KUBECONFIG and skips only what it lacks.

"The external cluster" here is a second local cluster started beside the default one
(own port base, state dir and kubeconfig under a tmp dir) without a real node
(``--real-nodes 0``): it has kwok's CPU/GPU/ECI nodes and emulated usage, so every preset
and cluster test must run on it except those that need a real node. The suite's fixtures
must use it as it is (start and stop nothing), and tearing it down must leave no
process or port behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from support.cluster_capabilities import SKIP_PREFIX
from tfsbed.cluster import spec as cspec
from tfsbed.cluster.procs import port_in_use
from tfsctl import paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# away from the shared cluster's 26400; override when something else holds it
PORT_BASE = int(os.environ.get("TFSCTL_E2E_EXTERNAL_PORT_BASE", "27400"))
# Lean: every preset's install and dry run, the real-node preset (skipped here) and the cluster
# tests; the TLS and guide-binding modules add time, not fixture paths, so the main run has them.
SUITE = [
    "tests/e2e/presets/test_presets.py",
    "tests/e2e/presets/test_local_preset_real_node.py",
    "tests/e2e/cluster/test_cluster.py",
]
# how a test that needs a real node (``real_node`` fixture, or the local preset's node type) says
# the cluster has none
REAL_NODE_LACKING = "real node"


@dataclass(frozen=True)
class SecondCluster:
    state_dir: Path
    kubeconfig: Path

    def tfsctl(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "tfsctl", "cluster", *args, "--port-base", str(PORT_BASE)]
        argv += ["--state-dir", str(self.state_dir), "--kubeconfig", str(self.kubeconfig)]
        return subprocess.run(
            argv, env=_env(), cwd=paths.REPO_ROOT, capture_output=True, text=True, timeout=timeout
        )


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that picks a cluster, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "KUBECONFIG" and not k.startswith(("TFSCTL_CLUSTER_", "TFSCTL_E2E_", "PYTEST_"))
    }
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(paths.REPO_ROOT / "tools"), env.get("PYTHONPATH")) if p
    )
    env.update(extra)
    return env


def _processes_mentioning(path: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info["pid"] != os.getpid() and any(str(path) in part for part in cmdline):
            found.append(f"{proc.info['pid']}: {' '.join(cmdline)[:120]}")
    return found


@pytest.fixture
def second_cluster(tmp_path: Path) -> Iterator[SecondCluster]:
    sc = SecondCluster(tmp_path / "state", tmp_path / "kubeconfig")
    up = sc.tfsctl("up", "--real-nodes", "0", "--timeout", "300", timeout=420)
    try:
        assert up.returncode == 0, f"second cluster did not start:\n{up.stderr[-3000:]}"
        assert sc.kubeconfig.exists()
        yield sc
    finally:  # idempotent: the test stops it itself to check what is left
        down = sc.tfsctl("down", timeout=300)
        assert down.returncode == 0, f"second cluster did not stop:\n{down.stderr[-3000:]}"


@dataclass(frozen=True)
class Outcome:
    passed: list[str]
    skipped: dict[str, str]  # test id -> reason
    failed: list[str]


def _outcomes(junit: Path) -> Outcome:
    passed: list[str] = []
    skipped: dict[str, str] = {}
    failed: list[str] = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        skip = case.find("skipped")
        if skip is not None:
            skipped[test_id] = skip.get("message", "")
        elif case.find("failure") is not None or case.find("error") is not None:
            failed.append(test_id)
        else:
            passed.append(test_id)
    return Outcome(passed, skipped, failed)


@pytest.mark.timeout(1500)
def test_suite_on_an_external_cluster_runs_all_it_supports_and_skips_only_real_node_tests(
    second_cluster: SecondCluster, tmp_path: Path
) -> None:
    local_state = paths.TOOLS_DIR / "cluster" / "cluster.json"
    local_before = local_state.stat().st_mtime if local_state.exists() else None
    junit = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "pytest", *SUITE, "-q", "-p", "no:cacheprovider", "-rs"]
    argv += [f"--junitxml={junit}", "-o", "junit_family=xunit1"]
    run = subprocess.run(
        argv,
        env=_env(KUBECONFIG=str(second_cluster.kubeconfig)),
        cwd=paths.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    tail = (run.stdout + run.stderr)[-4000:]
    assert run.returncode == 0, f"the suite failed on the external cluster:\n{tail}"
    result = _outcomes(junit)
    assert not result.failed, tail
    assert len(result.passed) > 0, tail
    # every preset's server-side dry-run runs on any cluster; so do the other presets' installs
    assert any("dry_run" in t for t in result.passed), tail
    assert any("installs" in t and "local" not in t for t in result.passed), tail
    assert any("gpu" in t for t in result.passed), "GPU presets/tests must run on kwok GPU nodes"
    assert any("emulated_cpu_usage" in t for t in result.passed), "kwok usage is there: must run"
    # only what needs a real node (there is none) is skipped, each saying so
    assert result.skipped, "the local preset and the real-node tests must be skipped here"
    for test_id, reason in result.skipped.items():
        assert SKIP_PREFIX in reason and REAL_NODE_LACKING in reason, f"{test_id} skipped: {reason}"
    assert "SKIPPED" in run.stdout and SKIP_PREFIX in run.stdout  # -rs shows the reasons to the user
    # the fixtures used the external cluster as it is: the default local cluster was not touched
    assert (local_state.stat().st_mtime if local_state.exists() else None) == local_before

    assert _processes_mentioning(second_cluster.state_dir), "the second cluster should still run"
    down = second_cluster.tfsctl("down", timeout=300)
    assert down.returncode == 0, down.stderr[-3000:]
    assert _processes_mentioning(second_cluster.state_dir) == []
    ports = cspec.Ports(PORT_BASE).by_component
    assert {name: port for name, port in ports.items() if port_in_use(port)} == {}, "ports left in use"
    assert not second_cluster.kubeconfig.exists()
