"""One loaded SavedModel version, run the way TF Serving runs it.

TF Serving loads a *session bundle*: the MetaGraphDef tagged ``serve`` imported into
a graph, variables restored and init ops run in a session, signatures called by
feeding and fetching their tensor names. ``tf.compat.v1.saved_model.loader.load``
does exactly that (``tf.saved_model.load`` does not: it rebuilds TF2 functions and
fails on some TF1 models such as half_plus_three). Imports TensorFlow: only the
server process uses this module.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tfsbed.serve.batch_scheduler import BatchScheduler
from tfsctl.serving import tensors
from tfsctl.serving.examples import merge_context
from tfsctl.serving.rules import ServingError, input_mismatch_message

log = logging.getLogger(__name__)

PREDICT = "tensorflow/serving/predict"
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000

_CODE_BY_TF_ERROR = {
    "InvalidArgumentError": "INVALID_ARGUMENT",
    "DeadlineExceededError": "DEADLINE_EXCEEDED",
    "NotFoundError": "NOT_FOUND",
    "FailedPreconditionError": "FAILED_PRECONDITION",
    "ResourceExhaustedError": "RESOURCE_EXHAUSTED",
    "OutOfRangeError": "OUT_OF_RANGE",
    "UnimplementedError": "UNIMPLEMENTED",
    "UnavailableError": "UNAVAILABLE",
    "CancelledError": "CANCELLED",
    "InternalError": "INTERNAL",
}


def import_tensorflow() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)  # loader.load's deprecation notice is not for operators
    return tf


class Servable:
    """A loaded model version: its signatures and a session to run them."""

    def __init__(
        self,
        name: str,
        version: int,
        path: str,
        tags: tuple[str, ...] = ("serve",),
        intra_op_threads: int = 0,
        inter_op_threads: int = 0,
        batcher: BatchScheduler | None = None,
        method_name_check: bool = False,
    ) -> None:
        tf = import_tensorflow()
        self.method_name_check = method_name_check
        self.name = name
        self.version = version
        self.path = path
        self._batcher = batcher
        self._tf = tf
        self._graph = tf.Graph()
        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=intra_op_threads,
            inter_op_parallelism_threads=inter_op_threads,
        )
        self._session = tf.compat.v1.Session(graph=self._graph, config=config)
        try:
            with self._graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(self._session, list(tags), path)
        except Exception as exc:
            self._session.close()
            raise ServingError(
                _tf_code(exc), f"Loading servable: {{name: {name} version: {version}}} failed: {_msg(exc)}"
            ) from exc
        # Every SignatureDef of the meta graph, TF2's "__saved_model_init_op" pseudo-signature too:
        # TF Serving lists it in metadata (servables/tensorflow/testdata/
        # saved_model_half_plus_two_tf2_2_versions_metadata.json has it).
        self.signatures: dict[str, Any] = dict(meta_graph.signature_def.items())
        self._callables: dict[tuple[tuple[str, ...], tuple[str, ...], int], Any] = {}
        self._callables_lock = threading.Lock()

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.forget(self)
        self._session.close()

    # ------------------------------------------------------------------ signatures
    def signature(self, name: str, method: str | None = None) -> Any:
        """The SignatureDef a request names. Predict (``method`` None) follows predict_util.cc;
        classify/regress follow classifier.cc/regressor.cc: the method_name is only checked with
        --enable_signature_method_name_check (off by default: TF2 exports say "predict"
        everywhere), otherwise the signature's shape is (PreProcessClassification/Regression)."""
        key = name or DEFAULT_SIGNATURE
        sig = self.signatures.get(key)
        if sig is None:
            if method is None:
                raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{key}" not found.')
            raise ServingError("INVALID_ARGUMENT", f"No signature was found with the name: {key}")
        if method is None:
            return sig
        kind = "classification" if method == CLASSIFY else "regression"
        if self.method_name_check and sig.method_name != method:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Expected {kind} signature method_name to be {method}. Was: {sig.method_name}",
            )
        if len(sig.inputs) != 1:
            raise ServingError("INVALID_ARGUMENT", "Expected one input Tensor.")
        if method == CLASSIFY and len(sig.outputs) not in (1, 2):
            raise ServingError(
                "INVALID_ARGUMENT", f"Expected one or two output Tensors, found {len(sig.outputs)}"
            )
        if method == REGRESS and len(sig.outputs) != 1:
            raise ServingError("INVALID_ARGUMENT", "Expected one output Tensor.")
        if "inputs" not in sig.inputs:
            raise ServingError("INVALID_ARGUMENT", f"No {kind} inputs found in SignatureDef: {sig}")
        return sig

    def input_dtypes(self, signature: str) -> dict[str, int]:
        sig = self.signature(signature)
        return {k: int(v.dtype) for k, v in sig.inputs.items()}

    # ------------------------------------------------------------------ calls
    def predict(
        self,
        signature: str,
        inputs: Mapping[str, np.ndarray],
        output_filter: list[str] | None = None,
        timeout_ms: int = 0,
    ) -> dict[str, np.ndarray]:
        sig = self.signature(signature)
        if set(inputs) != set(sig.inputs):
            raise ServingError("INVALID_ARGUMENT", input_mismatch_message(inputs, sig.inputs))
        feed = {}
        for i, (key, value) in enumerate(sorted(inputs.items())):
            info = sig.inputs[key]
            expected = tensors.numpy_dtype(info.dtype)
            if np.dtype(expected) != value.dtype and not (expected is np.object_ and value.dtype == object):
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Expects arg[{i}] to be {tensors.dtype_name(info.dtype)[3:].lower()} but "
                    f"{_np_name(value.dtype)} is provided",
                )
            feed[info.name] = value
        names = sorted(output_filter) if output_filter else sorted(sig.outputs)
        for key in names:
            if key not in sig.outputs:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"output tensor alias not found in signature: {key} Outputs expected to be "
                    f"in the set {{{','.join(sorted(sig.outputs))}}}.",
                )
        fetches = [sig.outputs[k].name for k in names]
        results = self._run(fetches, feed, timeout_ms)
        return {k: np.asarray(v) for k, v in zip(names, results, strict=True)}

    def classify(
        self, signature: str, examples: list[Any], context: Any = None, timeout_ms: int = 0
    ) -> list[list[tuple[str, float]]]:
        sig = self.signature(signature, CLASSIFY)
        serialized = self._serialize(examples, context)
        classes_info = sig.outputs.get("classes")
        scores_info = sig.outputs.get("scores")
        if classes_info is None and scores_info is None:
            raise ServingError(
                "INVALID_ARGUMENT", "Expected classification signature outputs to contain classes or scores."
            )
        fetches = [i.name for i in (classes_info, scores_info) if i is not None]
        results = self._run(fetches, {sig.inputs["inputs"].name: serialized}, timeout_ms)
        classes = np.asarray(results[0]) if classes_info is not None else None
        scores = np.asarray(results[-1]) if scores_info is not None else None
        rows = len(examples)
        out: list[list[tuple[str, float]]] = []
        for r in range(rows):
            cls_row = classes[r].reshape(-1) if classes is not None else None
            score_row = scores[r].reshape(-1) if scores is not None else None
            width = len(cls_row) if cls_row is not None else len(score_row)  # type: ignore[arg-type]
            row = []
            for j in range(width):
                label = cls_row[j].decode() if cls_row is not None else ""
                score = float(str(np.float32(score_row[j]))) if score_row is not None else 0.0
                row.append((label, score))
            out.append(row)
        return out

    def regress(
        self, signature: str, examples: list[Any], context: Any = None, timeout_ms: int = 0
    ) -> list[float]:
        sig = self.signature(signature, REGRESS)
        if "outputs" not in sig.outputs:
            raise ServingError(
                "INVALID_ARGUMENT", "Expected regression signature outputs to contain outputs."
            )
        serialized = self._serialize(examples, context)
        (values,) = self._run(
            [sig.outputs["outputs"].name], {sig.inputs["inputs"].name: serialized}, timeout_ms
        )
        flat = np.asarray(values).reshape(len(examples), -1)
        if flat.shape[1] != 1:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Expected output Tensor shape to be [N] or [N, 1] but got {list(np.shape(values))}",
            )
        return [float(str(np.float32(v))) for v in flat[:, 0]]

    def warmup(self) -> int:
        """Replay ``assets.extra/tf_serving_warmup_requests`` like TF Serving; returns the count."""
        path = Path(self.path) / WARMUP_FILE
        if not path.is_file():
            return 0
        from tfsctl.serving.protos import prediction_log_pb2

        count = 0
        for record in self._tf.compat.v1.io.tf_record_iterator(str(path)):
            count += 1
            if count > MAX_WARMUP_RECORDS:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}",
                )
            entry = prediction_log_pb2.PredictionLog.FromString(record)
            kind = entry.WhichOneof("log_type")
            if kind == "predict_log":
                req = entry.predict_log.request
                inputs = {k: tensors.from_tensor_proto(v) for k, v in req.inputs.items()}
                self.predict(req.model_spec.signature_name, inputs, list(req.output_filter) or None)
            elif kind in ("classify_log", "regress_log"):
                req = getattr(entry, kind).request
                examples, context = examples_of(req.input)
                call = self.classify if kind == "classify_log" else self.regress
                call(req.model_spec.signature_name, examples, context)
            else:
                raise ServingError("UNIMPLEMENTED", f"Unsupported log_type for warmup: {kind}")
        return count

    # ------------------------------------------------------------------ internals
    def _serialize(self, examples: list[Any], context: Any) -> np.ndarray:
        if not examples:
            raise ServingError("INVALID_ARGUMENT", "Input is empty.")
        if context is not None:
            examples = [merge_context(e, context) for e in examples]
        return np.array([e.SerializeToString() for e in examples], dtype=object)

    def _run(self, fetches: list[str], feed: Mapping[str, Any], timeout_ms: int) -> list[Any]:
        """One session run; with ``--enable_batching`` through the batch scheduler, as TF Serving's
        ``BatchingSession`` wraps the session: calls with the same feeds and fetches are batched."""
        if self._batcher is not None:
            signature = (tuple(sorted(feed)), tuple(fetches))
            outputs = self._batcher.run(
                self,
                self.name,
                signature,
                feed,
                timeout_ms,
                lambda merged, timeout: self._run_direct(fetches, merged, timeout),
            )
            if outputs is not None:
                return list(outputs)
        return self._run_direct(fetches, feed, timeout_ms)

    def _run_direct(self, fetches: list[str], feed: Mapping[str, Any], timeout_ms: int) -> list[Any]:
        """Run like TF Serving's C++ ``Session::Run``: fed tensors replace the placeholders.

        ``Session.run`` in Python also checks fed shapes against the placeholders'
        static shapes, which the C++ server does not (half_plus_two's ``x`` is
        ``[-1, 1]`` yet ``{"instances": [1.0, 2.0]}`` works there); a session callable
        skips that Python-only check.
        """
        tf = self._tf
        names = sorted(feed)
        key = (tuple(fetches), tuple(names), timeout_ms)
        with self._callables_lock:
            runner = self._callables.get(key)
            if runner is None:
                from tensorflow.core.protobuf import config_pb2

                options = config_pb2.CallableOptions(feed=names, fetch=fetches)
                if timeout_ms > 0:
                    options.run_options.timeout_in_ms = timeout_ms
                try:
                    runner = self._session._make_callable_from_options(options)
                except tf.errors.OpError as exc:
                    raise ServingError(_tf_code(exc), _msg(exc)) from exc
                self._callables[key] = runner
        try:
            return list(runner(*[feed[n] for n in names]))
        except tf.errors.OpError as exc:
            raise ServingError(_tf_code(exc), _msg(exc)) from exc
        except (ValueError, TypeError) as exc:
            raise ServingError("INVALID_ARGUMENT", str(exc)) from exc


def examples_of(message: Any) -> tuple[list[Any], Any]:
    """The examples (and context) of a ``tensorflow.serving.Input``."""
    kind = message.WhichOneof("kind")
    if kind == "example_list":
        return list(message.example_list.examples), None
    if kind == "example_list_with_context":
        return list(message.example_list_with_context.examples), message.example_list_with_context.context
    raise ServingError("INVALID_ARGUMENT", "Input is empty.")


def _tf_code(exc: BaseException) -> str:
    return _CODE_BY_TF_ERROR.get(type(exc).__name__, "UNKNOWN")


def _msg(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message).strip().splitlines()[0] if message else type(exc).__name__


def _np_name(dtype: Any) -> str:
    name = np.dtype(dtype).name
    return {"float64": "double", "float32": "float", "object": "string"}.get(name, name)
