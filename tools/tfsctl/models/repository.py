"""Validate a TF Serving model repository and list its versions (local paths or ``oss://``).

Layout TF Serving expects (``--model_base_path`` / ``base_path`` points at a
model directory)::

    <repository>/<model>/<version>/saved_model.pb
                                  /variables/variables.index, variables.data-*-of-*
                                  /assets.extra/tf_serving_warmup_requests   (optional)

``<version>`` is a non-negative integer (TF Serving parses the directory name
as int64, so ``00000123`` is version 123); other directories are ignored by
the server and reported here as warnings. No TensorFlow runtime is imported:
``saved_model.pb`` and the warmup ``PredictionLog``s are parsed with the
generated protos alone. The checks are pure functions over a ``Store`` (a
listing of relative paths and a reader); ``LocalStore`` and
``tfsctl.models.oss.OssStore`` are the adapters.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol

from tfsctl.errors import InvalidInput, NotFound
from tfsctl.models import tfrecord
from tfsctl.serving import schema

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
VARIABLES_INDEX = "variables/variables.index"
WARMUP_PATH = "assets.extra/tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # tensorflow_serving/servables/tensorflow/saved_model_warmup_util.cc
STAGING_PREFIX = ".tfsctl-staging"
INIT_OP_SIGNATURE = "__saved_model_init_op"
_INT64_MAX = 2**63 - 1
_SHARD = re.compile(r"^variables\.data-(\d{5})-of-(\d{5})$")
_VARIABLE_OPS = frozenset({"VariableV2", "VarHandleOp", "Variable"})
_WARMUP_LOG_TYPES = frozenset({"predict_log", "classify_log", "regress_log", "multi_inference_log"})

Severity = Literal["error", "warning"]
Kind = Literal["repository", "model", "version"]


class Store(Protocol):
    """A tree of files under one root: relative POSIX paths -> sizes, and their bytes."""

    def entries(self) -> dict[str, int]: ...

    def read(self, rel: str) -> bytes: ...

    def display(self, rel: str = "") -> str: ...


class LocalStore:
    """A local directory as a ``Store``; directories are listed with a trailing ``/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def entries(self) -> dict[str, int]:
        if not self.root.is_dir():
            raise NotFound(f"{self.root}: no such directory")
        found: dict[str, int] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            prefix = "" if rel_dir == "." else rel_dir + "/"
            for name in dirnames:
                found[prefix + name + "/"] = 0
            for name in filenames:
                try:
                    found[prefix + name] = (Path(dirpath) / name).stat().st_size
                except FileNotFoundError:  # removed while walking
                    continue
        return found

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def display(self, rel: str = "") -> str:
        return str(self.root / rel) if rel else str(self.root)


@dataclass(frozen=True)
class Problem:
    """One finding: the file or directory it is about, and what is wrong."""

    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else "warning: "
        return f"{tag}{self.path}: {self.message}"


@dataclass
class VersionInfo:
    version: int
    path: str
    signatures: list[str] = field(default_factory=list)
    warmup_records: int | None = None
    complete: bool = True  # has saved_model.pb


@dataclass
class ModelInfo:
    name: str
    path: str
    versions: list[VersionInfo] = field(default_factory=list)


@dataclass
class Report:
    path: str
    kind: Kind
    models: list[ModelInfo] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def parse_version(name: str) -> int | None:
    """The version a directory name stands for, as TF Serving parses it (int64), else None."""
    if not name.isascii() or not name.isdigit():
        return None
    value = int(name)
    return value if value <= _INT64_MAX else None


def open_store(path: str | os.PathLike[str], credentials: Any = None) -> Store:
    """``LocalStore`` for a path, ``OssStore`` for ``oss://bucket/prefix`` (credentials from env if None)."""
    from tfsctl.models import oss

    if oss.is_oss(path):
        url = oss.OssUrl.parse(str(path))
        creds = credentials or oss.load_credentials()
        return oss.OssStore(oss.make_bucket(creds, url.bucket), url)
    return LocalStore(Path(path))


def validate(path: str | os.PathLike[str], *, credentials: Any = None, store: Store | None = None) -> Report:
    """Check a repository, a model directory or one version directory; never raises for findings."""
    store = store or open_store(path, credentials)
    return validate_entries(store, store.entries())


def list_versions(
    path: str | os.PathLike[str], *, credentials: Any = None, store: Store | None = None
) -> list[int]:
    """Versions of a model directory that a server can load (those with a saved_model.pb), ascending."""
    store = store or open_store(path, credentials)
    tree = _Tree(store.entries())
    if _kind(tree) == "repository" and any(not name.startswith(".") for name in tree.children("")):
        raise InvalidInput(f"{store.display()}: not a model directory (no integer version sub-directories)")
    return sorted(
        version
        for name in tree.children("")
        if (version := parse_version(name)) is not None and _saved_model_file(tree, name + "/")
    )


