"""Request payloads from a model signature or a sample request file (pure).

``from_metadata`` reads the signature of a model (the JSON of TF Serving's
REST ``/metadata`` or the same structure converted from gRPC
``GetModelMetadata``) and builds deterministic inputs of the right dtype and
shape (``-1`` dimensions become the batch size, other unknown dimensions 1).
``from_request_file`` takes a REST predict body (``{"instances": ...}`` or
``{"inputs": ...}``) as users already keep for ``curl``. Both give a
``Payload``: the REST body to POST and the tensors to put in a gRPC
``PredictRequest``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfsctl.errors import InvalidInput

# TF DataType name -> numpy dtype (the ones a serving signature uses in practice)
NUMPY_DTYPES: dict[str, str] = {
    "DT_FLOAT": "float32",
    "DT_DOUBLE": "float64",
    "DT_HALF": "float16",
    "DT_INT8": "int8",
    "DT_INT16": "int16",
    "DT_INT32": "int32",
    "DT_INT64": "int64",
    "DT_UINT8": "uint8",
    "DT_UINT16": "uint16",
    "DT_BOOL": "bool",
    "DT_STRING": "object",
}


@dataclass(frozen=True)
class InputSpec:
    name: str
    dtype: str  # TF DataType name, e.g. DT_FLOAT
    shape: tuple[int, ...] | None  # -1 for unknown; None for unknown rank


@dataclass(frozen=True)
class Tensor:
    """One input: TF dtype name, concrete shape and the values (a numpy array)."""

    name: str
    dtype: str
    array: Any = field(compare=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.array.shape)


@dataclass(frozen=True)
class Payload:
    signature: str
    rest_body: dict[str, Any]
    tensors: tuple[Tensor, ...]

    def rest_json(self) -> bytes:
        return json.dumps(self.rest_body, separators=(",", ":")).encode()


def signature_inputs(metadata: Mapping[str, Any], signature: str = "serving_default") -> list[InputSpec]:
    """Input specs of ``signature`` from a ``/metadata`` response (or its ``signature_def`` map)."""
    sig_map: Any = metadata
    for key in ("metadata", "signature_def", "signature_def"):
        if isinstance(sig_map, Mapping) and key in sig_map:
            sig_map = sig_map[key]
    if not isinstance(sig_map, Mapping) or signature not in sig_map:
        known = ", ".join(sorted(sig_map)) if isinstance(sig_map, Mapping) else "none"
        raise InvalidInput(f"--signature {signature!r}: not in the model's signatures ({known})")
    inputs = sig_map[signature].get("inputs") or {}
    if not inputs:
        raise InvalidInput(f"signature {signature!r} has no inputs")
    specs = []
    for name, info in sorted(inputs.items()):
        tensor_shape = info.get("tensor_shape") or {}
        if tensor_shape.get("unknown_rank"):
            shape = None
        else:
            shape = tuple(int(dim.get("size", -1)) for dim in tensor_shape.get("dim", []))
        specs.append(InputSpec(name=name, dtype=str(info.get("dtype", "DT_FLOAT")), shape=shape))
    return specs


def _values(spec: InputSpec, batch_size: int, rng: np.random.Generator) -> Any:
    if spec.dtype not in NUMPY_DTYPES:
        raise InvalidInput(f"input {spec.name!r}: dtype {spec.dtype} is not supported for generated payloads")
    if spec.shape is None:
        shape: tuple[int, ...] = (batch_size,)
    else:
        shape = tuple((batch_size if i == 0 else 1) if d < 0 else d for i, d in enumerate(spec.shape))
    np_dtype = NUMPY_DTYPES[spec.dtype]
    if np_dtype == "object":
        return np.full(shape, "tfsctl", dtype=object)
    if np_dtype == "bool":
        return rng.random(shape) < 0.5
    if np_dtype.startswith("float"):
        return rng.random(shape).astype(np_dtype)
    return rng.integers(0, 10, size=shape).astype(np_dtype)


def _to_json(array: Any) -> Any:
    if array.dtype == object:
        return np.vectorize(str, otypes=[object])(array).tolist()
    return array.tolist()


def _build(signature: str, tensors: list[Tensor]) -> Payload:
    inputs = {t.name: _to_json(t.array) for t in tensors}
    body = {"signature_name": signature, "inputs": inputs}
    return Payload(signature=signature, rest_body=body, tensors=tuple(tensors))


def from_metadata(
    metadata: Mapping[str, Any], signature: str = "serving_default", batch_size: int = 1, seed: int = 0
) -> Payload:
    """Deterministic inputs matching ``signature`` (same seed, same payload)."""
    if batch_size < 1:
        raise InvalidInput(f"--batch-size {batch_size}: must be at least 1")
    rng = np.random.default_rng(seed)
    tensors = [
        Tensor(spec.name, spec.dtype, _values(spec, batch_size, rng))
        for spec in signature_inputs(metadata, signature)
    ]
    return _build(signature, tensors)


def _dtype_for(name: str, specs: Mapping[str, InputSpec], value: Any) -> str:
    if name in specs:
        return specs[name].dtype
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return "DT_FLOAT"
    if array.dtype.kind in "iu":
        return "DT_INT64"
    if array.dtype.kind == "b":
        return "DT_BOOL"
    return "DT_STRING"


def from_request(
    body: Mapping[str, Any],
    *,
    signature: str = "serving_default",
    specs: list[InputSpec] | None = None,
    source: str = "request",
) -> Payload:
    """A payload from a REST predict body; ``specs`` (from the signature) fix the dtypes for gRPC."""
    by_name = {s.name: s for s in specs or []}
    signature = str(body.get("signature_name", signature))
    columns: dict[str, Any]
    if "inputs" in body:
        raw = body["inputs"]
        columns = dict(raw) if isinstance(raw, Mapping) else {_single_input_name(by_name, source): raw}
    elif "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise InvalidInput(f"{source}: 'instances' must be a non-empty list")
        if isinstance(instances[0], Mapping):
            names = list(instances[0])
            columns = {n: [inst[n] for inst in instances] for n in names}
        else:
            columns = {_single_input_name(by_name, source): instances}
    else:
        raise InvalidInput(
            f"{source}: expected an 'instances' or 'inputs' key (TF Serving REST predict body)"
        )
    tensors = []
    for name, value in columns.items():
        dtype = _dtype_for(name, by_name, value)
        np_dtype = NUMPY_DTYPES.get(dtype, "object")
        try:
            array = np.asarray(value, dtype=np_dtype)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{source}: input {name!r} does not fit its {dtype}: {exc}") from None
        tensors.append(Tensor(name, dtype, array))
    rest_body = {k: v for k, v in body.items() if k != "signature_name"}
    return Payload(
        signature=signature, rest_body={"signature_name": signature, **rest_body}, tensors=tuple(tensors)
    )


def _single_input_name(specs: Mapping[str, InputSpec], source: str) -> str:
    if len(specs) == 1:
        return next(iter(specs))
    if not specs:
        return "inputs"
    raise InvalidInput(f"{source}: unnamed inputs but the signature has {len(specs)} inputs; name them")


def from_request_file(
    path: Path, *, signature: str = "serving_default", specs: list[InputSpec] | None = None
) -> Payload:
    """Read a REST predict body from ``path`` (JSON)."""
    try:
        body = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"--request-file {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"--request-file {path}: not readable JSON ({exc})") from None
    if not isinstance(body, Mapping):
        raise InvalidInput(f"--request-file {path}: expected a JSON object")
    return from_request(body, signature=signature, specs=specs, source=f"--request-file {path}")
