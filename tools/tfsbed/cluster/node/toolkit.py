"""The toolkit's own image, ``docker.io/tfsctl/tfsctl:<version>``: what the chart's canary Job runs.

``images/tfsctl/Dockerfile`` describes it for a real cluster (``pip install`` of the
project on ``python:3.11-slim`` plus the pinned helm); with no Docker engine here the
local cluster assembles the same thing with umoci, the way the TF Serving drop-in
(``images.serving_recipe``) is built:

- a **base** image: this machine's interpreter prefix (kept at its path: CPython is not
  relocatable) without its own site-packages, test suite, static library, IDLE or Tk;
  a virtualenv at ``/opt/tfsctl`` with the core's dependencies (``[project]
  dependencies``, no extras: no TensorFlow, gRPC or Locust), pinned by
  ``requirements.lock`` and cached by it; the libraries they load; busybox for
  ``/bin/sh``. Rebuilt only when the lock, the dependencies or the interpreter change.
- a **top** layer: the project's wheel as ``uv build`` makes it (``tfsctl`` with the
  chart as package data, ``setup.py``), the ``tfsctl`` launcher and the pinned helm at
  ``/usr/local/bin/helm``. The wheel carries no test bed (``pyproject.toml`` packages
  only ``tfsctl*``): the product that users install is what the Job runs.

Run as ``1000:1000`` with ``HOME=/tmp``, as the chart's Job does (read-only root, an
emptyDir at ``/tmp`` for helm's and tfsctl's caches).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from tfsbed import toolchain
from tfsbed.cluster.node import images
from tfsctl import __version__, paths
from tfsctl.errors import Unavailable

IMAGE_REPOSITORY = "docker.io/tfsctl/tfsctl"
VENV = "/opt/tfsctl"
USER = "1000:1000"
ENV = (f"PATH={VENV}/bin:/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1")
# What of the interpreter prefix the toolkit never runs (relative to sys.base_prefix).
PREFIX_OMIT = (
    "include",
    "share",
    "lib/pkgconfig",
    "bin/idle*",
    "bin/pydoc*",
    "bin/2to3*",
    "bin/pip*",
    "lib/python3*/site-packages",
    "lib/python3*/test",
    "lib/python3*/config-*",
    "lib/python3*/idlelib",
    "lib/python3*/tkinter",
    "lib/python3*/turtledemo",
    "lib/python3*/ensurepip",
    "lib/python3*/lib2to3",
    "lib/python3*/distutils",
    "lib/python3*/pydoc_data",
    "lib/python3*/lib-dynload/_tkinter*",
    "lib/python3*/lib-dynload/_test*",
    "lib/python3*/lib-dynload/xxlimited*",
)
# Of the dependencies: their test suites, and the kubernetes client's asyncio twin (tfsctl uses the
# synchronous client, tfsctl.kubeclient); half of the package's size.
VENV_OMIT = (
    "lib/python3*/site-packages/*/tests",
    "lib/python3*/site-packages/kubernetes/aio",
    "lib/python3*/site-packages/numpy/_core/include",
    "lib/python3*/site-packages/numpy/f2py",
    "bin/activate*",
)
LAUNCHER = f"""#!{VENV}/bin/python
# tfsctl's console script (pyproject.toml [project.scripts]), as an installer writes it
import sys

from tfsctl.cli import main

sys.exit(main())
"""


def image_ref(version: str = __version__) -> str:
    """The image ``canary.job.image`` names here: repository ``tfsctl/tfsctl``, tag the tfsctl version."""
    return f"{IMAGE_REPOSITORY}:{version}"


def _uv() -> str:
    return str(toolchain.binary("uv"))


def _run(cmd: list[str], what: str, timeout: float = 600.0) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"{what}: {cmd[0]} did not finish within {timeout:.0f}s") from exc
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Unavailable(f"{what} failed: {last[0]}")


def environment_key(root: Path = paths.REPO_ROOT) -> str:
    """What decides the dependencies' virtualenv: the lock, the declared dependencies, the interpreter."""
    h = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml"):
        h.update((root / name).read_bytes())
    h.update(sys.version.encode())
    h.update(toolchain.TOOLS["uv"].version.encode())
    return h.hexdigest()[:16]


def dependencies_venv(root: Path = paths.REPO_ROOT) -> Path:
    """A virtualenv with the core's dependencies (no extras, no tfsctl itself), cached by ``environment_key``.

    ``uv pip install -r pyproject.toml`` reads ``[project] dependencies`` only; the lock
    (``-c``) pins them to the versions the checkout's .venv has.
    """
    out = images.images_cache() / "files" / "tfsctl-venv" / environment_key(root)
    if (out / ".complete").exists():
        return out
    with toolchain.locked(out.parent / ".lock"):
        if (out / ".complete").exists():
            return out
        shutil.rmtree(out, ignore_errors=True)
        python = Path(sys.base_prefix) / "bin" / "python3"
        what = "the toolkit image's virtualenv"
        _run([_uv(), "venv", "-q", "--python", str(python), str(out)], what)
        cmd = [_uv(), "pip", "install", "-q", "--python", str(out / "bin" / "python")]
        cmd += ["-c", str(root / "requirements.lock"), "-r", str(root / "pyproject.toml")]
        _run(cmd, what)
        (out / ".complete").write_text(f"{environment_key(root)}\n")
        for old in out.parent.iterdir():  # one environment per lock: older ones are never used again
            if old.is_dir() and old != out:
                shutil.rmtree(old, ignore_errors=True)
    return out