def occupied_versions(entries: Mapping[str, int]) -> set[int]:
    """Every integer version directory of a model listing, complete or not (publish never reuses one)."""
    return {v for name in _Tree(entries).children("") if (v := parse_version(name)) is not None}


class _Tree:
    """Directory view over a flat listing (keys with ``/``; explicit dirs end with ``/``)."""

    def __init__(self, entries: Mapping[str, int]) -> None:
        self.files: dict[str, int] = {}
        self.dirs: set[str] = {""}
        for key, size in entries.items():
            parts = PurePosixPath(key.rstrip("/")).parts
            for i in range(1, len(parts)):
                self.dirs.add("/".join(parts[:i]) + "/")
            if key.endswith("/"):
                self.dirs.add(key)
            else:
                self.files[key] = size

    def children(self, prefix: str) -> list[str]:
        """Names of the sub-directories directly under ``prefix`` (``""`` or ending with ``/``)."""
        names = {d[len(prefix) :].split("/")[0] for d in self.dirs if d.startswith(prefix) and d != prefix}
        return sorted(n for n in names if n)

    def files_in(self, prefix: str) -> list[str]:
        return sorted(k for k in self.files if k.startswith(prefix) and "/" not in k[len(prefix) :])

    def has(self, key: str) -> bool:
        return key in self.files


def _saved_model_file(tree: _Tree, prefix: str) -> str | None:
    return next((prefix + f for f in SAVED_MODEL_FILES if tree.has(prefix + f)), None)


def _kind(tree: _Tree) -> Kind:
    if _saved_model_file(tree, ""):
        return "version"
    if any(parse_version(name) is not None for name in tree.children("")):
        return "model"
    return "repository"


def validate_entries(store: Store, entries: Mapping[str, int]) -> Report:
    tree = _Tree(entries)
    kind = _kind(tree)
    report = Report(path=store.display(), kind=kind)
    if not entries:
        report.problems.append(Problem(store.display(), "empty or does not exist"))
        return report
    if kind == "version":
        model = ModelInfo(name="", path=store.display())
        info = _check_version(store, tree, "", -1, report.problems)
        model.versions.append(info)
        report.models.append(model)
        return report
    if kind == "model":
        report.models.append(_check_model(store, tree, "", report.problems))
        return report
    for name in tree.children(""):
        if name.startswith("."):
            continue
        report.models.append(_check_model(store, tree, name + "/", report.problems))
    if not report.models:
        report.problems.append(Problem(store.display(), "no model directories"))
    return report


def _check_model(store: Store, tree: _Tree, prefix: str, problems: list[Problem]) -> ModelInfo:
    model = ModelInfo(name=prefix.rstrip("/").rsplit("/", 1)[-1], path=store.display(prefix))
    seen: dict[int, str] = {}
    for name in tree.children(prefix):
        version = parse_version(name)
        where = store.display(prefix + name + "/")
        if version is None:
            if name.startswith(STAGING_PREFIX):
                problems.append(
                    Problem(
                        where, "staging of an unfinished upload (re-run tfsctl upload to resume)", "warning"
                    )
                )
            elif not name.startswith("."):
                problems.append(
                    Problem(where, "not an integer version directory; TF Serving ignores it", "warning")
                )
            continue
        if version in seen:
            problems.append(Problem(where, f"version {version} also in directory {seen[version]!r}"))
            continue
        seen[version] = name
        model.versions.append(_check_version(store, tree, prefix + name + "/", version, problems))
    if not seen:
        problems.append(Problem(model.path, "no integer version directories (expected <model>/<version>/)"))
    model.versions.sort(key=lambda v: v.version)
    return model


def _check_version(
    store: Store, tree: _Tree, prefix: str, version: int, problems: list[Problem]
) -> VersionInfo:
    info = VersionInfo(version=version, path=store.display(prefix))
    pb_key = _saved_model_file(tree, prefix)
    if pb_key is None:
        info.complete = False
        problems.append(Problem(info.path, "no saved_model.pb"))
        return info
    saved_model = _parse_saved_model(store, pb_key, problems)
    if saved_model is None:
        return info
    meta = next((m for m in saved_model.meta_graphs if "serve" in m.meta_info_def.tags), None)
    if meta is None:
        tags = sorted({t for m in saved_model.meta_graphs for t in m.meta_info_def.tags})
        problems.append(
            Problem(store.display(pb_key), f"no MetaGraph tagged 'serve' (tags: {tags or 'none'})")
        )
        return info
    signatures = {k: v for k, v in meta.signature_def.items() if k != INIT_OP_SIGNATURE}
    info.signatures = sorted(signatures)
    if not signatures:
        problems.append(Problem(store.display(pb_key), "no signature_def in the 'serve' MetaGraph"))
    elif "serving_default" not in signatures:
        problems.append(
            Problem(
                store.display(pb_key), f"no 'serving_default' signature (has {info.signatures})", "warning"
            )
        )
    for name, sig in sorted(signatures.items()):
        if not sig.outputs:
            problems.append(Problem(store.display(pb_key), f"signature {name!r} has no outputs"))
    _check_variables(store, tree, prefix, meta, problems)
    if tree.has(prefix + WARMUP_PATH):
        info.warmup_records = _check_warmup(store, prefix + WARMUP_PATH, signatures, problems)
    return info


