"""Images the real node runs, built here and pushed to the local registry.

No image registry is reachable from this machine, so every image a real node
pulls is assembled locally from files that are already here: a static ``pause``
compiled from ``images/pause.c``, Debian's static busybox, the pinned CoreDNS
build. ``umoci`` assembles the OCI image and ``skopeo`` pushes it; nothing here
writes tar or manifest bytes itself.

A recipe's *content digest* covers every file's bytes, mode and place plus the
image config; an image is built once per digest into the tool cache
(``$TFSCTL_CACHE/images/<name>/<digest>``) and only pushed on later runs.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath

from tfsbed import toolchain
from tfsbed.cluster.node import config as nconfig
from tfsctl.errors import Unavailable

LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_DESCRIPTION = "org.opencontainers.image.description"
BUILT_BY = "tfsctl local cluster (built on this machine, not the upstream image)"


@dataclass(frozen=True)
class Entry:
    """One file of an image's single layer: bytes from ``source``, or a symlink to ``link``."""

    path: str
    source: Path | None = None
    mode: int = 0o755
    link: str | None = None

    def fingerprint(self) -> dict[str, object]:
        if self.link is not None:
            return {"path": self.path, "link": self.link}
        assert self.source is not None
        digest = hashlib.sha256(self.source.read_bytes()).hexdigest()
        return {"path": self.path, "sha256": digest, "mode": self.mode}


