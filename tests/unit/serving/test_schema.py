"""The core's own TF Serving / TensorFlow message declarations against the generated ones.

``tfsctl.serving.schema`` keeps a copy of upstream's schema (so that the core installs
without tensorflow-serving-api). This is the differential test for that copy: every
declared field has the number, type, label, message/enum type and oneof of the field in
tensorflow-serving-api's generated descriptors; complete messages have the same field
set and nested enums; and the same config texts parse (or fail, with the same words)
with both.
"""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from tfsctl.serving import protos, schema

REAL_FILES = (
    protos.model_server_config_pb2,
    protos.prediction_log_pb2,
    protos.predict_pb2,
    protos.saved_model_pb2,
    protos.meta_graph_pb2,
)


def _real(full_name: str):  # type: ignore[no-untyped-def]
    for module in REAL_FILES:
        try:
            return module.DESCRIPTOR.pool.FindMessageTypeByName(full_name)
        except KeyError:
            continue
    raise AssertionError(f"{full_name}: not in tensorflow-serving-api's descriptors")


def _shape(field):  # type: ignore[no-untyped-def]
    kind = field.message_type or field.enum_type
    oneof = field.containing_oneof
    return (
        field.number,
        field.type,
        field.is_repeated,
        kind.full_name if kind else None,
        oneof.name if oneof is not None else None,
    )


@pytest.mark.parametrize("spec", schema.MESSAGES, ids=lambda m: m.full_name)
def test_each_declared_field_is_upstreams(spec: schema.Message) -> None:
    ours = schema.message_class(spec.full_name).DESCRIPTOR
    real = _real(spec.full_name)
    assert ours.GetOptions().map_entry == real.GetOptions().map_entry
    for field in ours.fields:
        assert field.name in real.fields_by_name, f"{spec.full_name}.{field.name}: not upstream"
        assert _shape(field) == _shape(real.fields_by_name[field.name]), f"{spec.full_name}.{field.name}"


@pytest.mark.parametrize("spec", [m for m in schema.MESSAGES if not m.partial], ids=lambda m: m.full_name)
def test_complete_messages_have_every_upstream_field_and_enum(spec: schema.Message) -> None:
    ours = schema.message_class(spec.full_name).DESCRIPTOR
    real = _real(spec.full_name)
    assert sorted(f.name for f in ours.fields) == sorted(f.name for f in real.fields)
    enums = {e.name: [(v.name, v.number) for v in e.values] for e in ours.enum_types}
    assert enums == {e.name: [(v.name, v.number) for v in e.values] for e in real.enum_types}


def test_top_level_enums_are_upstreams() -> None:
    for full_name, values in schema.ENUMS.items():
        real = protos.model_server_config_pb2.DESCRIPTOR.pool.FindEnumTypeByName(full_name)
        assert values == tuple((v.name, v.number) for v in real.values)


def test_every_message_reachable_from_the_model_server_config_is_complete() -> None:
    partial = {m.full_name for m in schema.MESSAGES if m.partial}
    seen, todo = set(), [_real("tensorflow.serving.ModelServerConfig")]
    while todo:
        message = todo.pop()
        if message.full_name in seen or message.full_name.startswith("google.protobuf."):
            continue
        seen.add(message.full_name)
        if not message.GetOptions().map_entry:
            assert message.full_name not in partial, message.full_name
            assert message.full_name in {m.full_name for m in schema.MESSAGES}, message.full_name
        todo.extend(f.message_type for f in message.fields if f.message_type is not None)


CONFIGS = [
    'model_config_list { config { name: "a" base_path: "/m/a" model_platform: "tensorflow" } }',
    'model_config_list { config { name: "a" base_path: "/m" model_version_policy { specific { versions: 1 '
    'versions: 2 } } version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 2 } } }',
    'model_config_list { config { name: "a" base_path: "/m" model_version_policy { all {} } '
    "logging_config { sampling_config { sampling_rate: 0.5 attributes: 1 per_task_sampling_configs "
    '{ dc: "x" task_index: 0 } } log_collector_config { type: "t" filename_prefix: "p" } } } }',
    'model_config_list { config { name: "a" base_path: "/m" model_type: TENSORFLOW '
    "model_version_policy { latest { num_versions: 3 } } } }",
    'model_config_list { config { nme: "a" } }',
    'model_config_list { config { name: "a" version_labels { key: "s" value: "one" } } }',
    'model_config_list { config { name: "a" model_version_policy { latest { num_versions: -1 } } } }',
    "model_config_list { config { model_type: PYTORCH } }",
    'custom_model_config { [type.googleapis.com/google.protobuf.Any] { type_url: "x" } }',
    "model_config_list { config { name: 'a' }",
]


@pytest.mark.parametrize("text", CONFIGS)
def test_a_config_parses_or_fails_as_with_tf_serving_protos(text: str) -> None:
    def outcome(message):  # type: ignore[no-untyped-def]
        try:
            text_format.Parse(text, message)
        except text_format.ParseError as exc:
            return "error", str(exc)
        return "ok", message.SerializeToString(deterministic=True)

    ours = outcome(schema.new("tensorflow.serving.ModelServerConfig"))
    real = outcome(protos.model_server_config_pb2.ModelServerConfig())
    assert ours == real


def test_a_saved_model_written_by_upstream_reads_back_in_the_core_schema() -> None:
    real = protos.saved_model_pb2.SavedModel()
    meta = real.meta_graphs.add()
    meta.meta_info_def.tags.append("serve")
    meta.saver_def.filename_tensor_name = "save/Const:0"
    meta.graph_def.node.add(name="v", op="VarHandleOp")
    meta.graph_def.library.function.add().node_def.add(name="w", op="ReadVariableOp")
    meta.signature_def["serving_default"].inputs["x"].name = "x:0"
    meta.signature_def["serving_default"].outputs["y"].dtype = 1
    meta.signature_def["serving_default"].method_name = "tensorflow/serving/predict"
    ours = schema.new("tensorflow.SavedModel")
    ours.ParseFromString(real.SerializeToString())
    got = ours.meta_graphs[0]
    assert list(got.meta_info_def.tags) == ["serve"]
    assert got.saver_def.filename_tensor_name == "save/Const:0"
    assert [n.op for n in got.graph_def.node] == ["VarHandleOp"]
    assert got.graph_def.library.function[0].node_def[0].op == "ReadVariableOp"
    sig = got.signature_def["serving_default"]
    assert (set(sig.inputs), set(sig.outputs), sig.method_name) == (
        {"x"},
        {"y"},
        "tensorflow/serving/predict",
    )


def test_a_warmup_record_written_by_upstream_reads_back_in_the_core_schema() -> None:
    real = protos.prediction_log_pb2.PredictionLog()
    real.predict_log.request.model_spec.signature_name = "sig"
    real.predict_log.request.inputs["images"].dtype = 1
    ours = schema.new("tensorflow.serving.PredictionLog")
    ours.ParseFromString(real.SerializeToString())
    assert ours.WhichOneof("log_type") == "predict_log"
    assert ours.predict_log.request.model_spec.signature_name == "sig"
    assert set(ours.predict_log.request.inputs) == {"images"}