def build_wheel(work: Path, root: Path = paths.REPO_ROOT) -> Path:
    """The project's wheel unpacked at ``work/wheel-<content digest>``.

    ``uv build`` makes the sdist, then the wheel from it, so nothing stale in the
    checkout's ``build/`` gets in. Unpacked by content: checkouts of other commits build
    from the same cache at the same time, and an unchanged wheel keeps its digest.
    """
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tfsctl-wheel-", dir=work) as tmp:
        dist = Path(tmp) / "dist"
        _run([_uv(), "build", "-q", "--out-dir", str(dist), str(root)], "building the tfsctl wheel")
        wheels = sorted(dist.glob("tfsctl-*.whl"))
        if len(wheels) != 1:
            raise Unavailable(f"building the tfsctl wheel: expected one wheel, found {len(wheels)}")
        unpacked = Path(tmp) / "wheel"
        with zipfile.ZipFile(wheels[0]) as whl:
            whl.extractall(unpacked)
        h = hashlib.sha256()
        for f in sorted(p for p in unpacked.rglob("*") if p.is_file()):
            h.update(f"{f.relative_to(unpacked)}\0".encode() + f.read_bytes())
        out = work / f"wheel-{h.hexdigest()[:16]}"
        if not out.exists():
            with contextlib.suppress(OSError):  # another checkout unpacked the same wheel first
                unpacked.rename(out)
    return out


def toolkit_recipe(work: Path, helm: Path | None = None) -> images.Recipe:
    """``docker.io/tfsctl/tfsctl:<version>``: the wheel over a base of interpreter and dependencies."""
    helm = helm or toolchain.binary("helm")
    work.mkdir(parents=True, exist_ok=True)
    prefix = Path(sys.base_prefix)
    venv = dependencies_venv()
    site = next(venv.glob("lib/python3*/site-packages"))
    rel_site = site.relative_to(venv)
    prefix_tree = images.Tree(str(prefix), prefix, exclude=("__pycache__",), omit=PREFIX_OMIT)
    venv_tree = images.Tree(VENV, venv, exclude=("__pycache__", ".complete", ".lock"), omit=VENV_OMIT)
    sos = [prefix / "bin" / "python3"]
    sos += [f for tree in (prefix_tree, venv_tree) for f in tree.files() if ".so" in f.name and f.is_file()]
    libs = [images.Entry(str(lib), lib.resolve()) for lib in images.shared_libraries(sos)]
    bb = Path(toolchain.DEBIAN_PACKAGES["busybox-static"].provides)
    tag = __version__
    base = images.Recipe(
        f"{IMAGE_REPOSITORY}-base:{tag}",
        (
            prefix_tree,
            venv_tree,
            *libs,
            images.Entry("/bin/busybox", bb),
            images.Entry("/bin/sh", link="busybox"),
            *passwd_files(work),
        ),
        env=ENV,
        labels=images._labels("interpreter and the tfsctl core's dependencies under the toolkit image"),
    )
    wheel = build_wheel(work)
    (work / "tfsctl").write_text(LAUNCHER)
    files = sorted(f for f in wheel.rglob("*") if f.is_file())
    return images.Recipe(
        image_ref(tag),
        (
            *(images.Entry(f"{VENV}/{rel_site}/{f.relative_to(wheel)}", f, 0o644) for f in files),
            images.Entry(f"{VENV}/bin/tfsctl", work / "tfsctl"),
            images.Entry("/usr/local/bin/helm", helm),
        ),
        entrypoint=("tfsctl",),
        user=USER,
        env=ENV,
        labels=images._labels(
            f"tfsctl {tag} (the wheel, core only: no TensorFlow, no test bed) and helm "
            f"{toolchain.TOOLS['helm'].version}, for the chart's canary Job"
        ),
        base=base,
    )


def passwd_files(work: Path) -> tuple[images.Entry, ...]:
    """``/etc/passwd`` and ``/etc/group`` naming the Job's user, so ``getpass`` and helm find a name."""
    etc = work / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\ntfsctl:x:1000:1000:tfsctl:/tmp:/bin/false\n"
        "nobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (etc / "group").write_text("root:x:0:\ntfsctl:x:1000:\nnogroup:x:65534:\n")
    return (
        images.Entry("/etc/passwd", etc / "passwd", 0o644),
        images.Entry("/etc/group", etc / "group", 0o644),
    )