@dataclass(frozen=True)
class Tree:
    """A host directory placed whole at ``path`` (hard-linked into the build, not copied).

    Its fingerprint is each file's relative path, size and mtime: hashing the bytes of a
    Python environment with TensorFlow (gigabytes) on every ``up`` would cost more than
    the build it saves; a reinstall changes mtimes, so it still rebuilds.
    """

    path: str
    source: Path
    # names: a file is left out when any part of its relative path starts with one
    exclude: tuple[str, ...] = ()
    # glob patterns (fnmatch) of relative paths: a match leaves out that file or directory whole
    omit: tuple[str, ...] = ()

    def _skipped(self, rel: PurePosixPath) -> bool:
        if self.exclude and any(part.startswith(self.exclude) for part in rel.parts):
            return True
        return any(fnmatch.fnmatchcase(str(p), pat) for p in (rel, *rel.parents[:-1]) for pat in self.omit)

    def files(self) -> list[Path]:
        """Files and symlinks under ``source`` (symlinked directories are not entered), sorted;
        a skipped directory is not walked at all (an interpreter prefix holds gigabytes)."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.source):
            here = Path(dirpath)
            rel_here = PurePosixPath(here.relative_to(self.source).as_posix())
            walk = []
            for name in dirnames:
                if self._skipped(rel_here / name):
                    continue
                if (here / name).is_symlink():
                    out.append(here / name)
                else:
                    walk.append(name)
            dirnames[:] = walk
            out += [here / n for n in filenames if not self._skipped(rel_here / n)]
        return sorted(out)

    def fingerprint(self) -> dict[str, object]:
        h = hashlib.sha256()
        for f in self.files():
            st = f.lstat()
            h.update(f"{f.relative_to(self.source)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return {"path": self.path, "tree": h.hexdigest()}


@dataclass(frozen=True)
class Recipe:
    """An image: its upstream name (the one manifests use), its files and its config."""

    ref: str
    entries: tuple[Entry | Tree, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    # An image this one adds a layer to (built and cached on its own), same tag.
    base: Recipe | None = None

    @property
    def name(self) -> str:
        return self.ref.rsplit("/", 1)[-1].split(":")[0]

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]

    def digest(self) -> str:
        """sha256 of everything that decides the image (files, config, name)."""
        doc = {
            "ref": self.ref,
            "entries": sorted((e.fingerprint() for e in self.entries), key=lambda d: str(d["path"])),
            "entrypoint": list(self.entrypoint),
            "cmd": list(self.cmd),
            "user": self.user,
            "labels": dict(sorted(self.labels.items())),
            "env": list(self.env),
            "base": self.base.digest() if self.base is not None else None,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _labels(description: str) -> dict[str, str]:
    return {LABEL_DESCRIPTION: f"{description}; {BUILT_BY}", "dev.tfsctl.local-image": "true"}


def pause_recipe(binary: Path) -> Recipe:
    return Recipe(
        nconfig.PAUSE_IMAGE,
        (Entry("/pause", binary),),
        entrypoint=("/pause",),
        user="65535:65535",
        labels=_labels("pod sandbox pause process compiled from tfsctl's pause.c"),
    )


def passwd_files(work: Path) -> tuple[Entry, ...]:
    etc = work / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    (etc / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return (Entry("/etc/passwd", etc / "passwd", 0o644), Entry("/etc/group", etc / "group", 0o644))


def busybox_entries(busybox: Path, applets: list[str]) -> list[Entry]:
    """``/bin/busybox`` and a link to it for each of its ``applets`` (``sh``, ``sleep``, ...)."""
    names = sorted({a for a in applets if a and a != "busybox"})
    return [Entry("/bin/busybox", busybox), *(Entry(f"/bin/{a}", link="busybox") for a in names)]


def busybox_recipe(busybox: Path, applets: list[str], extra: tuple[Entry, ...]) -> Recipe:
    return Recipe(
        nconfig.BUSYBOX_IMAGE,
        (*busybox_entries(busybox, applets), *extra),
        cmd=("sh",),
        labels=_labels("busybox from Debian's busybox-static"),
    )


def coredns_recipe(coredns: Path) -> Recipe:
    return Recipe(
        nconfig.COREDNS_IMAGE,
        (Entry("/coredns", coredns),),
        entrypoint=("/coredns",),
        labels=_labels("CoreDNS built from its Go module"),
    )


# -- building (I/O) ------------------------------------------------------------------------------


Progress = Callable[[str], None]


# builds kept per image name: the newest, and a few for other checkouts of other commits
KEEP_BUILDS = 3


def images_cache() -> Path:
    return toolchain.cache_root() / "images"


def _run(cmd: list[str], what: str, timeout: float = 300.0) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise Unavailable(
            f"{what}: {cmd[0]} is not installed (`python3 -m tfsbed.toolchain debian`)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"{what}: {cmd[0]} did not finish within {timeout:.0f}s") from exc
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Unavailable(f"{what} failed: {last[0]}")
    return proc.stdout


def compile_pause() -> Path:
    """``pause`` built with ``gcc -static``, cached by the source and the compiler's version."""
    source = resources.files("tfsbed.cluster.node").joinpath("images/pause.c").read_bytes()
    gcc = shutil.which("gcc")
    if gcc is None:
        raise Unavailable("building the pause image needs gcc: apt-get install -y gcc")
    version = _run([gcc, "--version"], "gcc --version").splitlines()[0]
    key = hashlib.sha256(source + version.encode()).hexdigest()[:16]
    out = images_cache() / "pause-bin" / key / "pause"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.parent / "pause.c"
    src.write_bytes(source)
    tmp = out.parent / ".pause.tmp"
    _run([gcc, "-static", "-Os", "-Wall", "-Werror", "-o", str(tmp), str(src)], "compiling pause.c")
    tmp.rename(out)
    return out


def busybox_applets(busybox: Path) -> list[str]:
    return _run([str(busybox), "--list"], "busybox --list").split()


@dataclass
class Built:
    recipe: Recipe
    layout: Path
    digest: str
    cached: bool
    seconds: float


def build(recipe: Recipe) -> Built:
    """The OCI layout of ``recipe``, built with umoci unless this digest is cached."""
    started = time.monotonic()
    digest = recipe.digest()
    layout = images_cache() / recipe.name / digest[:16]
    if (layout / ".complete").exists():
        os.utime(layout / ".complete")  # used now: the newest are kept (_prune)
        return Built(recipe, layout, digest, True, time.monotonic() - started)
    # other checkouts build and push from this cache at the same time: one builder per image name
    with toolchain.locked(layout.parent / ".lock"):
        if (layout / ".complete").exists():  # built by another process while this one waited
            return Built(recipe, layout, digest, True, time.monotonic() - started)
        _build(recipe, layout)
        _prune(layout.parent, KEEP_BUILDS)
    return Built(recipe, layout, digest, False, time.monotonic() - started)


