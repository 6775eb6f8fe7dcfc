"""``tf.train.Example`` from and to TF Serving's JSON feature objects (pure)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from tfsctl.errors import InvalidInput
from tfsctl.serving.protos import example_pb2


def to_example(features: Mapping[str, Any]) -> Any:
    """An Example: ints -> int64_list, floats -> float_list, strings/``{"b64"}`` -> bytes_list."""
    example = example_pb2.Example()
    for name, value in features.items():
        values = list(value) if isinstance(value, list | tuple) else [value]
        feature = example.features.feature[name]
        if not values:
            raise InvalidInput(f"example feature {name!r}: empty value list")
        if all(isinstance(v, bool) for v in values) or all(
            isinstance(v, int) and not isinstance(v, bool) for v in values
        ):
            feature.int64_list.value.extend(int(v) for v in values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            feature.float_list.value.extend(float(v) for v in values)
        elif all(isinstance(v, str | bytes | dict) for v in values):
            feature.bytes_list.value.extend(_bytes(name, v) for v in values)
        else:
            raise InvalidInput(f"example feature {name!r}: values must all be numbers or all strings")
    return example


def _bytes(name: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"example feature {name!r}: invalid base64: {exc}") from exc
    raise InvalidInput(f"example feature {name!r}: objects must be {{'b64': ...}}")


def merge_context(example: Any, context: Any) -> Any:
    """``example`` with the ``context`` features added (ExampleListWithContext semantics)."""
    merged = example_pb2.Example()
    merged.CopyFrom(context)
    merged.MergeFrom(example)
    return merged
