"""``tfsctl cluster up`` on a machine whose build cache is empty: a slow first build is not a timeout.

A real first build of the pinned tools takes about 20 minutes on 2 cores; CI's cache is
warm, so without this test nothing would notice a start deadline that covers the build.
Here an empty ``$TFSCTL_CACHE`` and a fake ``go`` that sleeps before each ``go build``
(then hands back the real binary from the warm cache) make the build alone outlast
``--timeout``; the cluster must still come up, and every build must report its progress
and its own time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tfsbed import toolchain
from tfsctl import paths

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# away from the shared cluster (26400) and the external-cluster test (27400)
PORT_BASE = int(os.environ.get("TFSCTL_E2E_FIRST_BUILD_PORT_BASE", "27600"))
SLEEP_PER_BUILD = 6
START_TIMEOUT = 30  # seconds for the start itself; the 8 fake builds alone take 48


def _real_binaries() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name in ("kubernetes", "etcd", "kwok", "metrics-server"):
        tool = toolchain.TOOLS[name]
        d = toolchain.tool_dir(tool) / "bin"
        if not (toolchain.tool_dir(tool) / ".complete").exists():
            pytest.fail(f"{name} is not built in {d}: run `make cluster-tools` first", pytrace=False)
        found |= {binary: d / binary for binary in tool.binaries}
    return found


def _fake_go(bin_dir: Path, real: dict[str, Path]) -> None:
    """A ``go`` that answers the toolchain's three calls: mod download, mod tidy, build."""
    script = textwrap.dedent(
        f"""\
        #!{sys.executable}
        import json, os, shutil, sys, time
        from pathlib import Path

        REAL = {json.dumps({k: str(v) for k, v in real.items()})}
        args = sys.argv[1:]
        if args[:2] == ["mod", "download"]:
            gomod = Path(os.getcwd()) / "upstream.mod"
            gomod.write_text("module upstream\\n")
            print(json.dumps({{"GoMod": str(gomod)}}))
        elif args[:1] == ["build"]:
            out = Path(args[args.index("-o") + 1])
            time.sleep({SLEEP_PER_BUILD})
            shutil.copy2(REAL[out.name.lstrip(".").removesuffix(".tmp")], out)
        elif args[:2] != ["mod", "tidy"]:
            sys.exit("fake go: unexpected call " + " ".join(args))
        """
    )
    go = bin_dir / "go"
    go.write_text(script)
    go.chmod(0o755)


def test_cluster_up_with_an_empty_cache_builds_first_and_still_starts(tmp_path: Path) -> None:
    real = _real_binaries()
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    _fake_go(fake_bin, real)
    state, kubeconfig = tmp_path / "state", tmp_path / "kubeconfig"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG" and not k.startswith("TFSCTL_")}
    env |= {
        # nothing pinned on PATH, so every tool is "built" by the fake go
        "PATH": f"{fake_bin}:/usr/bin:/bin",
        "TFSCTL_CACHE": str(tmp_path / "cache"),
        "TFSCTL_BIN_DIR": str(tmp_path / "links"),
        "PYTHONPATH": str(paths.REPO_ROOT / "tools"),
    }
    cluster = [sys.executable, "-m", "tfsctl", "cluster"]
    where = ["--port-base", str(PORT_BASE), "--state-dir", str(state), "--kubeconfig", str(kubeconfig)]
    try:
        up = subprocess.run(
            [*cluster, "up", *where, "--real-nodes", "0", "--timeout", str(START_TIMEOUT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=SLEEP_PER_BUILD * len(real) + 300,
        )
        assert up.returncode == 0, f"cluster up failed after a slow first build:\n{up.stderr[-3000:]}"
        for name in ("kubernetes", "etcd", "kwok", "metrics-server"):
            assert f"{name} v{toolchain.TOOLS[name].version}: building from source" in up.stderr
        built = [line for line in up.stderr.splitlines() if ": built " in line]
        assert len(built) == len(real), up.stderr
        assert all(line.rstrip().endswith("s") for line in built)
        assert "ready in" in up.stderr.splitlines()[-1]
        kubectl = tmp_path / "links" / "kubectl"
        nodes = subprocess.run(
            [str(kubectl), "--kubeconfig", str(kubeconfig), "get", "nodes", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        items = json.loads(nodes.stdout)["items"]
        assert items, "no nodes"
        for node in items:
            ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
            assert ready == "True", f"node {node['metadata']['name']} not Ready"
    finally:
        subprocess.run([*cluster, "down", *where], env=env, capture_output=True, text=True, timeout=300)
