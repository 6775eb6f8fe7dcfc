"""Pinned upstream tools, built from source into a per-version cache.

This module is standard-library only on purpose: the Makefile runs it with the
system Python before the project's virtualenv exists (``python3 -m
tfsbed.toolchain ensure helm``).

Every tool is built once per version into ``$TFSCTL_CACHE/<tool>/<version>``
(default ``~/.cache/tfsctl``) and linked into ``.tools/bin`` of the checkout,
so a fresh clone on a machine that built it before starts in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

KUBERNETES_VERSION = "1.35.4"
_K8S_MINOR = KUBERNETES_VERSION.split(".")[1]


def _k8s_ldflags(version: str) -> list[str]:
    major, minor = version.split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion=v{version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return flags


@dataclass(frozen=True)
class GoTool:
    """A tool built from a Go module at a pinned version.

    ``binaries`` maps the installed binary name to the Go package that builds
    it. ``staging`` names a module whose ``./staging`` replace lines must be
    rewritten to versioned modules (``k8s.io/kubernetes`` is not meant to be
    required by another module; this is the usual workaround).
    """

    name: str
    module: str
    version: str
    binaries: dict[str, str]
    ldflags: list[str] = field(default_factory=list)
    staging_version: str | None = None
    version_args: list[str] = field(default_factory=lambda: ["--version"])
    cgo: bool = False
    # Go build tags (``-tags``), e.g. to leave out optional parts a module builds by default
    tags: list[str] = field(default_factory=list)
    # files of the module's source kept beside the binaries (``share/<path>``, see :func:`data`):
    # upstream's own manifests, so they are read from the pinned version rather than copied here
    data: tuple[str, ...] = ()
    # Build inside a copy of the module's own source tree (``binaries`` then name packages
    # relative to it, ``./cmd/x``), so that its go.mod's replace and exclude directives,
    # which Go ignores in a dependency, apply as in upstream's own build.
    in_module: bool = False
    # Files written into that tree before the build (path relative to the module root):
    # nested modules that the module proxy's zip of the parent leaves out.
    extra_files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PipTool:
    """A tool shipped as a binary inside a PyPI package."""

    name: str
    package: str
    version: str
    binaries: dict[str, str]
    version_args: list[str] = field(default_factory=lambda: ["--version"])


@dataclass(frozen=True)
class DebianPackage:
    """A Debian package the real node needs; ``provides`` is a file that proves it is installed.

    Debian's builds are used as they are (containerd, runc, the CNI plugins); they are
    pinned by the distribution release, not here, so ``version`` is informative only.
    """

    name: str
    provides: str


Tool = GoTool | PipTool

# The one place tool versions are pinned.
TOOLS: dict[str, Tool] = {
    "uv": PipTool("uv", "uv", "0.13.9", {"uv": "bin/uv"}),
    "helm": GoTool(
        "helm",
        "helm.sh/helm/v3",
        "3.21.4",
        {"helm": "helm.sh/helm/v3/cmd/helm"},
        ldflags=[
            "-X helm.sh/helm/v3/internal/version.version=v3.21.4",
            "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
            "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
            f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={_K8S_MINOR}",
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
            f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={_K8S_MINOR}",
        ],
        version_args=["version", "--template", "{{.Version}}"],
    ),
    "helm-docs": GoTool(
        "helm-docs",
        "github.com/norwoodj/helm-docs",
        "1.14.2",
        {"helm-docs": "github.com/norwoodj/helm-docs/cmd/helm-docs"},
        ldflags=["-X main.version=1.14.2"],
    ),
    "kubernetes": GoTool(
        "kubernetes",
        "k8s.io/kubernetes",
        KUBERNETES_VERSION,
        {
            "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
            "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
            "kubectl": "k8s.io/kubernetes/cmd/kubectl",
            "kubelet": "k8s.io/kubernetes/cmd/kubelet",
            "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
        },
        ldflags=_k8s_ldflags(KUBERNETES_VERSION),
        staging_version="0." + KUBERNETES_VERSION.split(".", 1)[1],
    ),
    "etcd": GoTool(
        "etcd",
        "go.etcd.io/etcd/server/v3",
        "3.6.16",
        {"etcd": "go.etcd.io/etcd/server/v3"},
    ),
    "etcdctl": GoTool(
        "etcdctl",
        "go.etcd.io/etcd/etcdctl/v3",
        "3.6.16",
        {"etcdctl": "go.etcd.io/etcd/etcdctl/v3"},
    ),
    "kwok": GoTool(
        "kwok",
        "sigs.k8s.io/kwok",
        "0.8.0",
        {"kwok": "sigs.k8s.io/kwok/cmd/kwok", "kwokctl": "sigs.k8s.io/kwok/cmd/kwokctl"},
        ldflags=[
            "-X sigs.k8s.io/kwok/pkg/consts.Version=v0.8.0",
            f"-X sigs.k8s.io/kwok/pkg/consts.KubeVersion=v{KUBERNETES_VERSION}",
        ],
    ),
    "metrics-server": GoTool(
        "metrics-server",
        "sigs.k8s.io/metrics-server",
        "0.9.0",
        {"metrics-server": "sigs.k8s.io/metrics-server/cmd/metrics-server"},
    ),
    "coredns": GoTool(
        "coredns",
        "github.com/coredns/coredns",
        "1.14.7",
        {"coredns": "github.com/coredns/coredns"},
        ldflags=["-X github.com/coredns/coredns/coremain.GitCommit=v1.14.7"],
        version_args=["-version"],
    ),
    # Debian's prometheus package has no Kubernetes service discovery (removed for client-go's
    # dependencies), so Prometheus is built from its module: only the Kubernetes SD (its
    # `remove_all_sd` + `enable_kubernetes_sd` tags, which also cut the build), no embedded UI
    # (`builtinassets` needs the npm build; the HTTP API is what the bed uses).
    "prometheus": GoTool(
        "prometheus",
        "github.com/prometheus/prometheus",
        "0.316.0",
        {
            "prometheus": "github.com/prometheus/prometheus/cmd/prometheus",
            "promtool": "github.com/prometheus/prometheus/cmd/promtool",
        },
        ldflags=[
            "-X github.com/prometheus/common/version.Version=3.16.0",
            "-X github.com/prometheus/common/version.Branch=HEAD",
        ],
        tags=["remove_all_sd", "enable_kubernetes_sd"],
    ),
    "prometheus-adapter": GoTool(
        "prometheus-adapter",
        "sigs.k8s.io/prometheus-adapter",
        "0.12.0",
        {"prometheus-adapter": "sigs.k8s.io/prometheus-adapter/cmd/adapter"},
    ),
    # MetalLB gives the real nodes' `type: LoadBalancer` Services an address (addons/metallb.py);
    # both binaries as upstream's controller/Dockerfile and speaker/Dockerfile build them.
    "metallb": GoTool(
        "metallb",
        "go.universe.tf/metallb",
        "0.15.2",
        {
            "metallb-controller": "go.universe.tf/metallb/controller",
            "metallb-speaker": "go.universe.tf/metallb/speaker",
        },
        ldflags=[
            "-X go.universe.tf/metallb/internal/version.gitCommit=v0.15.2",
            "-X go.universe.tf/metallb/internal/version.gitBranch=v0.15",
        ],
        # the release manifest (`kustomize build config/native`): CRDs, RBAC, controller, speaker
        data=("config/manifests/metallb-native.yaml",),
    ),
    # The local cluster's Ingress controller (add-on ``traefik``). Built as upstream's
    # Makefile ``binary`` target does (``go build ./cmd/traefik`` in its own tree), because
    # its go.mod replaces gorilla/mux and go-http-auth with Containous forks, excludes a
    # tencentcloud module and points github.com/traefik/traefik/dynamic/ext at the nested
    # module ./pkg/config/dynamic/ext, which the proxy neither serves nor ships in the
    # parent's zip: its two files (go.mod and ext.go, two empty extension-point structs,
    # upstream commit a4a91344ed "Add routing configuration extension points") are written
    # in. The web UI embed (webui/embed.go, ``//go:embed static``) is satisfied by the
    # placeholder that the module ships in webui/static: no dashboard, which the bed does
    # not use. v3.7.11 and later require modules the proxy refuses.
    "traefik": GoTool(
        "traefik",
        "github.com/traefik/traefik/v3",
        "3.7.10",
        {"traefik": "./cmd/traefik"},
        ldflags=["-X github.com/traefik/traefik/v3/pkg/version.Version=v3.7.10"],
        version_args=["version"],
        in_module=True,
        extra_files={
            "pkg/config/dynamic/ext/go.mod": "module github.com/traefik/traefik/dynamic/ext\n\ngo 1.26.0\n",
            "pkg/config/dynamic/ext/ext.go": (
                "package ext\n\n"
                "// HTTP is a dynamic.HTTP extension.\ntype HTTP struct{}\n\n"
                "// Router is a dynamic.Router extension.\ntype Router struct{}\n"
            ),
        },
    ),
    "registry": GoTool(
        "registry",
        "github.com/distribution/distribution/v3",
        "3.1.2",
        {"registry": "github.com/distribution/distribution/v3/cmd/registry"},
        ldflags=["-X github.com/distribution/distribution/v3/version.version=v3.1.2"],
    ),
}

# The real node's Debian packages (``ensure_debian``): runtime, OCI runtime, CNI
# plugins, the busybox image's binary, the image tools, kube-proxy's iptables.
DEBIAN_PACKAGES: dict[str, DebianPackage] = {
    p.name: p
    for p in (
        DebianPackage("containerd", "/usr/bin/containerd"),
        DebianPackage("runc", "/usr/sbin/runc"),
        DebianPackage("containernetworking-plugins", "/usr/lib/cni/bridge"),
        DebianPackage("busybox-static", "/bin/busybox"),
        DebianPackage("umoci", "/usr/bin/umoci"),
        DebianPackage("skopeo", "/usr/bin/skopeo"),
        DebianPackage("iptables", "/usr/sbin/iptables"),
        DebianPackage("nftables", "/usr/sbin/nft"),
        DebianPackage("conntrack", "/usr/sbin/conntrack"),
        DebianPackage("curl", "/usr/bin/curl"),
        DebianPackage("gcc", "/usr/bin/gcc"),
    )
}


class ToolchainError(Exception):
    """A tool could not be provided; the message says why and what to do."""


def cache_root() -> Path:
    """Where built tools are kept: ``$TFSCTL_CACHE`` or ``$XDG_CACHE_HOME/tfsctl``."""
    if env := os.environ.get("TFSCTL_CACHE"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "tfsctl"


def bin_dir() -> Path:
    """The checkout's ``.tools/bin`` (``$TFSCTL_BIN_DIR`` overrides)."""
    return Path(os.environ.get("TFSCTL_BIN_DIR", REPO_ROOT / ".tools" / "bin"))