def _parse_saved_model(store: Store, key: str, problems: list[Problem]) -> Any:
    data = store.read(key)
    saved_model = schema.new("tensorflow.SavedModel")
    try:
        if key.endswith(".pbtxt"):
            from google.protobuf import text_format

            # the core's SavedModel declares only the fields it checks (tfsctl.serving.schema)
            text_format.Parse(data.decode("utf-8"), saved_model, allow_unknown_field=True)
        else:
            saved_model.ParseFromString(data)
    except Exception as exc:  # DecodeError, ParseError, UnicodeDecodeError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        problems.append(Problem(store.display(key), f"not a SavedModel protobuf ({first})"))
        return None
    if not saved_model.meta_graphs:
        problems.append(Problem(store.display(key), "SavedModel has no MetaGraphs"))
        return None
    return saved_model


def _has_variables(meta: Any) -> bool:
    if meta.saver_def.filename_tensor_name:
        return True
    if any(node.op in _VARIABLE_OPS for node in meta.graph_def.node):
        return True
    return any(node.op in _VARIABLE_OPS for fn in meta.graph_def.library.function for node in fn.node_def)


def _check_variables(store: Store, tree: _Tree, prefix: str, meta: Any, problems: list[Problem]) -> None:
    var_prefix = prefix + "variables/"
    if not tree.has(prefix + VARIABLES_INDEX):
        if _has_variables(meta):
            problems.append(
                Problem(store.display(prefix + VARIABLES_INDEX), "missing (the graph has variables)")
            )
        return
    shards = [m for f in tree.files_in(var_prefix) if (m := _SHARD.match(f[len(var_prefix) :]))]
    if not shards:
        problems.append(
            Problem(store.display(var_prefix), "no variables.data-*-of-* shard beside variables.index")
        )
        return
    totals = {int(m.group(2)) for m in shards}
    if len(totals) != 1:
        problems.append(
            Problem(store.display(var_prefix), f"shards disagree on their count: {sorted(totals)}")
        )
        return
    total = totals.pop()
    present = {int(m.group(1)) for m in shards}
    missing = [i for i in range(total) if i not in present]
    if missing:
        names = ", ".join(f"variables.data-{i:05d}-of-{total:05d}" for i in missing[:3])
        problems.append(Problem(store.display(var_prefix), f"missing shard(s) {names}"))


def _check_warmup(
    store: Store, key: str, signatures: Mapping[str, Any], problems: list[Problem]
) -> int | None:
    where = store.display(key)
    count = 0
    try:
        for record in tfrecord.read(store.read(key), limit=MAX_WARMUP_RECORDS):
            count += 1
            if count > MAX_WARMUP_RECORDS:
                problems.append(Problem(where, f"more than {MAX_WARMUP_RECORDS} warmup records"))
                return None
            log = schema.new("tensorflow.serving.PredictionLog")
            try:
                log.ParseFromString(record.data)
            except Exception:
                problems.append(
                    Problem(where, f"record {record.index}: not a tensorflow.serving.PredictionLog")
                )
                return None
            kind = log.WhichOneof("log_type")
            if kind not in _WARMUP_LOG_TYPES:
                problems.append(
                    Problem(
                        where, f"record {record.index}: log type {kind or 'unset'} is not a warmup request"
                    )
                )
                return None
            if kind == "predict_log" and not _check_predict(
                log.predict_log.request, record.index, where, signatures, problems
            ):
                return None
    except tfrecord.FramingError as exc:
        problems.append(Problem(where, f"not a TFRecord file: {exc}"))
        return None
    if count == 0:
        problems.append(Problem(where, "no warmup records", "warning"))
    return count


def _check_predict(
    request: Any, index: int, where: str, signatures: Mapping[str, Any], problems: list[Problem]
) -> bool:
    name = request.model_spec.signature_name or "serving_default"
    sig = signatures.get(name)
    if sig is None:
        problems.append(
            Problem(where, f"record {index}: PredictRequest names signature {name!r}, not in the model")
        )
        return False
    if set(request.inputs) != set(sig.inputs):
        problems.append(
            Problem(
                where,
                f"record {index}: PredictRequest inputs {sorted(request.inputs)} != signature {name!r} "
                f"inputs {sorted(sig.inputs)}",
            )
        )
        return False
    return True
