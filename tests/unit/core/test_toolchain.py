"""The pinned-tool builder: cache layout, PATH reuse and its error messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfsbed import toolchain as tc


def test_cache_root_honours_tfsctl_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TFSCTL_CACHE", str(tmp_path / "c"))
    assert tc.cache_root() == tmp_path / "c"
    assert tc.tool_dir(tc.TOOLS["helm"]) == tmp_path / "c" / "helm" / tc.TOOLS["helm"].version


def test_cache_root_defaults_to_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TFSCTL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert tc.cache_root() == tmp_path / "tfsctl"


def test_every_tool_is_pinned_to_an_exact_version() -> None:
    for tool in tc.TOOLS.values():
        parts = tool.version.split(".")
        assert len(parts) == 3 and all(p.isdigit() for p in parts), tool


def test_kubernetes_is_built_with_its_staging_modules_at_the_matching_version() -> None:
    k8s = tc.TOOLS["kubernetes"]
    assert isinstance(k8s, tc.GoTool)
    assert k8s.staging_version == "0." + tc.KUBERNETES_VERSION.split(".", 1)[1]
    assert f"-X k8s.io/component-base/version.gitVersion=v{tc.KUBERNETES_VERSION}" in k8s.ldflags


def test_helm_reports_the_pinned_version_and_kubernetes_capabilities() -> None:
    helm = tc.binary("helm")
    out = subprocess.run([str(helm), "version", "--template", "{{.Version}}"], capture_output=True, text=True)
    assert out.stdout.strip() == "v" + tc.TOOLS["helm"].version
    # helm must default to the pinned Kubernetes minor so kubeVersion constraints render offline.
    chart = Path(__file__).parent / "_kubeversion_chart"
    rendered = subprocess.run([str(helm), "template", "x", str(chart)], capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    assert "kube: v1." + tc.KUBERNETES_VERSION.split(".")[1] + "." in rendered.stdout


def test_unknown_tool_is_rejected_with_the_known_names() -> None:
    with pytest.raises(tc.ToolchainError, match=r"unknown tool 'nope'; known: uv, helm"):
        tc.ensure("nope")


def test_missing_go_toolchain_says_how_to_get_it(tmp_path: Path) -> None:
    env = {
        "PATH": "/nonexistent",
        "TFSCTL_CACHE": str(tmp_path / "cache"),
        "TFSCTL_BIN_DIR": str(tmp_path / "bin"),
        "HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tfsbed.toolchain", "ensure", "helm-docs"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("toolchain: error: the Go toolchain is needed")
    assert "install Go" in proc.stderr
    assert not (tmp_path / "cache" / "helm-docs" / tc.TOOLS["helm-docs"].version / ".complete").exists()


def test_a_tool_already_on_path_at_the_pinned_version_is_linked_not_built(tmp_path: Path) -> None:
    fake_dir = tmp_path / "path"
    fake_dir.mkdir()
    helm = tc.binary("helm")  # the real pinned helm, copied onto PATH as a user's install would be
    (fake_dir / "helm").write_bytes(helm.read_bytes())
    (fake_dir / "helm").chmod(0o755)
    env = dict(os.environ)
    env.update(
        PATH=f"{fake_dir}:{env['PATH']}",
        TFSCTL_CACHE=str(tmp_path / "cache"),
        TFSCTL_BIN_DIR=str(tmp_path / "bin"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "tfsbed.toolchain", "ensure", "helm"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "using" in proc.stderr and str(fake_dir) in proc.stderr
    assert os.readlink(tmp_path / "bin" / "helm") == str(fake_dir / "helm")
    assert not (tmp_path / "cache" / "helm").exists()


def test_a_binary_added_to_a_built_tool_is_built_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kubelet joining the cached kubernetes build must not rebuild kube-apiserver."""
    calls = tmp_path / "calls"
    fake = tmp_path / "path" / "go"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'if [ "$1" = build ]; then while [ "$1" != -o ]; do shift; done; : > "$2"; fi\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    monkeypatch.setenv("TFSCTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TFSCTL_BIN_DIR", str(tmp_path / "bin"))
    tool = tc.GoTool(
        "demo", "example.com/demo", "1.0.0", {"old": "example.com/demo/old", "new": "example.com/demo/new"}
    )
    monkeypatch.setitem(tc.TOOLS, "demo", tool)
    built = tc.tool_dir(tool) / "bin"
    built.mkdir(parents=True)
    (built / "old").write_text("built earlier")
    tc.ensure("demo")
    builds = [line for line in calls.read_text().splitlines() if line.startswith("build")]
    assert len(builds) == 1 and builds[0].endswith("example.com/demo/new")
    assert (built / "old").read_text() == "built earlier" and (built / "new").exists()
    assert (tc.tool_dir(tool) / ".complete").exists()


