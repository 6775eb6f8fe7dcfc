"""Publish one SavedModel version atomically to a local model directory or to OSS.

A server polling ``<model>/`` must never load a half-written version, so:

- **local**: files are copied into a hidden staging directory beside the
  versions (same filesystem; its name is not a number, so TF Serving does not
  see it), fsynced, re-read and compared (size + CRC64), then the directory is
  renamed to ``<version>/`` in one step: a polling server sees the version
  only complete;
- **OSS** (oss2): files go to ``<model>/.tfsctl-staging/<version>/`` with
  oss2's resumable (multipart, checkpointed) upload and CRC64 checks on every
  request; every staged object is then verified (size and
  ``x-oss-hash-crc64ecma`` against the local CRC64), server-side copied into
  ``<model>/<version>/``, each copy verified, and the staging objects deleted.
  TF Serving finds versions by name alone (``FileSystemStoragePathSource``
  parses each child of the base path as a number, whatever it holds), and on
  an object store ``<model>/<version>/`` exists from its first object: a
  server polling with a ``latest``/``all`` policy may try the version before
  the copy completes. ``saved_model.pb`` is copied last, so such an early
  attempt fails cleanly (no SavedModel yet) rather than loading a partial
  model, and the server's load retries (``--max_num_load_retries``, every
  ``--load_retry_interval_micros``) load it once complete; a ``specific``
  policy does not see the version until the config names it. A manifest
  ``<model>/.tfsctl-staging/<version>.json`` (written with
  ``x-oss-forbid-overwrite``, so two publishers cannot claim one version)
  lets an interrupted run resume: re-running the same command (with or
  without ``--version``) skips objects already staged or copied and finishes
  multipart uploads from oss2's checkpoint.

An existing version is never overwritten. Without ``version`` the next free
number (above every integer directory and every staged version) is used.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsctl.errors import CheckFailed, Conflict, InvalidInput, NotFound
from tfsctl.models import oss, repository

log = logging.getLogger(__name__)

LAST_FILES = ("saved_model.pb", "saved_model.pbtxt")
CHUNK = 1 << 20
COPY_OBJECT_LIMIT = 1 << 30  # CopyObject handles up to 1 GiB; above that, UploadPartCopy
DEFAULT_CHECKPOINT_DIR = Path("~/.cache/tfsctl/oss-upload")

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class SourceFile:
    rel: str  # POSIX path relative to the SavedModel directory
    size: int
    crc64: int


@dataclass(frozen=True)
class PublishRequest:
    source: Path
    dest: str
    version: int | None = None
    credentials: oss.Credentials | None = None
    restart: bool = False  # OSS: discard an unfinished upload of different content for this version
    part_size: int = 8 << 20
    multipart_threshold: int = 16 << 20
    num_threads: int = 2
    checkpoint_dir: Path | None = None
    copy_part_size: int = 256 << 20
    copy_object_limit: int = COPY_OBJECT_LIMIT


@dataclass
class PublishResult:
    dest: str  # the version directory or URL
    version: int
    files: int
    bytes: int
    resumed: bool = False
    uploaded_bytes: int = 0


class Progress:
    """What the publisher reports: the total once, then byte increments (a CLI draws a bar)."""

    def start(self, total: int, description: str) -> None:  # pragma: no cover - interface
        pass

    def advance(self, n: int) -> None:  # pragma: no cover - interface
        pass

    def close(self) -> None:  # pragma: no cover - interface
        pass


# ---------------------------------------------------------------- pure decisions


def copy_order(files: Iterable[SourceFile]) -> list[SourceFile]:
    """Files in publish order: everything else first, the SavedModel proto last."""
    return sorted(files, key=lambda f: (f.rel in LAST_FILES, f.rel))


def next_version(occupied: Iterable[int]) -> int:
    return max(occupied, default=0) + 1


def manifest_json(version: int, files: Iterable[SourceFile]) -> bytes:
    entries = [
        {"path": f.rel, "size": f.size, "crc64": str(f.crc64)} for f in sorted(files, key=lambda f: f.rel)
    ]
    return json.dumps({"version": version, "files": entries}, indent=1).encode()


def manifest_files(data: bytes) -> list[SourceFile]:
    doc = json.loads(data)
    return [SourceFile(e["path"], int(e["size"]), int(e["crc64"])) for e in doc["files"]]


def check_version(requested: int | None) -> None:
    if requested is not None and (requested < 0 or requested > 2**63 - 1):
        raise InvalidInput(f"--version {requested}: must be a non-negative int64")


# ---------------------------------------------------------------- source


# CRC-64/XZ (ECMA-182 polynomial, reflected, all-ones xor-out): the x-oss-hash-crc64ecma that
# OSS reports, with the parameters oss2.utils.Crc64 uses; crcmod directly, so a publish to a
# local directory needs no [oss] extra (a unit test checks both agree).
CRC64_ECMA = {"poly": 0x142F0E1EBA9EA3693, "initCrc": 0, "rev": True, "xorOut": 0xFFFFFFFFFFFFFFFF}


def crc64_file(path: Path) -> int:
    import crcmod

    crc = crcmod.Crc(**CRC64_ECMA)
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            crc.update(chunk)
    return int(crc.crcValue)


def scan_source(source: Path) -> list[SourceFile]:
    """Validate ``source`` as one SavedModel version and list its files with CRC64s."""
    if not source.exists():
        raise NotFound(f"SRC {source}: no such directory")
    if not source.is_dir():
        raise InvalidInput(f"SRC {source}: not a directory")
    report = repository.validate(source)
    if report.kind != "version":
        raise InvalidInput(f"SRC {source}: no saved_model.pb (SRC must be one SavedModel version directory)")
    if not report.ok:
        raise InvalidInput(f"SRC {source}: {report.errors[0]}")
    files = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source).as_posix()
        files.append(SourceFile(rel, path.stat().st_size, crc64_file(path)))
    return files


def publish(request: PublishRequest, progress: Progress | None = None) -> PublishResult:
    """Validate the source, then publish it to a local directory or ``oss://`` (see module doc)."""
    check_version(request.version)
    files = scan_source(Path(request.source))
    progress = progress or Progress()
    if oss.is_oss(request.dest):
        url = oss.OssUrl.parse(request.dest)
        if not url.prefix:
            raise InvalidInput(f"DEST {request.dest}: name the model prefix (oss://bucket/path/to/model)")
        creds = request.credentials or oss.load_credentials()
        publisher = OssPublisher(oss.make_bucket(creds, url.bucket), url, request, progress)
        return publisher.publish(files)
    return LocalPublisher(Path(request.dest), request, progress).publish(files)


