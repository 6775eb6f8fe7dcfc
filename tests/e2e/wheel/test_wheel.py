"""The product as users get it: ``make dist``'s wheel in a fresh virtualenv, run outside this checkout.

The wheel is installed without extras (constrained by the lock, so no version drifts
from the suite's), and every command runs from an empty directory with nothing of
the checkout on ``sys.path``: the chart and the locustfile must come from the
package data. One release on the real node goes through validate, deploy,
upload, promote, status, rollback and scale; a command that needs an extra that is
not installed says which one, in one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.cluster_helpers import Cluster
from support.release_cluster import models_pv, module_namespace, release_models_dir
from tfsctl import paths

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.usefixtures("real_node"),
]

RELEASE = "wheel"
FULL = f"{RELEASE}-tensorflow-serving"


@dataclass(frozen=True)
class Installed:
    venv: Path
    cwd: Path
    kubeconfig: Path

    def tfsctl(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        # helm from PATH, as a user has it; nothing of the checkout on sys.path
        env |= {"KUBECONFIG": str(self.kubeconfig), "PATH": f"{paths.TOOLS_DIR / 'bin'}:/usr/bin:/bin"}
        return subprocess.run(
            [str(self.venv / "bin" / "tfsctl"), *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _uv() -> str:
    uv = paths.TOOLS_DIR / "bin" / "uv"
    if not uv.exists():
        pytest.fail("uv is not in .tools/bin: run `make setup`", pytrace=False)
    return str(uv)


@pytest.fixture(scope="module")
def installed(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    built = subprocess.run(
        [_uv(), "build", "-q", "--wheel", "-o", str(dist), str(paths.REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("tfsctl-*.whl")
    venv = root / "venv"
    subprocess.run([_uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    lock = paths.REPO_ROOT / "requirements.lock"
    python = venv / "bin" / "python"
    install = subprocess.run(
        [_uv(), "pip", "install", "-q", "--python", str(python), "-c", str(lock), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    cwd = root / "elsewhere"
    cwd.mkdir()
    return Installed(venv, cwd, cluster.kubeconfig)


def test_the_wheel_carries_the_chart_and_the_locustfile_and_no_checkout(installed: Installed) -> None:
    python = installed.venv / "bin" / "python"
    where = "import json, tfsctl.paths as p; print(json.dumps([str(p.CHART_DIR), str(p.LOCUSTFILE)]))"
    probe = subprocess.run(
        [str(python), "-c", where],
        cwd=installed.cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    chart, locustfile = (Path(p) for p in json.loads(probe.stdout))
    site = installed.venv / "lib"
    assert chart.is_relative_to(site) and (chart / "Chart.yaml").exists(), chart
    assert locustfile.is_relative_to(site) and locustfile.exists(), locustfile
    assert (chart / "values.schema.json").read_text() == (paths.CHART_DIR / "values.schema.json").read_text()
    for extra in ("locust", "matplotlib", "oss2", "tensorflow", "tensorflow_serving", "tfsbed"):
        has = subprocess.run([str(python), "-c", f"import {extra}"], capture_output=True, cwd=installed.cwd)
        assert has.returncode != 0, f"{extra} is installed without its extra"


def test_the_core_installs_without_tensorflow(installed: Installed) -> None:
    listed = subprocess.run(
        [_uv(), "pip", "list", "--format", "json", "--python", str(installed.venv / "bin" / "python")],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {row["name"].lower() for row in json.loads(listed.stdout)}
    assert "tfsctl" in names
    assert not {n for n in names if n.startswith("tensorflow") or n in {"tfsbed", "locust", "grpcio"}}, names


def test_the_test_bed_commands_are_not_in_the_wheel(installed: Installed) -> None:
    shown = installed.tfsctl("--help")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    commands = {line.split()[0] for line in lines if line.startswith("  ") and line.split()}
    assert {"deploy", "promote", "status"} <= commands
    assert not {"serve", "cluster", "demo", "toolchain"} & commands
    done = installed.tfsctl("serve", "--port", "8500")
    assert done.returncode == 2 and "No such command 'serve'" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["loadtest", "--target", "http://127.0.0.1:9", "--duration", "1s"], "load"),
        (["model-status", "fashion", "--grpc-port", "9", "--transport", "grpc"], "grpc"),
    ],
)
def test_a_command_that_needs_a_missing_extra_names_it_in_one_line(
    installed: Installed, argv: list[str], extra: str
) -> None:
    done = installed.tfsctl(*argv)
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0
    assert len(lines) == 1, done.stderr
    assert f"[{extra}] extra" in lines[0] and f"pip install 'tfsctl[{extra}]'" in lines[0]


@pytest.fixture(scope="module")
def release(installed: Installed, cluster: Cluster) -> Iterator[str]:
    # beside the other test models, not under pytest's tmp dir (mode 0700): the pods' non-root
    # user reads this directory through the hostPath PV
    data = paths.TOOLS_DIR / "cluster-data"
    data.mkdir(parents=True, exist_ok=True)
    models = Path(tempfile.mkdtemp(prefix="wheel-models-", dir=data))
    models.chmod(0o755)
    try:
        for version in ("1", "2"):
            shutil.copytree(release_models_dir() / "fashion" / version, models / "fashion" / version)
        with module_namespace(cluster, "e2e-wheel") as ns, models_pv(cluster, ns, f"{FULL}-models", models):
            yield ns
    finally:
        shutil.rmtree(models, ignore_errors=True)


def test_installed_tfsctl_deploys_uploads_promotes_rolls_back_and_scales(
    installed: Installed, release: str, tmp_path: Path
) -> None:
    values = installed.cwd / "values.yaml"
    shutil.copy(paths.VALUES_DIR / "local.yaml", values)
    flags = ["--release", RELEASE, "-n", release, "--timeout", "180"]

    def ok(*args: str) -> subprocess.CompletedProcess[str]:
        done = installed.tfsctl(*args)
        assert done.returncode == 0, f"tfsctl {' '.join(args)}:\n{done.stderr}\n{done.stdout}"
        return done

    ok("validate", "-f", "values.yaml")
    ok("deploy", *flags, "-f", "values.yaml", "--set", "autoscaling.enabled=false")

    # a new version published next to the served ones, atomically, from another directory
    source = tmp_path / "v3"
    shutil.copytree(release_models_dir() / "fashion" / "3", source)
    pv_dir = _pv_dir(installed, release)
    uploaded = ok("upload", str(source), str(pv_dir / "fashion"))
    assert (pv_dir / "fashion" / "3" / "saved_model.pb").exists(), uploaded.stdout

    ok("promote", *flags, "fashion", "canary", "3")
    status = json.loads(ok("status", *flags, "-o", "json").stdout)
    assert status["consistent"] is True, status
    assert {r["models"]["fashion"]["labels"]["canary"] for r in status["replicas"]} == {3}

    ok("rollback", *flags, "fashion", "canary")
    status = json.loads(ok("status", *flags, "-o", "json").stdout)
    assert {r["models"]["fashion"]["labels"]["canary"] for r in status["replicas"]} == {2}

    ok("scale", *flags, "--replicas", "2")
    status = json.loads(ok("status", *flags, "-o", "json").stdout)
    assert len(status["replicas"]) == 2 and status["consistent"] is True, status


def _pv_dir(installed: Installed, namespace: str) -> Path:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(installed.kubeconfig))
    pv = client.CoreV1Api(api).read_persistent_volume(f"{namespace}-models"[:63])
    return Path(pv.spec.host_path.path)