def _fake_go(tmp_path: Path, module_dir: Path) -> Path:
    """A ``go`` that "builds" empty binaries and reports ``module_dir`` as the module's source."""
    calls = tmp_path / "calls"
    fake = tmp_path / "path" / "go"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        'if [ "$1" = build ]; then while [ "$1" != -o ]; do shift; done; : > "$2"; fi\n'
        f'if [ "$1" = mod ] && [ "$2" = download ]; then echo \'{{"Dir": "{module_dir}"}}\'; fi\n'
    )
    fake.chmod(0o755)
    return fake


def test_a_tools_module_files_are_kept_beside_its_binaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GoTool.data: upstream's manifests come from the pinned module, read back with data()."""
    module = tmp_path / "mod"
    (module / "config").mkdir(parents=True)
    (module / "config" / "all.yaml").write_text("kind: List\n")
    fake = _fake_go(tmp_path, module)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    monkeypatch.setenv("TFSCTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TFSCTL_BIN_DIR", str(tmp_path / "bin"))
    tool = tc.GoTool(
        "demo", "example.com/demo", "1.0.0", {"d": "example.com/demo/d"}, data=("config/all.yaml",)
    )
    monkeypatch.setitem(tc.TOOLS, "demo", tool)
    path = tc.data("demo", "config/all.yaml")
    assert path == tc.tool_dir(tool) / "share" / "config" / "all.yaml"
    assert path.read_text() == "kind: List\n"
    with pytest.raises(tc.ToolchainError, match=r"no pinned Go tool 'demo' keeps 'other.yaml'"):
        tc.data("demo", "other.yaml")


def test_a_module_file_that_is_not_in_the_module_fails_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_go(tmp_path, tmp_path / "empty-module")
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    monkeypatch.setenv("TFSCTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TFSCTL_BIN_DIR", str(tmp_path / "bin"))
    tool = tc.GoTool("demo", "example.com/demo", "1.0.0", {"d": "example.com/demo/d"}, data=("gone.yaml",))
    monkeypatch.setitem(tc.TOOLS, "demo", tool)
    with pytest.raises(tc.ToolchainError, match=r"example.com/demo@v1.0.0 has no gone.yaml"):
        tc.ensure("demo")
    assert not (tc.tool_dir(tool) / ".complete").exists()


def test_an_in_module_tool_builds_in_a_writable_copy_of_its_source_with_the_extra_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Traefik's case: its go.mod's replace lines name a nested module the proxy's zip leaves out."""
    module = tmp_path / "modcache" / "example.com" / "demo@v1.0.0"
    (module / "cmd" / "demo").mkdir(parents=True)
    (module / "go.mod").write_text("module example.com/demo\n\nreplace example.com/demo/ext => ./ext\n")
    for f in (module / "go.mod", module / "cmd" / "demo"):
        f.chmod(0o555 if f.is_dir() else 0o444)
    module.chmod(0o555)  # the module cache is read-only
    calls = tmp_path / "calls"
    fake = tmp_path / "path" / "go"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$(pwd) $*" >> {calls}\n'
        f'if [ "$1 $2" = "mod download" ]; then echo \'{{"Dir": "{module}"}}\'; fi\n'
        'if [ "$1" = build ]; then\n'
        "  grep -q 'module example.com/demo/ext' ext/go.mod || exit 3\n"
        '  while [ "$1" != -o ]; do shift; done; : > "$2"\n'
        "fi\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    monkeypatch.setenv("TFSCTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TFSCTL_BIN_DIR", str(tmp_path / "bin"))
    tool = tc.GoTool(
        "demo",
        "example.com/demo",
        "1.0.0",
        {"demo": "./cmd/demo"},
        in_module=True,
        extra_files={"ext/go.mod": "module example.com/demo/ext\n"},
    )
    monkeypatch.setitem(tc.TOOLS, "demo", tool)
    try:
        tc.ensure("demo")
    finally:
        module.chmod(0o755)
    lines = calls.read_text().splitlines()
    assert any(" mod download -json example.com/demo@v1.0.0" in line for line in lines)
    (build,) = [line for line in lines if " build " in line]
    cwd = build.split(" ", 1)[0]
    assert cwd != str(module) and build.endswith(" ./cmd/demo")  # built in the copy, by relative package
    assert not any(" mod tidy" in line for line in lines)  # the module's own go.sum decides
    assert not (module / "ext").exists()  # the module cache is left as it was
    assert (tc.tool_dir(tool) / "bin" / "demo").exists() and (tc.tool_dir(tool) / ".complete").exists()