# ---------------------------------------------------------------- local


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalPublisher:
    def __init__(self, model_dir: Path, request: PublishRequest, progress: Progress) -> None:
        self.model_dir = model_dir
        self.request = request
        self.progress = progress

    def _occupied(self) -> set[int]:
        if not self.model_dir.is_dir():
            return set()
        return {
            v
            for p in self.model_dir.iterdir()
            if p.is_dir() and (v := repository.parse_version(p.name)) is not None
        }

    def publish(self, files: list[SourceFile]) -> PublishResult:
        if self.model_dir.exists() and not self.model_dir.is_dir():
            raise InvalidInput(f"DEST {self.model_dir}: exists and is not a directory")
        occupied = self._occupied()
        version = self.request.version if self.request.version is not None else next_version(occupied)
        target = self.model_dir / str(version)
        if version in occupied:
            raise Conflict(f"version {version} already exists in {self.model_dir}; pick another --version")
        self.model_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{repository.STAGING_PREFIX}-{version}-", dir=self.model_dir))
        os.chmod(staging, 0o755)  # mkdtemp makes 0700; servers often run as another user
        total = sum(f.size for f in files)
        self.progress.start(total, f"{target}")
        try:
            for f in files:
                self._copy(Path(self.request.source) / f.rel, staging / f.rel)
            for d in sorted({p.parent for p in staging.rglob("*")}, key=lambda p: len(p.parts), reverse=True):
                _fsync_dir(d)
            self._verify(staging, files)
            if version in self._occupied():  # someone else published it meanwhile
                raise Conflict(
                    f"version {version} already exists in {self.model_dir}; pick another --version"
                )
            os.rename(staging, target)
            _fsync_dir(self.model_dir)
        finally:
            self.progress.close()
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        log.info("published %s (%d files, %d bytes)", target, len(files), total)
        return PublishResult(str(target), version, len(files), total, uploaded_bytes=total)

    def _copy(self, src: Path, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        with src.open("rb") as fin, dst.open("wb") as fout:
            while chunk := fin.read(CHUNK):
                fout.write(chunk)
                self.progress.advance(len(chunk))
            fout.flush()
            os.fsync(fout.fileno())

    @staticmethod
    def _verify(staging: Path, files: list[SourceFile]) -> None:
        for f in files:
            path = staging / f.rel
            size = path.stat().st_size
            if size != f.size or crc64_file(path) != f.crc64:
                raise CheckFailed(
                    f"{f.rel}: staged copy differs from the source (size or CRC64); nothing published"
                )


# ---------------------------------------------------------------- OSS


class OssPublisher:
    """Staging upload, verification and ordered server-side copy with an ``oss2.Bucket``."""

    def __init__(self, bucket: Any, url: oss.OssUrl, request: PublishRequest, progress: Progress) -> None:
        self.bucket = bucket
        self.url = url
        self.request = request
        self.progress = progress

    # keys
    def staging_prefix(self, version: int) -> str:
        return self.url.key(repository.STAGING_PREFIX, str(version)) + "/"

    def manifest_key(self, version: int) -> str:
        return self.url.key(repository.STAGING_PREFIX, f"{version}.json")

    def final_prefix(self, version: int) -> str:
        return self.url.key(str(version)) + "/"

    def _u(self, key: str) -> str:
        return f"{oss.SCHEME}{self.url.bucket}/{key}"

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import oss2

        try:
            return fn(*args, **kwargs)
        except oss2.exceptions.OssError as exc:
            raise oss.translate(exc, what) from None

    def _list(self) -> dict[str, int]:
        import oss2

        base = self.url.prefix + "/"
        try:
            return {o.key[len(base) :]: int(o.size) for o in oss2.ObjectIteratorV2(self.bucket, prefix=base)}
        except oss2.exceptions.OssError as exc:
            raise oss.translate(exc, str(self.url)) from None

    def _head(self, key: str) -> tuple[int, int | None] | None:
        import oss2

        try:
            head = self.bucket.head_object(key)
        except oss2.exceptions.NotFound:
            return None
        except oss2.exceptions.OssError as exc:
            raise oss.translate(exc, self._u(key)) from None
        return int(head.content_length), head.server_crc

    def _matches(self, key: str, f: SourceFile) -> bool:
        found = self._head(key)
        return found is not None and found == (f.size, f.crc64)

    # plan
    def _staged_manifests(self, listing: dict[str, int]) -> dict[int, list[SourceFile] | None]:
        staged: dict[int, list[SourceFile] | None] = {}
        head = repository.STAGING_PREFIX + "/"
        for rel in listing:
            if rel.startswith(head) and rel.endswith(".json") and "/" not in rel[len(head) :]:
                version = repository.parse_version(rel[len(head) : -len(".json")])
                if version is None:
                    continue
                data = self._call(
                    self._u(self.url.key(rel)), self.bucket.get_object, self.url.key(rel)
                ).read()
                try:
                    staged[version] = manifest_files(data)
                except (ValueError, KeyError, TypeError):
                    staged[version] = None
        return staged

    def _choose(self, files: list[SourceFile], listing: dict[str, int]) -> tuple[int, bool]:
        occupied = repository.occupied_versions(listing)
        staged = self._staged_manifests(listing)
        wanted = sorted(files, key=lambda f: f.rel)
        requested = self.request.version
        if requested is None:
            same = [
                v for v, m in staged.items() if m is not None and sorted(m, key=lambda f: f.rel) == wanted
            ]
            if same:
                return min(same), True
            return next_version(occupied | set(staged)), False
        if requested in staged:
            manifest = staged[requested]
            if manifest is not None and sorted(manifest, key=lambda f: f.rel) == wanted:
                return requested, True
            if not self.request.restart:
                raise Conflict(
                    f"version {requested}: an unfinished upload of different content is staged at "
                    f"{self._u(self.staging_prefix(requested))}; pass --restart to discard it"
                )
            self._discard(requested, listing)
        if requested in occupied:
            raise Conflict(f"version {requested} already exists at {self._u(self.final_prefix(requested))}")
        return requested, False

    def _discard(self, version: int, listing: dict[str, int]) -> None:
        staging = self.staging_prefix(version)
        base = self.url.prefix + "/"
        for rel in listing:
            if (base + rel).startswith(staging):
                self._call(self._u(base + rel), self.bucket.delete_object, base + rel)
        self._call(self._u(self.manifest_key(version)), self.bucket.delete_object, self.manifest_key(version))
        log.info("discarded the staged upload of version %d", version)

    # run
    def publish(self, files: list[SourceFile]) -> PublishResult:
        import oss2

        listing = self._list()
        version, resumed = self._choose(files, listing)
        final = self.final_prefix(version)
        done_pb = any(self._matches(final + f.rel, f) for f in files if f.rel in LAST_FILES)
        if resumed:
            log.info("resuming the upload of version %d", version)
            if not done_pb and any(f"{version}/{name}" in listing for name in LAST_FILES):
                raise Conflict(f"version {version} already exists at {self._u(final)} with different content")
        else:
            try:
                self.bucket.put_object(
                    self.manifest_key(version),
                    manifest_json(version, files),
                    headers={"x-oss-forbid-overwrite": "true", "Content-Type": "application/json"},
                )
            except oss2.exceptions.OssError as exc:
                if exc.status == 409:
                    raise Conflict(f"version {version}: another upload claimed it just now; retry") from None
                raise oss.translate(exc, self._u(self.manifest_key(version))) from None
        total = sum(f.size for f in files)
        result = PublishResult(self._u(final), version, len(files), total, resumed=resumed)
        if not done_pb:
            staging = self.staging_prefix(version)
            self.progress.start(total, self._u(final))
            try:
                for f in files:
                    result.uploaded_bytes += self._stage(staging + f.rel, f)
            finally:
                self.progress.close()
            self._verify_staging(staging, files)
            for f in copy_order(files):
                self._copy(staging + f.rel, final + f.rel, f)
        self._cleanup(version)
        log.info("published %s (%d files, %d bytes)", result.dest, len(files), total)
        return result

    def _stage(self, key: str, f: SourceFile) -> int:
        import oss2

        if self._matches(key, f):
            self.progress.advance(f.size)
            return 0
        reported = 0

        def on_progress(consumed: int, total: int | None) -> None:
            nonlocal reported
            if consumed > reported:
                self.progress.advance(consumed - reported)
                reported = consumed

        checkpoints = (self.request.checkpoint_dir or DEFAULT_CHECKPOINT_DIR).expanduser()
        checkpoints.mkdir(parents=True, exist_ok=True)
        path = Path(self.request.source) / f.rel
        try:
            oss2.resumable_upload(
                self.bucket,
                key,
                str(path),
                store=oss2.ResumableStore(root=str(checkpoints), dir="checkpoints"),
                multipart_threshold=self.request.multipart_threshold,
                part_size=self.request.part_size,
                num_threads=self.request.num_threads,
                progress_callback=on_progress,
            )
        except oss2.exceptions.OssError as exc:
            raise oss.translate(exc, f"uploading {f.rel} to {self._u(key)}") from None
        if reported < f.size:
            self.progress.advance(f.size - reported)
        return f.size

    def _verify_staging(self, staging: str, files: list[SourceFile]) -> None:
        for f in files:
            found = self._head(staging + f.rel)
            if found == (f.size, f.crc64):
                continue
            if found is not None:
                self._call(self._u(staging + f.rel), self.bucket.delete_object, staging + f.rel)
            what = (
                "missing"
                if found is None
                else f"size/CRC64 {found[0]}/{found[1]} != local {f.size}/{f.crc64}"
            )
            raise CheckFailed(
                f"{self._u(staging + f.rel)}: staged object {what}; nothing published "
                "(the bad object was removed, re-run to upload it again)"
            )

    def _copy(self, src: str, dst: str, f: SourceFile) -> None:
        if self._matches(dst, f):
            return
        forbid = {"x-oss-forbid-overwrite": "true"} if f.rel in LAST_FILES else {}
        what = f"copying {f.rel} to {self._u(dst)}"
        if f.size <= self.request.copy_object_limit:
            self._call(what, self.bucket.copy_object, self.url.bucket, src, dst, headers=forbid or None)
        else:
            self._multipart_copy(src, dst, f.size, what)
        found = self._head(dst)
        if found != (f.size, f.crc64):
            if f.rel not in LAST_FILES:
                self._call(self._u(dst), self.bucket.delete_object, dst)
            raise CheckFailed(
                f"{self._u(dst)}: copy differs from the source (size/CRC64 {found}); re-run to retry"
            )

    def _multipart_copy(self, src: str, dst: str, size: int, what: str) -> None:
        import oss2

        upload_id = self._call(what, self.bucket.init_multipart_upload, dst).upload_id
        parts = []
        step = self.request.copy_part_size
        for number, start in enumerate(range(0, size, step), start=1):
            end = min(start + step, size) - 1
            res = self._call(
                what, self.bucket.upload_part_copy, self.url.bucket, src, (start, end), dst, upload_id, number
            )
            parts.append(oss2.models.PartInfo(number, res.etag))
        self._call(what, self.bucket.complete_multipart_upload, dst, upload_id, parts)

    def _cleanup(self, version: int) -> None:
        import oss2

        staging = self.staging_prefix(version)
        try:
            for obj in oss2.ObjectIteratorV2(self.bucket, prefix=staging):
                self.bucket.delete_object(obj.key)
            self.bucket.delete_object(self.manifest_key(version))
        except oss2.exceptions.OssError as exc:
            # Published already; a leftover staging prefix is harmless and reported by `models validate`.
            log.warning(
                "could not remove the staging prefix %s: %s", self._u(staging), oss.translate(exc, "cleanup")
            )
