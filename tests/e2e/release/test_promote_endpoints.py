"""Endpoint mode end to end: three real ``tfsctl serve`` processes share one model config file."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tfsbed.serve.fleet import Probe, Server, endpoints_flag, fleet, model_config_text
from tfsctl.serving.client import ServingClient
from tfsctl.serving.config import ServerConfig

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tfsctl.models.example import generate

    root = tmp_path_factory.mktemp("models")
    generate(root, "fashion", versions=(1, 2, 3), warmup=False)
    return root


@pytest.fixture
def config_file(tmp_path: Path, model_root: Path) -> Path:
    path = tmp_path / "models.config"
    path.write_text(model_config_text(model_root, (1, 2), {"stable": 1, "canary": 2}))
    return path


def tfsctl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsctl", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def label_versions(servers: list[Server], label: str) -> list[int]:
    out = []
    for s in servers:
        with ServingClient(s.endpoint, timeout=5) as c:
            out.append(c.label_version("fashion", label))
    return out


def test_promote_canary_to_stable_and_roll_back_with_zero_failed_requests(config_file: Path) -> None:
    with fleet(config_file, 3) as servers:
        flags = [
            "--model-config",
            str(config_file),
            "--endpoints",
            endpoints_flag(servers),
            "--timeout",
            "120",
        ]
        probe = Probe(servers)
        probe.start()
        promoted = tfsctl("promote", "fashion", "stable", "2", *flags)
        rolled_back = tfsctl("rollback", "fashion", "stable", *flags)
        time.sleep(1.0)
        probe.stop()
        status = tfsctl("status", *flags, "--output", "json")

        assert promoted.returncode == 0, promoted.stderr
        assert "fashion@stable: promoted 1 -> 2" in promoted.stdout
        assert rolled_back.returncode == 0, rolled_back.stderr
        assert "rolled back 2 -> 1" in rolled_back.stdout
        assert probe.ok > 0
        assert probe.failed == []
        assert label_versions(servers, "stable") == [1, 1, 1]
        config = ServerConfig.parse(config_file.read_text())
        assert config.models["fashion"].labels == {"stable": 1, "canary": 2}
        assert status.returncode == 0, status.stderr
        assert '"consistent": true' in status.stdout
        history = tfsctl(
            "history", "--model-config", str(config_file), "--endpoints", endpoints_flag(servers)
        )
        assert "promote" in history.stdout and "rollback" in history.stdout


def test_promote_to_a_version_absent_from_the_repository_is_refused(config_file: Path) -> None:
    with fleet(config_file, 1) as servers:
        before = config_file.read_text()
        proc = tfsctl(
            "promote",
            "fashion",
            "stable",
            "9",
            "--model-config",
            str(config_file),
            "--endpoints",
            endpoints_flag(servers),
        )
        assert proc.returncode == 3
        assert "version 9 is not in the model repository" in proc.stderr
        assert config_file.read_text() == before


def test_replica_killed_mid_promotion_leaves_the_fleet_consistent(config_file: Path) -> None:
    with fleet(config_file, 3) as servers:
        flags = [
            "--model-config",
            str(config_file),
            "--endpoints",
            endpoints_flag(servers),
            "--timeout",
            "60",
        ]
        before = ServerConfig.parse(config_file.read_text())
        victim = servers[1]

        # Kill one replica as soon as the load step has been written to the shared file.
        def kill_when_loading() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if "versions: 3" in config_file.read_text():
                    victim.kill()
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_when_loading, daemon=True)
        killer.start()
        proc = tfsctl("promote", "fashion", "stable", "3", *flags)
        killer.join(5)
        survivors = [s for s in servers if s is not victim]

        if proc.returncode == 0:
            # The kill came after the last verification: promotion complete on the live replicas.
            assert label_versions(survivors, "stable") == [3, 3]
        else:
            assert proc.returncode in (4, 5)
            assert victim.address in proc.stderr
            assert "restored the pre-promotion state" in proc.stderr or "restore incomplete" in proc.stderr
            assert ServerConfig.parse(config_file.read_text()) == before
            assert label_versions(survivors, "stable") == [1, 1]
            for s in survivors:
                with ServingClient(s.endpoint, timeout=5) as c:
                    assert {r.version for r in c.model_status("fashion") if r.state == "AVAILABLE"} == {1, 2}


def test_second_promotion_waits_for_the_lock_then_refuses(config_file: Path) -> None:
    from tfsctl.errors import Conflict
    from tfsctl.release.store import file_lock

    lock = config_file.with_name(config_file.name + ".lock")
    with file_lock(lock, 1, "test"):
        proc = tfsctl(
            "promote",
            "fashion",
            "stable",
            "2",
            "--model-config",
            str(config_file),
            "--endpoints",
            "127.0.0.1:9",
            "--lock-timeout",
            "1",
        )
    assert proc.returncode == 6
    assert "a promotion is in progress" in proc.stderr
    assert Conflict.exit_status == 6
