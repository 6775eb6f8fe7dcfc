"""``--enable_batching``: TF Serving's ``BatchingParameters`` and batch assembly (pure).

The parameters file is the text format of (session_bundle_config.proto)::

    message BatchingParameters {
      google.protobuf.Int64Value max_batch_size = 1;        // default 1000
      google.protobuf.Int64Value batch_timeout_micros = 2;  // default 0
      google.protobuf.Int64Value max_enqueued_batches = 3;  // default 10
      google.protobuf.Int64Value num_batch_threads = 4;     // default: the host's cores
      google.protobuf.StringValue thread_pool_name = 5;     // default "batch_threads"
      repeated int64 allowed_batch_sizes = 6;               // increasing, last == max_batch_size
      bool pad_variable_length_inputs = 7;
      google.protobuf.BoolValue enable_large_batch_splitting = 8;  // accepted only false here
      google.protobuf.Int64Value max_execution_batch_size = 9;     // only with splitting
    }

so the wrapper-typed fields are written ``max_batch_size { value: 32 }``. The pip
package ``tensorflow-serving-api`` does not ship the message: it is built here in a
private descriptor pool, as ``tls.py`` builds ``SSLConfig``. Defaults are those of
TF Serving's ``SharedBatchScheduler::Options``/``QueueOptions``; with
``--enable_batching`` and no file TF Serving names the thread pool
``model_server_batch_threads``.

Batch assembly mirrors ``BatchingSession``: the tasks' inputs are concatenated
along dimension 0 in arrival order, the batch is padded up to the next allowed
batch size with copies of the last task's first row, and the outputs are split
back by each task's dimension-0 size (padding rows dropped). With
``pad_variable_length_inputs`` every input is first padded (after its existing
values, in every dimension but 0) to the largest size in the batch, with the
tensor's own first value, as ``batching_util.cc`` does.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfsctl.errors import InvalidInput
from tfsctl.serving.rules import ServingError

FLAG = "--batching_parameters_file"
DEFAULT_THREAD_POOL = "batch_threads"
FLAG_ONLY_THREAD_POOL = "model_server_batch_threads"

_INT64 = ".google.protobuf.Int64Value"
_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("max_batch_size", 1, _INT64),
    ("batch_timeout_micros", 2, _INT64),
    ("max_enqueued_batches", 3, _INT64),
    ("num_batch_threads", 4, _INT64),
    ("thread_pool_name", 5, ".google.protobuf.StringValue"),
    ("allowed_batch_sizes", 6, "repeated int64"),
    ("pad_variable_length_inputs", 7, "bool"),
    ("enable_large_batch_splitting", 8, ".google.protobuf.BoolValue"),
    ("max_execution_batch_size", 9, _INT64),
)


@dataclass(frozen=True)
class BatchingParameters:
    """The effective batching parameters (TF Serving's defaults where a field is unset)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = 0  # 0 = the host's cores (port::MaxParallelism())
    thread_pool_name: str = DEFAULT_THREAD_POOL
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    @property
    def threads(self) -> int:
        return self.num_batch_threads or (os.cpu_count() or 1)

    @classmethod
    def flag_only(cls) -> BatchingParameters:
        """``--enable_batching`` without a parameters file."""
        return cls(thread_pool_name=FLAG_ONLY_THREAD_POOL)


@functools.cache
def _message_class() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = proto.message_type.add(name="BatchingParameters")
    for name, number, kind in _FIELDS:
        if kind.startswith("."):
            message.field.add(
                name=name, number=number, type=field.TYPE_MESSAGE, type_name=kind, label=field.LABEL_OPTIONAL
            )
        elif kind == "repeated int64":
            message.field.add(name=name, number=number, type=field.TYPE_INT64, label=field.LABEL_REPEATED)
        else:
            message.field.add(name=name, number=number, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


def parse_batching_parameters(text: str, source: str) -> BatchingParameters:
    """Parse and validate the text format; ``InvalidInput`` naming the flag, ``source`` and the field."""
    from google.protobuf import text_format

    message = _message_class()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise InvalidInput(
            f"{FLAG}: {source}: invalid text format of tensorflow.serving.BatchingParameters: {exc}"
        ) from exc
    values: dict[str, Any] = {}
    for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
        if message.HasField(name):
            values[name] = int(getattr(message, name).value)
    if message.HasField("thread_pool_name"):
        values["thread_pool_name"] = message.thread_pool_name.value
    values["allowed_batch_sizes"] = tuple(int(v) for v in message.allowed_batch_sizes)
    values["pad_variable_length_inputs"] = bool(message.pad_variable_length_inputs)
    if message.HasField("enable_large_batch_splitting") and message.enable_large_batch_splitting.value:
        raise InvalidInput(
            f"{FLAG}: {source}: enable_large_batch_splitting is not supported by tfsctl serve "
            "(requests larger than max_batch_size are rejected, as without splitting)"
        )
    if message.HasField("max_execution_batch_size"):
        raise InvalidInput(
            f"{FLAG}: {source}: max_execution_batch_size applies only with enable_large_batch_splitting, "
            "which tfsctl serve does not support"
        )
    if values.get("num_batch_threads", 1) <= 0:  # unset means "the host's cores"; an explicit 0 is rejected
        raise InvalidInput(
            f"{FLAG}: {source}: num_batch_threads: num_batch_threads must be positive; "
            f"was {values['num_batch_threads']}"
        )
    params = BatchingParameters(**values)
    validate(params, source)
    return params


def validate(params: BatchingParameters, source: str) -> None:
    """The checks TF Serving applies when it creates the scheduler and its queues."""

    def fail(field: str, message: str) -> None:
        raise InvalidInput(f"{FLAG}: {source}: {field}: {message}")

    if params.max_batch_size <= 0:
        fail("max_batch_size", f"max_batch_size must be positive; was {params.max_batch_size}")
    if params.batch_timeout_micros < 0:
        fail(
            "batch_timeout_micros",
            f"batch_timeout_micros must be non-negative; was {params.batch_timeout_micros}",
        )
    if params.max_enqueued_batches <= 0:
        fail(
            "max_enqueued_batches",
            f"max_enqueued_batches must be positive; was {params.max_enqueued_batches}",
        )
    if params.num_batch_threads < 0:
        fail("num_batch_threads", f"num_batch_threads must be positive; was {params.num_batch_threads}")
    sizes = params.allowed_batch_sizes
    if sizes:
        for prev, size in itertools.pairwise(sizes):
            if size <= prev:
                fail("allowed_batch_sizes", "allowed_batch_sizes entries must be monotonically increasing")
        if sizes[0] <= 0:
            fail("allowed_batch_sizes", f"allowed_batch_sizes entries must be positive; got {sizes[0]}")
        if sizes[-1] != params.max_batch_size:
            fail(
                "allowed_batch_sizes",
                "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
                f"{sizes[-1]}; expected {params.max_batch_size}",
            )


def load_batching_parameters(path: str) -> BatchingParameters:
    """Read and parse ``path``; every failure is one ``InvalidInput`` line naming the flag."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"{FLAG}: cannot read {path}: {reason}") from exc
    return parse_batching_parameters(text, path)


# ---------------------------------------------------------------------- batch assembly
def batch_size_of(inputs: Mapping[str, np.ndarray]) -> int | None:
    """The common dimension-0 size of ``inputs``; ``None`` when they cannot be batched.

    Unbatchable: no inputs, a scalar input, or inputs whose dimension 0 differ
    (TF Serving's ``ComputeTensorBatchSize`` rejects those; here they run unbatched
    and the model gives its own answer).
    """
    sizes = set()
    for value in inputs.values():
        if value.ndim == 0:
            return None
        sizes.add(int(value.shape[0]))
    if len(sizes) != 1:
        return None
    (size,) = sizes
    return size if size > 0 else None


def shape_key(inputs: Mapping[str, np.ndarray], pad_variable_length: bool) -> tuple[Any, ...]:
    """What tasks must share to be merged: dtype and inner shape (only rank when padding) per input."""
    return tuple(
        (name, str(v.dtype), v.ndim if pad_variable_length else tuple(v.shape[1:]))
        for name, v in sorted(inputs.items())
    )


def round_to_allowed(allowed: Sequence[int], size: int) -> int:
    """The smallest allowed batch size >= ``size`` (``size`` itself without allowed sizes)."""
    for candidate in allowed:
        if candidate >= size:
            return candidate
    return size


def _pad_to(value: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    widths = [(0, 0)] + [(0, max(0, d - s)) for d, s in zip(dims[1:], value.shape[1:], strict=True)]
    if all(after == 0 for _, after in widths):
        return value
    if value.size == 0:
        raise ServingError("INVALID_ARGUMENT", "Got empty tensor in batch of non-empty tensors.")
    if not 1 <= value.ndim <= 6:
        raise ServingError("INVALID_ARGUMENT", "Only tensors with rank from 1 to 6 can be padded.")
    return np.pad(value, widths, mode="constant", constant_values=value.flat[0])


def merge(
    tasks: Sequence[Mapping[str, np.ndarray]], allowed: Sequence[int] = (), pad_variable_length: bool = False
) -> tuple[dict[str, np.ndarray], list[int], int]:
    """Concatenate the tasks' inputs along dim 0; returns (merged, task sizes, padding rows)."""
    if not tasks:
        raise ValueError("merge needs at least one task")
    sizes = []
    for task in tasks:
        size = batch_size_of(task)
        if size is None:
            raise ValueError("a task without a common dimension 0 cannot be merged")
        sizes.append(size)
    total = sum(sizes)
    padding = round_to_allowed(allowed, total) - total
    merged: dict[str, np.ndarray] = {}
    for name in tasks[0]:
        parts = [task[name] for task in tasks]
        if pad_variable_length:
            dims = [max(p.shape[d] for p in parts) for d in range(parts[0].ndim)]
            parts = [_pad_to(p, dims) for p in parts]
        elif any(p.shape[1:] != parts[0].shape[1:] for p in parts):
            raise ServingError(
                "FAILED_PRECONDITION",
                f"Tensors with name '{name}' from different tasks have different shapes and padding is "
                "turned off.Set pad_variable_length_inputs to true, or ensure that all tensors with the same "
                "namehave equal dimensions starting with the first dim.",
            )
        if padding:
            parts.append(np.repeat(parts[-1][:1], padding, axis=0))
        merged[name] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    return merged, sizes, padding


def split(outputs: Sequence[np.ndarray], sizes: Sequence[int], padding: int) -> list[list[np.ndarray]]:
    """Each task's slice of every batched output, in task order (padding rows dropped)."""
    total = sum(sizes) + padding
    for value in outputs:
        if value.ndim == 0:
            raise ServingError("FAILED_PRECONDITION", "Batched output tensor has 0 dimensions")
        if value.shape[0] != total:
            raise ServingError(
                "FAILED_PRECONDITION",
                "Batched output tensor's 0th dimension does not equal the sum of the 0th dimension sizes "
                "of the input tensors",
            )
    per_task: list[list[np.ndarray]] = []
    start = 0
    for size in sizes:
        per_task.append([value[start : start + size] for value in outputs])
        start += size
    return per_task
