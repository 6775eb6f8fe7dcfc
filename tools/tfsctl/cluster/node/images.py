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
from pathlib import Path

from tfsctl import toolchain
from tfsctl.cluster.node import config as nconfig
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
class Recipe:
    """An image: its upstream name (the one manifests use), its files and its config."""

    ref: str
    entries: tuple[Entry, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    user: str = ""
    labels: dict[str, str] = field(default_factory=dict)

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


def busybox_recipe(busybox: Path, applets: list[str], extra: tuple[Entry, ...]) -> Recipe:
    entries = [Entry("/bin/busybox", busybox)]
    entries += [Entry(f"/bin/{a}", link="busybox") for a in sorted(set(applets)) if a and a != "busybox"]
    return Recipe(
        nconfig.BUSYBOX_IMAGE,
        (*entries, *extra),
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


def images_cache() -> Path:
    return toolchain.cache_root() / "images"


def _run(cmd: list[str], what: str, timeout: float = 300.0) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as exc:
        raise Unavailable(
            f"{what}: {cmd[0]} is not installed (`python3 -m tfsctl.toolchain debian`)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"{what}: {cmd[0]} did not finish within {timeout:.0f}s") from exc
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Unavailable(f"{what} failed: {last[0]}")
    return proc.stdout


def compile_pause() -> Path:
    """``pause`` built with ``gcc -static``, cached by the source and the compiler's version."""
    source = resources.files("tfsctl.cluster.node").joinpath("images/pause.c").read_bytes()
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
        return Built(recipe, layout, digest, True, time.monotonic() - started)
    umoci = shutil.which("umoci")
    if umoci is None:
        raise Unavailable("building images needs umoci: apt-get install -y umoci")
    shutil.rmtree(layout, ignore_errors=True)
    layout.parent.mkdir(parents=True, exist_ok=True)
    what = f"building image {recipe.ref}"
    with tempfile.TemporaryDirectory(prefix=f"tfsctl-image-{recipe.name}-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        for e in recipe.entries:
            dest = rootfs / e.path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if e.link is not None:
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
        _run([umoci, "init", "--layout", str(staging)], what)
        _run([umoci, "new", "--image", image], what)
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
        _run(cfg, what)
        _run([umoci, "gc", "--layout", str(staging)], what)
        staging.rename(layout)
    (layout / ".complete").write_text(f"{recipe.ref}\n")
    return Built(recipe, layout, digest, False, time.monotonic() - started)


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


def node_images(coredns: Path) -> list[Recipe]:
    """The recipes every real node needs: the sandbox, busybox, CoreDNS."""
    bb = Path(toolchain.DEBIAN_PACKAGES["busybox-static"].provides)
    work = images_cache() / "files"
    return [
        pause_recipe(compile_pause()),
        busybox_recipe(bb, busybox_applets(bb), passwd_files(work)),
        coredns_recipe(coredns),
    ]
