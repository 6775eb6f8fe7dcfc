"""Tensors between numpy, ``tensorflow.TensorProto`` and TF Serving's REST JSON.

Pure (numpy and the protos only, no TensorFlow runtime), shared by the client and
the local server so both speak the same layout:

- row format: ``{"instances": [...]}`` -> ``{"predictions": [...]}``; one entry per
  batch row, an object of named tensors when the signature has several.
- columnar format: ``{"inputs": ...}`` -> ``{"outputs": ...}``; whole tensors, an
  object of named tensors when there are several.
- strings are UTF-8 text, or ``{"b64": "..."}`` for bytes (always for tensors whose
  name ends in ``_bytes``), as in TF Serving's ``json_tensor``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np

from tfsctl.errors import InvalidInput
from tfsctl.serving.protos import tensor_pb2, types_pb2

# DataType enum -> numpy dtype and the TensorProto repeated field holding its values.
_DTYPES: dict[int, tuple[Any, str]] = {
    types_pb2.DT_FLOAT: (np.float32, "float_val"),
    types_pb2.DT_DOUBLE: (np.float64, "double_val"),
    types_pb2.DT_INT32: (np.int32, "int_val"),
    types_pb2.DT_UINT8: (np.uint8, "int_val"),
    types_pb2.DT_INT16: (np.int16, "int_val"),
    types_pb2.DT_INT8: (np.int8, "int_val"),
    types_pb2.DT_UINT16: (np.uint16, "int_val"),
    types_pb2.DT_INT64: (np.int64, "int64_val"),
    types_pb2.DT_UINT32: (np.uint32, "uint32_val"),
    types_pb2.DT_UINT64: (np.uint64, "uint64_val"),
    types_pb2.DT_BOOL: (np.bool_, "bool_val"),
    types_pb2.DT_HALF: (np.float16, "half_val"),
    types_pb2.DT_STRING: (np.object_, "string_val"),
}
_FROM_NUMPY: dict[Any, int] = {
    np.dtype(np.float32): types_pb2.DT_FLOAT,
    np.dtype(np.float64): types_pb2.DT_DOUBLE,
    np.dtype(np.int32): types_pb2.DT_INT32,
    np.dtype(np.int64): types_pb2.DT_INT64,
    np.dtype(np.uint8): types_pb2.DT_UINT8,
    np.dtype(np.int16): types_pb2.DT_INT16,
    np.dtype(np.int8): types_pb2.DT_INT8,
    np.dtype(np.uint16): types_pb2.DT_UINT16,
    np.dtype(np.uint32): types_pb2.DT_UINT32,
    np.dtype(np.uint64): types_pb2.DT_UINT64,
    np.dtype(np.bool_): types_pb2.DT_BOOL,
    np.dtype(np.float16): types_pb2.DT_HALF,
}


def dtype_name(dtype: int) -> str:
    return str(types_pb2.DataType.Name(dtype))


def numpy_dtype(dtype: int) -> Any:
    if dtype not in _DTYPES:
        raise InvalidInput(f"tensor dtype {dtype_name(dtype)} is not supported")
    return _DTYPES[dtype][0]


def to_array(value: Any, dtype: int | None = None, name: str = "tensor") -> np.ndarray:
    """A numpy array of ``value`` (nested lists, scalars, b64 objects), cast to ``dtype``."""
    if dtype == types_pb2.DT_STRING or (dtype is None and _is_text(value)):
        return np.array(_decode_strings(value), dtype=object)
    try:
        array = np.asarray(value)
        if dtype is not None:
            array = array.astype(numpy_dtype(dtype), casting="unsafe")
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{name}: cannot convert to a tensor: {exc}") from exc
    if array.dtype == object:
        raise InvalidInput(f"{name}: ragged or mixed-type values cannot form a tensor")
    return array


def to_tensor_proto(
    value: Any, dtype: int | None = None, name: str = "tensor", *, as_proto_field: bool = False
) -> Any:
    """A ``TensorProto`` holding ``value``: in ``tensor_content``, or with ``as_proto_field`` in the
    typed value field of its dtype (``float_val``, ``int64_val``...), as TF Serving's predict
    responses are by default (``PredictResponseTensorSerializationOption::kAsProtoField``)."""
    array = value if isinstance(value, np.ndarray) and dtype is None else to_array(value, dtype, name)
    proto = tensor_pb2.TensorProto()
    for size in array.shape:
        proto.tensor_shape.dim.add().size = int(size)
    if array.dtype == object:
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(_as_bytes(v) for v in array.ravel())
        return proto
    if array.dtype not in _FROM_NUMPY:
        array = array.astype(np.float32) if array.dtype.kind == "f" else array.astype(np.int64)
    proto.dtype = _FROM_NUMPY[array.dtype]
    if as_proto_field:
        flat = np.ascontiguousarray(array).ravel()
        if proto.dtype == types_pb2.DT_HALF:
            proto.half_val.extend(flat.view(np.uint16).tolist())
        else:
            getattr(proto, _DTYPES[proto.dtype][1]).extend(flat.tolist())
        return proto
    proto.tensor_content = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    return proto


def from_tensor_proto(proto: Any) -> np.ndarray:
    """A numpy array of a ``TensorProto`` (``tensor_content`` or the typed value fields)."""
    np_dtype, field = _DTYPES.get(proto.dtype, (None, ""))
    if np_dtype is None:
        raise InvalidInput(f"tensor dtype {dtype_name(proto.dtype)} is not supported")
    shape = [d.size for d in proto.tensor_shape.dim]
    count = int(np.prod(shape)) if shape else 1
    if proto.dtype == types_pb2.DT_STRING:
        values = np.array(list(proto.string_val), dtype=object)
    elif proto.tensor_content:
        values = np.frombuffer(proto.tensor_content, dtype=np.dtype(np_dtype).newbyteorder("<"))
        values = values.astype(np_dtype)
    elif proto.dtype == types_pb2.DT_HALF:
        values = np.array(list(proto.half_val), dtype=np.uint16).view(np.float16)
    else:
        values = np.array(list(getattr(proto, field)), dtype=np_dtype)
    if values.size == count:
        return values.reshape(shape)
    if values.size == 1:  # TF semantics: one value fills the whole shape
        return np.full(shape, values[0], dtype=values.dtype)
    if values.size == 0:
        return np.zeros(shape, dtype=values.dtype)
    raise InvalidInput(f"tensor proto has {values.size} values for shape {shape}")


def to_json_value(array: np.ndarray, name: str = "") -> Any:
    """Nested JSON values of ``array`` (float32 printed at float32 precision)."""
    if array.dtype == object:
        b64 = name.endswith("_bytes")
        return _nest([_string_json(v, b64) for v in array.ravel()], array.shape)
    if array.dtype == np.float32 or array.dtype == np.float16:
        return _nest([float(str(v)) for v in array.ravel()], array.shape)
    return array.tolist()


def _nest(flat: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = int(np.prod(shape[1:])) if shape[1:] else 1
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def rows_json(outputs: Mapping[str, np.ndarray]) -> list[Any]:
    """Row-format ``predictions``: one entry per batch row."""
    if not outputs:
        return []
    sizes = {k: (v.shape[0] if v.ndim else None) for k, v in outputs.items()}
    if any(s is None for s in sizes.values()) or len(set(sizes.values())) != 1:
        raise InvalidInput(
            "output tensors have different batch sizes or are scalars; "
            "use the columnar format ('inputs') for this signature: "
            + ", ".join(f"{k}={s}" for k, s in sorted(sizes.items()))
        )
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        value = to_json_value(array, name)
        return list(value)
    columns = {k: to_json_value(v, k) for k, v in outputs.items()}
    batch = next(iter(sizes.values())) or 0
    return [{k: columns[k][i] for k in sorted(columns)} for i in range(batch)]


def columns_json(outputs: Mapping[str, np.ndarray]) -> Any:
    """Columnar ``outputs``: the tensor itself when there is one, else an object of them."""
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        return to_json_value(array, name)
    return {k: to_json_value(v, k) for k, v in sorted(outputs.items())}


def _is_text(value: Any) -> bool:
    while isinstance(value, list | tuple) and value:
        value = value[0]
    return isinstance(value, str | bytes) or (isinstance(value, dict) and "b64" in value)


def _decode_strings(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_decode_strings(v) for v in value]
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise InvalidInput(f"string value {value!r}: objects must be {{'b64': ...}}")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"invalid base64 value: {exc}") from exc
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    raise InvalidInput(f"value {value!r} is not a string")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _string_json(value: Any, b64: bool) -> Any:
    raw = value if isinstance(value, bytes) else str(value).encode()
    if not b64:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(raw).decode()}
