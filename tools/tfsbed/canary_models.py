"""Generated models for canary tests and benchmarks: a tiny classifier in versions that differ on purpose.

``clf`` takes ``x`` float32 ``[-1, 4]`` and returns ``scores`` float32 ``[-1, 3]`` (softmax of
a fixed dense layer), written as TF1-style SavedModels with a warmup file, like TF Serving's
test models:

- version 1: the reference function;
- version 2: the same function (weights copied, so outputs agree to float rounding);
- version 3: shifted outputs (a bias added before the softmax: the top class moves);
- version 4: the same function, slower: a while loop over the input (so nothing is folded
  away) whose result is added times zero runs on every request;
- version 5: broken: a ``saved_model.pb`` that is not a SavedModel proto. The real
  ``tensorflow_model_server`` fails to parse it too (``ReadSavedModel`` -> "Could not parse"),
  so the version ends in END with an error after its load retries.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tfsctl import paths

MODEL = "clf"
SAME, SHIFTED, SLOW, BROKEN = 2, 3, 4, 5
WEIGHTS = np.random.default_rng(11).normal(size=(4, 3)).astype(np.float32)
BIAS = np.zeros(3, dtype=np.float32)
SHIFT = np.array([4.0, 0.0, -4.0], dtype=np.float32)
SLOW_STEPS = 4000  # tens of milliseconds per request on one core, against well under one


def inputs(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, 4)).astype(np.float32)


def _export(tf: Any, target: Path, bias: np.ndarray, slow: bool) -> None:
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x = v1.placeholder(tf.float32, shape=(None, 4), name="x")
        w = v1.Variable(WEIGHTS, name="w", trainable=False)
        b = v1.Variable(bias, name="b", trainable=False)
        logits = tf.matmul(x, w) + b
        if slow:
            # a loop of small ops that depends on the input (so nothing is folded away) and adds 0 * it
            def body(i: Any, acc: Any) -> tuple[Any, Any]:
                return i + 1, acc + tf.reduce_sum(tf.tanh(x * tf.cast(i, tf.float32)))

            _, acc = tf.while_loop(lambda i, acc: i < SLOW_STEPS, body, (tf.constant(0), tf.constant(0.0)))
            logits = logits + 0.0 * tf.tanh(acc)
        scores = tf.nn.softmax(logits, name="scores")
        info_x = v1.saved_model.utils.build_tensor_info(x)
        info_s = v1.saved_model.utils.build_tensor_info(scores)
        signature = v1.saved_model.signature_def_utils.build_signature_def(
            inputs={"x": info_x}, outputs={"scores": info_s}, method_name="tensorflow/serving/predict"
        )
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(target))
            builder.add_meta_graph_and_variables(
                session, ["serve"], signature_def_map={"serving_default": signature}, strip_default_attrs=True
            )
            builder.save()
    _write_warmup(target)


def _write_warmup(version_dir: Path) -> None:
    from tfsctl.models import tfrecord
    from tfsctl.serving import tensors
    from tfsctl.serving.protos import predict_pb2, prediction_log_pb2

    records = []
    for i, batch in enumerate((1, 4)):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.model_spec.signature_name = "serving_default"
        request.inputs["x"].CopyFrom(tensors.to_tensor_proto(inputs(batch, seed=100 + i)))
        log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        records.append(log.SerializeToString())
    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        tfrecord.write(stream, records)


def canary_models_dir() -> Path:
    """``<dir>/clf/{1..5}`` generated once (kept under ``.tools/cluster-data``; TF needed once)."""
    root = paths.TOOLS_DIR / "cluster-data" / "canary-models"
    marker = root / ".complete"
    if marker.exists():
        return root
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    model_dir = root / MODEL
    model_dir.mkdir(parents=True, exist_ok=True)
    specs = {1: (BIAS, False), SAME: (BIAS, False), SHIFTED: (BIAS + SHIFT, False), SLOW: (BIAS, True)}
    for version, (bias, slow) in specs.items():
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=model_dir))
        try:
            _export(tf, staging / "export", bias, slow)
            target = model_dir / str(version)
            if target.exists():
                shutil.rmtree(target)
            os.rename(staging / "export", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    broken = model_dir / str(BROKEN)
    broken.mkdir(exist_ok=True)
    (broken / "saved_model.pb").write_bytes(b"this is not a SavedModel protocol buffer\n")
    (broken / "variables").mkdir(exist_ok=True)
    marker.write_text("clf 1 2 3 4 5\n")
    return root
