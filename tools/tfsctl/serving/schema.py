"""The TF Serving and TensorFlow messages the core reads and writes, without TensorFlow.

TF Serving's generated Python protos ship in ``tensorflow-serving-api``, which
declares the whole TensorFlow runtime as a dependency; the core (deploy, promote,
rollback, scale, status, validate, upload) must install without it. What the core
needs of those protos is small and stable: the model server config it parses and
rewrites (``model_config.pbtxt``, the ConfigMap TF Serving polls), and the parts of a
SavedModel and of its warmup ``PredictionLog`` records that ``validate``/``upload``
check. This module declares those messages (same full names, field numbers and
types as upstream, so protobuf's own parsers give the errors TF Serving's would)
and builds them in a private descriptor pool, so they never clash with the generated
modules when both are loaded (the test bed's server uses the generated ones; the two
meet on the wire format).

Messages marked ``partial`` declare only the fields the core reads: binary parsing
skips the others, as protobuf does for unknown fields. The rest are complete, so
that a config with a misspelt field fails here as it fails in TF Serving.
``tests/unit/serving/test_schema.py`` compares every declaration with
``tensorflow-serving-api``'s generated descriptors (a differential test: the same
field, number, type, label and oneof, and for complete messages the same field set).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

_SCALARS = {
    "double": 1,
    "int64": 3,
    "uint64": 4,
    "int32": 5,
    "bool": 8,
    "string": 9,
    "bytes": 12,
    "uint32": 13,
}
_TYPE_MESSAGE, _TYPE_ENUM = 11, 14
_OPTIONAL, _REPEATED = 1, 3


@dataclass(frozen=True)
class Field:
    """One field. ``kind``: a scalar name, ``msg:<full name>``, ``enum:<full name>``, or
    ``map:<key scalar>:<value kind>``."""

    number: int
    name: str
    kind: str
    repeated: bool = False
    oneof: str | None = None
    proto3_optional: bool = False


@dataclass(frozen=True)
class Message:
    full_name: str
    fields: tuple[Field, ...] = ()
    enums: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    partial: bool = False


TFS = "tensorflow.serving"
_POLICY = f"{TFS}.FileSystemStoragePathSourceConfig.ServableVersionPolicy"

MESSAGES: tuple[Message, ...] = (
    # tensorflow_serving/config/model_server_config.proto (complete)
    Message(
        f"{TFS}.ModelServerConfig",
        (
            Field(1, "model_config_list", f"msg:{TFS}.ModelConfigList", oneof="config"),
            Field(2, "custom_model_config", "msg:google.protobuf.Any", oneof="config"),
        ),
    ),
    Message(f"{TFS}.ModelConfigList", (Field(1, "config", f"msg:{TFS}.ModelConfig", repeated=True),)),
    Message(
        f"{TFS}.ModelConfig",
        (
            Field(1, "name", "string"),
            Field(2, "base_path", "string"),
            Field(3, "model_type", f"enum:{TFS}.ModelType"),
            Field(4, "model_platform", "string"),
            Field(7, "model_version_policy", f"msg:{_POLICY}"),
            Field(8, "version_labels", "map:string:int64"),
            Field(6, "logging_config", f"msg:{TFS}.LoggingConfig"),
        ),
    ),
    # tensorflow_serving/config/file_system_storage_path_source.proto (the policy, complete)
    Message(f"{TFS}.FileSystemStoragePathSourceConfig", partial=True),
    Message(
        _POLICY,
        (
            Field(100, "latest", f"msg:{_POLICY}.Latest", oneof="policy_choice"),
            Field(101, "all", f"msg:{_POLICY}.All", oneof="policy_choice"),
            Field(102, "specific", f"msg:{_POLICY}.Specific", oneof="policy_choice"),
        ),
    ),
    Message(f"{_POLICY}.Latest", (Field(1, "num_versions", "uint32"),)),
    Message(f"{_POLICY}.All"),
    Message(f"{_POLICY}.Specific", (Field(1, "versions", "int64", repeated=True),)),
    # tensorflow_serving/config/logging_config.proto, log_collector_config.proto (complete)
    Message(
        f"{TFS}.LoggingConfig",
        (
            Field(1, "log_collector_config", f"msg:{TFS}.LogCollectorConfig"),
            Field(2, "sampling_config", f"msg:{TFS}.SamplingConfig"),
            Field(3, "custom_logging_config", "msg:google.protobuf.Any"),
        ),
    ),
    Message(f"{TFS}.LogCollectorConfig", (Field(1, "type", "string"), Field(2, "filename_prefix", "string"))),
    Message(
        f"{TFS}.SamplingConfig",
        (
            Field(1, "sampling_rate", "double"),
            Field(3, "per_task_sampling_configs", f"msg:{TFS}.PerTaskSamplingConfig", repeated=True),
            Field(2, "attributes", "int32"),
        ),
        enums=(
            (
                "Attributes",
                (("ATTR_DEFAULT", 0), ("ATTR_REQUEST_ORIGIN", 1), ("ATTR_REQUEST_CRITICALITY", 2)),
            ),
        ),
    ),
    Message(
        f"{TFS}.PerTaskSamplingConfig",
        (
            Field(1, "dc", "string"),
            Field(2, "task_index", "int32", proto3_optional=True),
            Field(3, "sampling_rate", "double"),
        ),
    ),
    # tensorflow_serving/apis/prediction_log.proto, predict.proto, model.proto (partial)
    Message(
        f"{TFS}.PredictionLog",
        (
            Field(2, "classify_log", f"msg:{TFS}.ClassifyLog", oneof="log_type"),
            Field(3, "regress_log", f"msg:{TFS}.RegressLog", oneof="log_type"),
            Field(6, "predict_log", f"msg:{TFS}.PredictLog", oneof="log_type"),
            Field(7, "predict_streamed_log", f"msg:{TFS}.PredictStreamedLog", oneof="log_type"),
            Field(4, "multi_inference_log", f"msg:{TFS}.MultiInferenceLog", oneof="log_type"),
            Field(5, "session_run_log", f"msg:{TFS}.SessionRunLog", oneof="log_type"),
        ),
        partial=True,
    ),
    Message(f"{TFS}.ClassifyLog", partial=True),
    Message(f"{TFS}.RegressLog", partial=True),
    Message(f"{TFS}.PredictStreamedLog", partial=True),
    Message(f"{TFS}.MultiInferenceLog", partial=True),
    Message(f"{TFS}.SessionRunLog", partial=True),
    Message(f"{TFS}.PredictLog", (Field(1, "request", f"msg:{TFS}.PredictRequest"),), partial=True),
    Message(
        f"{TFS}.PredictRequest",
        (
            Field(1, "model_spec", f"msg:{TFS}.ModelSpec"),
            Field(2, "inputs", "map:string:msg:tensorflow.TensorProto"),
        ),
        partial=True,
    ),
    Message(
        f"{TFS}.ModelSpec", (Field(1, "name", "string"), Field(3, "signature_name", "string")), partial=True
    ),
    # tensorflow/core/protobuf/saved_model.proto, meta_graph.proto, saver.proto and
    # tensorflow/core/framework/{graph,node_def,function,tensor}.proto (partial)
    Message("tensorflow.TensorProto", partial=True),
    Message(
        "tensorflow.SavedModel",
        (Field(2, "meta_graphs", "msg:tensorflow.MetaGraphDef", repeated=True),),
        partial=True,
    ),
    Message(
        "tensorflow.MetaGraphDef",
        (
            Field(1, "meta_info_def", "msg:tensorflow.MetaGraphDef.MetaInfoDef"),
            Field(2, "graph_def", "msg:tensorflow.GraphDef"),
            Field(3, "saver_def", "msg:tensorflow.SaverDef"),
            Field(5, "signature_def", "map:string:msg:tensorflow.SignatureDef"),
        ),
        partial=True,
    ),
    Message(
        "tensorflow.MetaGraphDef.MetaInfoDef", (Field(4, "tags", "string", repeated=True),), partial=True
    ),
    Message(
        "tensorflow.GraphDef",
        (
            Field(1, "node", "msg:tensorflow.NodeDef", repeated=True),
            Field(2, "library", "msg:tensorflow.FunctionDefLibrary"),
        ),
        partial=True,
    ),
    Message("tensorflow.NodeDef", (Field(1, "name", "string"), Field(2, "op", "string")), partial=True),
    Message(
        "tensorflow.FunctionDefLibrary",
        (Field(1, "function", "msg:tensorflow.FunctionDef", repeated=True),),
        partial=True,
    ),
    Message(
        "tensorflow.FunctionDef",
        (Field(3, "node_def", "msg:tensorflow.NodeDef", repeated=True),),
        partial=True,
    ),
    Message("tensorflow.SaverDef", (Field(1, "filename_tensor_name", "string"),), partial=True),
    Message(
        "tensorflow.SignatureDef",
        (
            Field(1, "inputs", "map:string:msg:tensorflow.TensorInfo"),
            Field(2, "outputs", "map:string:msg:tensorflow.TensorInfo"),
            Field(3, "method_name", "string"),
        ),
        partial=True,
    ),
    Message("tensorflow.TensorInfo", partial=True),
)

# Top-level enums: full name -> values.
ENUMS: dict[str, tuple[tuple[str, int], ...]] = {
    f"{TFS}.ModelType": (("MODEL_TYPE_UNSPECIFIED", 0), ("TENSORFLOW", 1), ("OTHER", 2)),
}
_PACKAGES = (TFS, "tensorflow")  # longest first: a name belongs to the first that prefixes it


def _package_of(full_name: str) -> str:
    return next(p for p in _PACKAGES if full_name.startswith(p + "."))


def _entry_name(field_name: str) -> str:
    return "".join(part.capitalize() for part in field_name.split("_")) + "Entry"


def _fill_field(proto: Any, field: Field, parent: Any, parent_full: str) -> None:
    """Fill the ``FieldDescriptorProto`` ``proto``; a map field adds its entry type to ``parent``."""
    proto.name, proto.number = field.name, field.number
    head, *rest = field.name.split("_")
    proto.json_name = head + "".join(part.capitalize() for part in rest)
    proto.label = _REPEATED if field.repeated else _OPTIONAL
    kind = field.kind
    if kind.startswith("map:"):
        _, key, value = kind.split(":", 2)
        entry = parent.nested_type.add(name=_entry_name(field.name))
        entry.options.map_entry = True
        entry_full = f"{parent_full}.{entry.name}"
        _fill_field(entry.field.add(), Field(1, "key", key), entry, entry_full)
        _fill_field(entry.field.add(), Field(2, "value", value), entry, entry_full)
        proto.label, proto.type, proto.type_name = _REPEATED, _TYPE_MESSAGE, "." + entry_full
    elif kind.startswith("msg:"):
        proto.type, proto.type_name = _TYPE_MESSAGE, "." + kind[4:]
    elif kind.startswith("enum:"):
        proto.type, proto.type_name = _TYPE_ENUM, "." + kind[5:]
    else:
        proto.type = _SCALARS[kind]
    if field.proto3_optional:
        proto.proto3_optional = True


def _build_message(spec: Message, name: str, into: Any, children: dict[str, list[Message]]) -> None:
    message = into.add(name=name)
    oneofs: list[str] = []
    for field in spec.fields:
        proto = message.field.add()
        _fill_field(proto, field, message, spec.full_name)
        oneof = field.oneof or (f"_{field.name}" if field.proto3_optional else None)
        if oneof is not None:
            if oneof not in oneofs:
                oneofs.append(oneof)
                message.oneof_decl.add(name=oneof)
            proto.oneof_index = oneofs.index(oneof)
    for enum_name, values in spec.enums:
        enum = message.enum_type.add(name=enum_name)
        for value_name, number in values:
            enum.value.add(name=value_name, number=number)
    for child in children.get(spec.full_name, []):
        _build_message(child, child.full_name.rsplit(".", 1)[1], message.nested_type, children)


def file_protos(messages: Iterable[Message] = MESSAGES) -> list[Any]:
    """The ``FileDescriptorProto`` of each package, dependencies first."""
    from google.protobuf import descriptor_pb2

    specs = list(messages)
    names = {m.full_name for m in specs}
    children: dict[str, list[Message]] = {}
    top: dict[str, list[Message]] = {p: [] for p in _PACKAGES}
    for spec in specs:
        parent = spec.full_name.rsplit(".", 1)[0]
        if parent in names:
            children.setdefault(parent, []).append(spec)
        else:
            top[_package_of(spec.full_name)].append(spec)
    files = []
    for package in reversed(_PACKAGES):  # tensorflow first: tensorflow.serving uses its TensorProto
        proto = descriptor_pb2.FileDescriptorProto(
            name=f"tfsctl/schema/{package.replace('.', '_')}.proto", package=package, syntax="proto3"
        )
        proto.dependency.append("google/protobuf/any.proto")
        if package == TFS:
            proto.dependency.append("tfsctl/schema/tensorflow.proto")
        for spec in top[package]:
            _build_message(spec, spec.full_name[len(package) + 1 :], proto.message_type, children)
        for enum_full, values in ENUMS.items():
            if _package_of(enum_full) == package:
                enum = proto.enum_type.add(name=enum_full[len(package) + 1 :])
                for value_name, number in values:
                    enum.value.add(name=value_name, number=number)
        files.append(proto)
    return files


@cache
def _pool() -> Any:
    from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool

    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(any_pb2.DESCRIPTOR.serialized_pb))
    for proto in file_protos():
        pool.Add(proto)
    return pool


@cache
def message_class(full_name: str) -> Any:
    """The Python class of ``full_name`` (one of ``MESSAGES``), built from the private pool."""
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(full_name))


def new(full_name: str) -> Any:
    """An empty message of ``full_name``."""
    return message_class(full_name)()
