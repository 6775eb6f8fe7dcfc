"""Bad input ends with one clear message and a way out (real processes, no cluster)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tfsbed.cluster import spec as cspec
from tfsbed.cluster.local import LocalCluster
from tfsbed.cluster.procs import port_in_use
from tfsctl.errors import Unavailable


def _scratch(tmp_path: Path) -> LocalCluster:
    return LocalCluster(
        cspec.ClusterSpec(name="tfsctl-unit", ports=cspec.Ports(28400)),
        state_dir=tmp_path / "state",
        kubeconfig=tmp_path / "kubeconfig",
    )


def test_port_in_use_sees_a_listener_and_not_a_free_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_in_use(port)
    assert not port_in_use(port)


def test_missing_go_toolchain_says_to_install_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFSCTL_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("TFSCTL_BIN_DIR", str(tmp_path / "bin"))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        Unavailable, match=r"cannot provide kubernetes v1\.35\.4: .*'go' is not on PATH.*install Go"
    ):
        _scratch(tmp_path).up(timeout=30)
    assert not (tmp_path / "state" / "kwok").exists()


def test_failed_build_names_the_module_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("go") is None:
        pytest.fail("this test fails a real Go build: install Go >= 1.25 (https://go.dev/dl/)", pytrace=False)
    # a real go that cannot resolve modules: no proxy, empty module cache
    monkeypatch.setenv("TFSCTL_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("TFSCTL_BIN_DIR", str(tmp_path / "bin"))
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomodcache"))
    monkeypatch.setenv("GOFLAGS", "-mod=mod")
    with pytest.raises(Unavailable, match=r"cannot provide kubernetes v1\.35\.4: .*k8s\.io/kubernetes"):
        _scratch(tmp_path).up(timeout=60)
    assert not (tmp_path / "state" / "kwok").exists()
    subprocess.run(["chmod", "-R", "u+w", str(tmp_path)], check=False)


def test_cli_rejects_a_port_base_naming_the_flag() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tfsctl", "cluster", "status", "--port-base", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--port-base" in proc.stderr and proc.stderr.startswith("tfsctl: error:")


def test_cli_rejects_a_real_node_count_naming_the_flag_before_building_anything(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tfsctl", "cluster", "up", "--real-nodes", "9", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("tfsctl: error: --real-nodes: 9 must be between 0 and 8")
    assert list(tmp_path.iterdir()) == []


def test_missing_debian_packages_are_named_with_the_command_that_installs_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tfsbed import toolchain

    monkeypatch.setitem(
        toolchain.DEBIAN_PACKAGES,
        "containerd",
        toolchain.DebianPackage("containerd", "/nonexistent/containerd"),
    )
    monkeypatch.setattr(toolchain.os, "geteuid", lambda: 1000)
    assert toolchain.missing_debian(["containerd"]) == ["containerd"]
    with pytest.raises(toolchain.ToolchainError, match=r"missing: containerd.*apt-get install -y containerd"):
        toolchain.ensure_debian(["containerd"])


def test_the_real_nodes_images_are_built_before_the_start_timeout_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first image build takes minutes; like the tools' build it must not eat ``up``'s timeout."""
    import contextlib

    lc = LocalCluster(cspec.ClusterSpec(real_nodes=1), state_dir=tmp_path / "s", kubeconfig=tmp_path / "k")
    calls: list[str] = []

    class SlowImages:
        def build_images(self) -> list[tuple[object, object]]:
            calls.append("build images")
            return []

    def locked(timeout: float) -> contextlib.AbstractContextManager[None]:
        calls.append(f"start clock ({timeout:g}s)")
        return contextlib.nullcontext()

    monkeypatch.setattr(lc, "ensure_binaries", lambda: calls.append("build tools"))
    monkeypatch.setattr(lc, "_real_nodes", lambda: SlowImages())
    monkeypatch.setattr(lc, "_locked", locked)
    monkeypatch.setattr(lc, "_up", lambda timeout, binaries, tools_s: calls.append(f"start ({timeout:g}s)"))
    lc.up(timeout=30)
    assert calls == ["build tools", "build images", "start clock (30s)", "start (30s)"]