def tool_dir(tool: Tool) -> Path:
    return cache_root() / tool.name / tool.version


def _log(msg: str) -> None:
    print(f"toolchain: {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` for the block: one builder of a cached thing at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _is_built(tool: Tool) -> bool:
    d = tool_dir(tool)
    data = tool.data if isinstance(tool, GoTool) else ()
    return (
        (d / ".complete").exists()
        and all((d / "bin" / b).exists() for b in tool.binaries)
        and all((d / "share" / f).exists() for f in data)
    )


def _run(cmd: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ToolchainError(f"{what} failed ({' '.join(cmd[:3])} ...):\n{tail}")


def _go() -> str:
    go = shutil.which("go")
    if not go:
        raise ToolchainError(
            "the Go toolchain is needed to build pinned tools but 'go' is not on PATH: "
            "install Go >= 1.25 (https://go.dev/dl/ or your package manager) and retry"
        )
    return go


def _download(go: str, tool: GoTool, env: dict[str, str], work: Path) -> dict[str, str]:
    """``go mod download -json`` of the tool's module: where its ``go.mod`` and source (``Dir``) are."""
    out = subprocess.run(
        [go, "mod", "download", "-json", f"{tool.module}@v{tool.version}"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise ToolchainError(f"downloading {tool.module}@v{tool.version} failed: {out.stderr.strip()}")
    import json

    return dict(json.loads(out.stdout))


def _staging_replaces(go: str, tool: GoTool, env: dict[str, str], work: Path) -> list[str]:
    gomod = Path(_download(go, tool, env, work)["GoMod"]).read_text()
    lines = []
    for line in gomod.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
            lines.append(f"\t{parts[0]} => {parts[0]} v{tool.staging_version}")
    return lines


def _module_source(go: str, tool: GoTool, env: dict[str, str], work: Path) -> Path:
    """A writable copy of the module's source tree in ``work/src``, with ``extra_files`` added."""
    (work / "go.mod").write_text("module tfsctl.local/download\n\ngo 1.22\n")
    src = work / "src"
    shutil.copytree(_download(go, tool, env, work)["Dir"], src)
    for d, _, files in os.walk(src):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    for rel, text in tool.extra_files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    return src


def _build_go(tool: GoTool) -> None:
    go = _go()
    dest = tool_dir(tool)
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-mod=mod")
    env["CGO_ENABLED"] = "1" if tool.cgo else "0"
    with tempfile.TemporaryDirectory(prefix=f"tfsctl-build-{tool.name}-") as tmp:
        work = Path(tmp)
        if tool.in_module:
            _log(f"{tool.name} v{tool.version}: downloading its source tree")
            build_dir = _module_source(go, tool, env, work)
        else:
            build_dir = work
            (work / "go.mod").write_text("module tfsctl.local/build\n\ngo 1.22\n")
            replaces = _staging_replaces(go, tool, env, work) if tool.staging_version else []
            gomod = f"module tfsctl.local/build\n\ngo 1.22\n\nrequire {tool.module} v{tool.version}\n"
            if replaces:
                gomod += "\nreplace (\n" + "\n".join(replaces) + "\n)\n"
            (work / "go.mod").write_text(gomod)
            imports = "\n".join(f'\t_ "{pkg}"' for pkg in sorted(set(tool.binaries.values())))
            (work / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n")
            _log(f"{tool.name} v{tool.version}: resolving modules")
            _run([go, "mod", "tidy", "-e"], work, env, f"resolving {tool.module}")
        _build_binaries(go, tool, env, build_dir, dest)
        if tool.data:
            source = Path(_download(go, tool, env, work)["Dir"])
            for rel in tool.data:
                if not (source / rel).is_file():
                    raise ToolchainError(f"{tool.module}@v{tool.version} has no {rel} (GoTool.data)")
                (dest / "share" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / rel, dest / "share" / rel)


def _build_binaries(go: str, tool: GoTool, env: dict[str, str], work: Path, dest: Path) -> None:
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    total = len(tool.binaries)
    for i, (binary, pkg) in enumerate(tool.binaries.items(), 1):
        if (dest / "bin" / binary).exists():
            # built by an earlier run of the same version (a binary added to a tool
            # later, such as kubelet beside kube-apiserver, builds alone)
            continue
        start = time.monotonic()
        _log(f"{tool.name} v{tool.version}: building {binary} ({i}/{total}), this can take minutes")
        ldflags = " ".join(["-s", "-w", *tool.ldflags])
        out = dest / "bin" / f".{binary}.tmp"
        tags = ["-tags", ",".join(tool.tags)] if tool.tags else []
        _run(
            [go, "build", "-trimpath", *tags, "-ldflags", ldflags, "-o", str(out), pkg],
            work,
            env,
            f"building {binary}",
        )
        out.rename(dest / "bin" / binary)
        _log(f"{tool.name} v{tool.version}: built {binary} in {time.monotonic() - start:.0f}s")


def _build_pip(tool: PipTool) -> None:
    dest = tool_dir(tool)
    _log(f"{tool.name} {tool.version}: installing from PyPI")
    target = dest / "pkg"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            f"{tool.package}=={tool.version}",
        ],
        REPO_ROOT,
        dict(os.environ),
        f"installing {tool.package}",
    )
    (dest / "bin").mkdir(parents=True, exist_ok=True)
    for binary, rel in tool.binaries.items():
        link = dest / "bin" / binary
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target / rel)


def _on_path_at_version(tool: Tool) -> Path | None:
    """The directory of the tool's binaries when PATH already has them at the pinned version."""
    dirs = set()
    for binary in tool.binaries:
        found = shutil.which(binary)
        if not found or Path(found).resolve().is_relative_to(bin_dir().resolve()):
            return None
        try:
            out = subprocess.run([found, *tool.version_args], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if tool.version not in out.stdout + out.stderr:
            return None
        dirs.add(Path(found).parent)
    return dirs.pop() if len(dirs) == 1 else None


def ensure(name: str) -> Path:
    """Build (once) and link the named tool; return the directory holding its binaries.

    A tool already on PATH at the pinned version (outside .tools/bin) is linked
    instead of built, unless it keeps files of its module source (``GoTool.data``).
    """
    try:
        tool = TOOLS[name]
    except KeyError:
        raise ToolchainError(f"unknown tool {name!r}; known: {', '.join(TOOLS)}") from None
    dest = tool_dir(tool)
    keeps_data = isinstance(tool, GoTool) and bool(tool.data)
    if not _is_built(tool) and not keeps_data and (found := _on_path_at_version(tool)) is not None:
        _log(f"{tool.name} v{tool.version}: using {found} from PATH")
        _link(tool, found)
        return found
    if not _is_built(tool):
        with locked(cache_root() / f".{tool.name}.lock"):
            if not _is_built(tool):
                started = time.monotonic()
                if isinstance(tool, GoTool):
                    _build_go(tool)
                else:
                    _build_pip(tool)
                (dest / ".complete").write_text(f"{time.monotonic() - started:.1f}\n")
                _log(f"{tool.name} v{tool.version}: ready in {dest}")
    _link(tool, dest / "bin")
    return dest / "bin"


def _link(tool: Tool, source_dir: Path) -> None:
    links = bin_dir()
    links.mkdir(parents=True, exist_ok=True)
    for binary in tool.binaries:
        link = links / binary
        target = source_dir / binary
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)


def missing_debian(names: list[str] | None = None) -> list[str]:
    """The Debian packages (of ``names``, default all) whose proving file is absent."""
    wanted = [DEBIAN_PACKAGES[n] for n in (names or list(DEBIAN_PACKAGES))]
    return [p.name for p in wanted if not Path(p.provides).exists()]


def ensure_debian(names: list[str] | None = None) -> None:
    """Install the missing Debian packages with apt-get (progress on stderr), or say why not."""
    missing = missing_debian(names)
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ToolchainError(
            f"Debian packages missing: {' '.join(missing)}; install them as root: "
            f"apt-get install -y {' '.join(missing)}"
        )
    with locked(cache_root() / ".apt.lock"):
        missing = missing_debian(names)
        if not missing:
            return
        _log(f"installing Debian packages: {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = [apt, "install", "-y", "-q", "--no-install-recommends", *missing]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0 and "Unable to locate package" in proc.stderr:
            _log("package lists are stale: apt-get update")
            subprocess.run([apt, "update", "-q"], env=env, capture_output=True, text=True)
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        still = missing_debian(names)
        if proc.returncode != 0 or still:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ToolchainError(
                f"apt-get install {' '.join(missing)} failed: {last[0]} "
                f"(run `apt-get install -y {' '.join(still or missing)}` to see why)"
            )
        _log(f"installed Debian packages: {' '.join(missing)}")


def data(name: str, path: str) -> Path:
    """A file of a pinned Go tool's module source (one of its ``data``), building the tool if needed."""
    tool = TOOLS.get(name)
    if not isinstance(tool, GoTool) or path not in tool.data:
        raise ToolchainError(f"no pinned Go tool {name!r} keeps {path!r} (GoTool.data)")
    ensure(name)
    return tool_dir(tool) / "share" / path


def binary(name: str) -> Path:
    """Path of a binary from a pinned tool, building the tool if needed."""
    for tool in TOOLS.values():
        if name in tool.binaries:
            return ensure(tool.name) / name
    raise ToolchainError(f"no pinned tool provides {name!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfsbed.toolchain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_ensure = sub.add_parser("ensure", help="build (once) and link tools into .tools/bin")
    p_ensure.add_argument("tools", nargs="+", choices=sorted(TOOLS))
    sub.add_parser("debian", help="install the real node's Debian packages that are missing")
    sub.add_parser("list", help="print pinned tools, versions and whether they are built")
    p_ver = sub.add_parser("version", help="print the pinned version of a tool")
    p_ver.add_argument("tool", choices=sorted(TOOLS))
    args = parser.parse_args(argv)
    try:
        if args.cmd == "ensure":
            for name in args.tools:
                ensure(name)
        elif args.cmd == "debian":
            ensure_debian()
        elif args.cmd == "list":
            for tool in TOOLS.values():
                state = "built" if _is_built(tool) else "not built"
                print(f"{tool.name:16} {tool.version:10} {state:10} {tool_dir(tool)}")
        else:
            print(TOOLS[args.tool].version)
    except ToolchainError as exc:
        print(f"toolchain: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
