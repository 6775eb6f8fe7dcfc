from __future__ import annotations

import numpy as np
import pytest

from tfsctl.errors import InvalidInput
from tfsctl.serving import tensors
from tfsctl.serving.examples import to_example
from tfsctl.serving.protos import types_pb2


def test_tensor_proto_round_trips_numbers_and_strings() -> None:
    floats = tensors.to_tensor_proto([[1.0, 2.5]], types_pb2.DT_FLOAT)
    assert floats.dtype == types_pb2.DT_FLOAT
    assert tensors.from_tensor_proto(floats).tolist() == [[1.0, 2.5]]
    strings = tensors.to_tensor_proto(["a", {"b64": "AAE="}])
    assert tensors.from_tensor_proto(strings).tolist() == [b"a", b"\x00\x01"]


def test_typed_value_fields_and_single_value_broadcast_are_read() -> None:
    proto = tensors.to_tensor_proto([0.0, 0.0], types_pb2.DT_FLOAT)
    proto.ClearField("tensor_content")
    proto.float_val.append(3.0)
    assert tensors.from_tensor_proto(proto).tolist() == [3.0, 3.0]


def test_float32_prints_at_float32_precision() -> None:
    assert tensors.to_json_value(np.array([0.1, 2.5], dtype=np.float32)) == [0.1, 2.5]


def test_row_and_columnar_json_layouts() -> None:
    one = {"y": np.array([1.0, 2.0], dtype=np.float32)}
    two = {"a": np.array([1, 2]), "b": np.array([[3], [4]])}
    assert tensors.rows_json(one) == [1.0, 2.0]
    assert tensors.rows_json(two) == [{"a": 1, "b": [3]}, {"a": 2, "b": [4]}]
    assert tensors.columns_json(one) == [1.0, 2.0]
    assert tensors.columns_json(two) == {"a": [1, 2], "b": [[3], [4]]}


def test_bytes_outputs_are_base64_objects() -> None:
    value = tensors.to_json_value(np.array([b"\xff"], dtype=object), "image_bytes")
    assert value == [{"b64": "/w=="}]


def test_ragged_input_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="x:"):
        tensors.to_array([[1.0], [1.0, 2.0]], types_pb2.DT_FLOAT, "x")


def test_examples_follow_json_types() -> None:
    example = to_example({"i": 3, "f": 1.5, "s": "t", "l": [1.0, 2.0]})
    feature = example.features.feature
    assert list(feature["i"].int64_list.value) == [3]
    assert list(feature["f"].float_list.value) == [1.5]
    assert list(feature["s"].bytes_list.value) == [b"t"]
    assert list(feature["l"].float_list.value) == [1.0, 2.0]


def test_as_proto_field_puts_values_in_the_typed_field_of_the_dtype() -> None:
    """predict_util.cc kAsProtoField (Tensor::AsProtoField): float_val, int64_val, string_val..."""
    floats = tensors.to_tensor_proto([[3.0], [3.5]], types_pb2.DT_FLOAT, as_proto_field=True)
    assert list(floats.float_val) == [3.0, 3.5] and floats.tensor_content == b""
    assert [d.size for d in floats.tensor_shape.dim] == [2, 1]
    ints = tensors.to_tensor_proto([1, 2], types_pb2.DT_INT64, as_proto_field=True)
    assert list(ints.int64_val) == [1, 2]
    half = tensors.to_tensor_proto([1.5], types_pb2.DT_HALF, as_proto_field=True)
    assert tensors.from_tensor_proto(half).tolist() == [1.5]
    strings = tensors.to_tensor_proto(["a"], as_proto_field=True)
    assert list(strings.string_val) == [b"a"]
    assert tensors.from_tensor_proto(floats).tolist() == [[3.0], [3.5]]