def _prune(directory: Path, keep: int) -> None:
    """Remove all but the ``keep`` newest builds of one image (the others' checkouts may use them)."""
    builds = sorted(
        (d for d in directory.iterdir() if (d / ".complete").exists()),
        key=lambda d: (d / ".complete").stat().st_mtime,
        reverse=True,
    )
    for old in builds[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in directory.glob("*.tmp"):  # a build that was killed (the lock is held here)
        shutil.rmtree(stale, ignore_errors=True)


def _build(recipe: Recipe, layout: Path) -> None:
    umoci = shutil.which("umoci")
    if umoci is None:
        raise Unavailable("building images needs umoci: apt-get install -y umoci")
    base = build(recipe.base) if recipe.base is not None else None
    shutil.rmtree(layout, ignore_errors=True)
    layout.parent.mkdir(parents=True, exist_ok=True)
    what = f"building image {recipe.ref}"
    with tempfile.TemporaryDirectory(prefix=f"tfsctl-image-{recipe.name}-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        for e in recipe.entries:
            dest = rootfs / e.path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(e, Tree):
                _link_tree(e, dest)
            elif e.link is not None:
                dest.symlink_to(e.link)
            else:
                assert e.source is not None
                shutil.copyfile(e.source, dest)
                os.chmod(dest, e.mode)
        (rootfs / "tmp").mkdir(mode=0o1777, exist_ok=True)
        os.chmod(rootfs / "tmp", 0o1777)
        staging = layout.with_name(layout.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        image = f"{staging}:{recipe.tag}"
        if base is None:
            _run([umoci, "init", "--layout", str(staging)], what)
            _run([umoci, "new", "--image", image], what)
        else:
            if base.recipe.tag != recipe.tag:
                raise ValueError(f"{recipe.ref}: a base image must have the same tag")
            _copy_layout(base.layout, staging)
        _run([umoci, "insert", "--image", image, str(rootfs), "/"], what)
        cfg = [umoci, "config", "--image", image, "--os", "linux", "--architecture", "amd64"]
        cfg += ["--author", "tfsctl", "--created", "1970-01-01T00:00:00Z", "--history.created_by", BUILT_BY]
        for part in recipe.entrypoint:
            cfg += ["--config.entrypoint", part]
        for part in recipe.cmd:
            cfg += ["--config.cmd", part]
        if recipe.user:
            cfg += ["--config.user", recipe.user]
        for k, v in recipe.labels.items():
            cfg += ["--config.label", f"{k}={v}"]
        for kv in recipe.env:
            cfg += ["--config.env", kv]
        _run(cfg, what)
        _run([umoci, "gc", "--layout", str(staging)], what)
        staging.rename(layout)
    (layout / ".complete").write_text(f"{recipe.ref}\n")


def _copy_layout(source: Path, dest: Path) -> None:
    """An OCI layout to build on: blobs hard-linked (content-addressed, never rewritten), the rest copied."""
    for f in sorted(source.rglob("*")):
        target = dest / f.relative_to(source)
        if f.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif f.name != ".complete":
            target.parent.mkdir(parents=True, exist_ok=True)
            if "blobs" in f.relative_to(source).parts:
                os.link(f, target)
            else:
                shutil.copy2(f, target)


def _link_tree(tree: Tree, dest: Path) -> None:
    """Hard-link (same file system) or copy every file of ``tree`` under ``dest``."""
    for f in tree.files():
        target = dest / f.relative_to(tree.source)
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.is_symlink():
            target.symlink_to(os.readlink(f))
            continue
        try:
            os.link(f, target)
        except OSError:
            shutil.copy2(f, target)


def push(built: Built, registry: str) -> str:
    """Copy the built image to the local registry under its mirrored path; returns the destination."""
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise Unavailable("pushing images needs skopeo: apt-get install -y skopeo")
    dest = f"{registry}/{nconfig.mirror_path(built.recipe.ref)}"
    _run(
        [
            skopeo,
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            f"oci:{built.layout}:{built.recipe.tag}",
            f"docker://{dest}",
        ],
        f"pushing {built.recipe.ref} to {dest}",
    )
    return dest


def curl_recipe(ref: str, curl: Path, busybox: Path, applets: list[str], work: Path) -> Recipe:
    """The chart's ``helm test`` image (``tests.image``, curlimages/curl upstream): Debian's curl, its
    libraries and busybox's applets for the test script's ``sh``, ``od``, ``tr`` and ``grep``."""
    version = subprocess.run([str(curl), "--version"], capture_output=True, text=True).stdout.split()[1]
    return Recipe(
        ref,
        (
            *busybox_entries(busybox, applets),
            Entry("/usr/bin/curl", curl),
            *(Entry(str(lib), lib.resolve()) for lib in shared_libraries([curl])),
            *passwd_files(work),
        ),
        entrypoint=("/usr/bin/curl",),
        env=("PATH=/usr/bin:/bin",),
        labels=_labels(f"local stand-in for {ref}: Debian's curl {version} with busybox"),
    )


def node_images(coredns: Path) -> list[Recipe]:
    """The recipes every real node needs: the sandbox, busybox, CoreDNS, the chart's test image."""
    bb = Path(toolchain.DEBIAN_PACKAGES["busybox-static"].provides)
    curl = Path(toolchain.DEBIAN_PACKAGES["curl"].provides)
    work = images_cache() / "files"
    return [
        pause_recipe(compile_pause()),
        busybox_recipe(bb, busybox_applets(bb), passwd_files(work)),
        coredns_recipe(coredns),
        curl_recipe(chart_test_image(), curl, bb, busybox_applets(bb), work),
    ]


def chart_test_image() -> str:
    """The chart's ``tests.image`` (the ``helm test`` pod's), fully qualified as containerd pulls it."""
    import yaml

    from tfsctl import paths

    ref = str(yaml.safe_load((paths.CHART_DIR / "values.yaml").read_text())["tests"]["image"])
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    return ref if "." in first or ":" in first else f"docker.io/{ref}"


# -- the TF Serving drop-in -------------------------------------------------------------------------

SERVING_VENV = "/opt/tfsctl"
ENTRYPOINT_SCRIPT = """#!/bin/sh
# The TF Serving image's entrypoint contract: MODEL_NAME and MODEL_BASE_PATH, extra flags appended.
exec tensorflow_model_server --port=8500 --rest_api_port=8501 --model_name="${MODEL_NAME:-model}" \\
  --model_base_path="${MODEL_BASE_PATH:-/models}/${MODEL_NAME:-model}" "$@"
"""
SERVER_SCRIPT = f"""#!/bin/sh
# Local drop-in: this is tfsctl serve (TensorFlow + tfsctl), not TensorFlow Serving's C++ server.
exec {SERVING_VENV}/bin/python -m tfsctl serve "$@"
"""


def chart_app_version() -> str:
    """The chart's ``appVersion``: the tag its default image has, so the drop-in gets it too."""
    import yaml

    from tfsctl import paths

    return str(yaml.safe_load((paths.CHART_DIR / "Chart.yaml").read_text())["appVersion"])


def shared_libraries(binaries: list[Path]) -> list[Path]:
    """Host libraries (outside the trees copied whole) that ``binaries`` load, from ``ldd``."""
    libs: set[str] = set()
    for b in binaries:
        proc = subprocess.run(["ldd", str(b)], capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            parts = line.split()
            path = parts[2] if len(parts) >= 3 and parts[1] == "=>" else parts[0] if parts else ""
            if path.startswith("/") and not path.startswith(("/root/", "/work/", "/opt/")):
                libs.add(path)
    return [Path(p) for p in sorted(libs)]


def serving_recipe(app_version: str, work: Path) -> Recipe:
    """``tensorflow/serving:<appVersion>`` whose ``/usr/bin/tensorflow_model_server`` is ``tfsctl serve``.

    The interpreter (its prefix kept at the same path: CPython is not relocatable), the
    project's virtualenv with tfsctl itself in place of the editable install, the host
    libraries they load, and busybox for ``/bin/sh``.
    """
    import sys

    import tfsbed
    import tfsctl

    prefix = Path(sys.base_prefix)
    venv = Path(sys.prefix)
    site = next(venv.glob("lib/python3*/site-packages"))
    package = Path(tfsctl.__file__).parent
    # `tfsctl serve` is a tfsbed command (its dist-info in the base registers it)
    bed = Path(tfsbed.__file__).parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "tensorflow_model_server").write_text(SERVER_SCRIPT)
    (work / "tf_serving_entrypoint.sh").write_text(ENTRYPOINT_SCRIPT)
    sos = [prefix / "bin" / "python3"]
    sos += [p for p in site.rglob("*.so*") if p.is_file()]
    sos += [p for p in (prefix / "lib").rglob("lib-dynload/*.so") if p.is_file()]
    libs = [Entry(str(lib), lib.resolve()) for lib in shared_libraries(sos)]
    bb = Path(toolchain.DEBIAN_PACKAGES["busybox-static"].provides)
    rel_site = str(site.relative_to(venv))
    base = Recipe(
        f"docker.io/tensorflow/serving-base:{app_version}",
        (
            Tree(str(prefix), prefix, exclude=("__pycache__",)),
            Tree(SERVING_VENV, venv, exclude=("__editable__", "tfsctl-", "__pycache__", ".installed")),
            *libs,
            # the coreutils of TF Serving's Ubuntu image that pods exec: the chart's preStop `sleep`
            *busybox_entries(bb, busybox_applets(bb)),
            *passwd_files(work),
        ),
        env=("PATH=/usr/local/bin:/usr/bin:/bin",),
        labels=_labels("interpreter, virtualenv and libraries under the tfsctl serve drop-in"),
    )
    # tfsctl and tfsbed themselves are the top layer: a code change rebuilds (and the node pulls) only that
    return Recipe(
        f"docker.io/tensorflow/serving:{app_version}",
        (
            Tree(f"{SERVING_VENV}/{rel_site}/tfsctl", package, exclude=("__pycache__",)),
            Tree(f"{SERVING_VENV}/{rel_site}/tfsbed", bed, exclude=("__pycache__",)),
            Entry("/usr/bin/tensorflow_model_server", work / "tensorflow_model_server"),
            Entry("/usr/bin/tf_serving_entrypoint.sh", work / "tf_serving_entrypoint.sh"),
        ),
        entrypoint=("/usr/bin/tf_serving_entrypoint.sh",),
        env=("PATH=/usr/local/bin:/usr/bin:/bin", "MODEL_BASE_PATH=/models", "MODEL_NAME=model"),
        labels=_labels(
            f"local drop-in for tensorflow/serving:{app_version}: /usr/bin/tensorflow_model_server "
            "is `tfsctl serve`, not TensorFlow Serving"
        ),
        base=base,
    )


# -- Locust for `tfsctl loadtest --distributed` -------------------------------------------------------

LOADTEST_REPOSITORY = "docker.io/tfsctl/loadtest"


def loadtest_image(app_version: str) -> str:
    """The ref the local cluster serves; pass it as ``tfsctl loadtest --distributed --image``."""
    return f"{LOADTEST_REPOSITORY}:{app_version}"


LOCUST_SCRIPT = f"""#!/bin/sh
# the venv's own bin/locust names the host's interpreter in its #! line: run the module instead
exec {SERVING_VENV}/bin/python -m locust "$@"
"""


def loadtest_recipe(app_version: str, work: Path) -> Recipe:
    """Locust + tfsctl (what loadtest/Dockerfile builds): the drop-in's base, whose venv holds both.

    Same base as ``serving_recipe`` (its layers are shared on the node); the top layer is the
    tfsctl package and a ``locust`` launcher, with the venv's ``python`` on PATH, run as user 1000.
    """
    import sys

    import tfsctl

    serving = serving_recipe(app_version, work)
    site = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    rel_site = str(site.relative_to(Path(sys.prefix)))
    (work / "locust").write_text(LOCUST_SCRIPT)
    return Recipe(
        loadtest_image(app_version),
        (
            Tree(f"{SERVING_VENV}/{rel_site}/tfsctl", Path(tfsctl.__file__).parent, exclude=("__pycache__",)),
            Entry("/usr/local/bin/locust", work / "locust"),
        ),
        env=(f"PATH=/usr/local/bin:{SERVING_VENV}/bin:/usr/bin:/bin",),
        user="1000:1000",
        labels=_labels("Locust and tfsctl for `tfsctl loadtest --distributed` (loadtest/Dockerfile)"),
        base=serving.base,
    )
