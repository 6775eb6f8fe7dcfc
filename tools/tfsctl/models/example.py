"""Example models: a Fashion-MNIST-shaped classifier in several versions.

``generate(root)`` writes ``<root>/<name>/<version>/`` SavedModels the way TF
Serving expects them: a TF1-style session bundle (so
``tf.compat.v1.saved_model.loader.load`` - what TF Serving does - and
``tf.saved_model.load`` both work) with one ``serving_default`` signature,
input ``images`` float32 ``[-1, 28, 28, 1]`` and output ``scores`` float32
``[-1, 10]`` (softmax), and a warmup file of PredictRequests under
``assets.extra/``.

The network is small (3x3 conv with 8 filters, ReLU, 2x2 max-pool, dense 10,
softmax) with weights drawn from a generator seeded by the version number, so
every version answers differently and the same version always answers the same.
No dataset is downloaded: these models exist to be served, not to be accurate.
This is the only module of the package that imports TensorFlow, and only
inside ``generate``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from tfsctl.errors import InvalidInput
from tfsctl.models import tfrecord

log = logging.getLogger(__name__)

INPUT_NAME = "images"
OUTPUT_NAME = "scores"
SIGNATURE = "serving_default"
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
WARMUP_BATCH_SIZES = (1, 4)
_FILTERS = 8


def weights(version: int) -> dict[str, np.ndarray]:
    """The weights of ``version``: deterministic, different for every version."""
    rng = np.random.default_rng(version)
    flat = (IMAGE_SHAPE[0] // 2) * (IMAGE_SHAPE[1] // 2) * _FILTERS
    return {
        "conv/kernel": rng.normal(0.0, 0.5, (3, 3, 1, _FILTERS)).astype(np.float32),
        "conv/bias": rng.normal(0.0, 0.1, (_FILTERS,)).astype(np.float32),
        "dense/kernel": rng.normal(0.0, 1.0 / np.sqrt(flat), (flat, NUM_CLASSES)).astype(np.float32),
        "dense/bias": rng.normal(0.0, 0.5, (NUM_CLASSES,)).astype(np.float32),
    }


def sample_images(batch: int, seed: int = 0) -> np.ndarray:
    """Deterministic images in [0, 1] shaped like Fashion-MNIST ([batch, 28, 28, 1])."""
    rng = np.random.default_rng(seed)
    return rng.random((batch, *IMAGE_SHAPE), dtype=np.float32)


def reference_scores(images: np.ndarray, version: int) -> np.ndarray:
    """The model's output computed with numpy alone (for tests and the demo)."""
    w = weights(version)
    x = np.asarray(images, dtype=np.float32)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = np.zeros((x.shape[0], IMAGE_SHAPE[0], IMAGE_SHAPE[1], _FILTERS), dtype=np.float32)
    for dy in range(3):
        for dx in range(3):
            patch = padded[:, dy : dy + IMAGE_SHAPE[0], dx : dx + IMAGE_SHAPE[1], :]
            conv += patch @ w["conv/kernel"][dy, dx]
    act = np.maximum(conv + w["conv/bias"], 0.0)
    pooled = act.reshape(x.shape[0], 14, 2, 14, 2, _FILTERS).max(axis=(2, 4))
    logits = pooled.reshape(x.shape[0], -1) @ w["dense/kernel"] + w["dense/bias"]
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def generate(
    root: Path, name: str = "fashion", versions: Iterable[int] = (1, 2), warmup: bool = True
) -> Path:
    """Write ``<root>/<name>/<v>/`` for every version; returns ``<root>/<name>``.

    Each version is built in a hidden staging directory beside its target and
    renamed into place, so a server polling ``<root>/<name>`` never sees a
    half-written version. An existing version directory is replaced.
    """
    versions = tuple(versions)
    if not name or "/" in name or name.startswith("."):
        raise InvalidInput(f"model name {name!r}: must be a non-empty directory name")
    if not versions:
        raise InvalidInput("versions: at least one version is required")
    for v in versions:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise InvalidInput(f"versions: {v!r} is not a non-negative integer")
    model_dir = Path(root) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    tf = _import_tf()
    for version in versions:
        target = model_dir / str(version)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.staging-", dir=model_dir))
        try:
            export = staging / "export"
            _export(tf, export, version)
            if warmup:
                _write_warmup(export / WARMUP_FILE, name)
            if target.exists():
                shutil.rmtree(target)
            os.rename(export, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        log.info("wrote %s", target)
    return model_dir


def _import_tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def _export(tf: Any, export_dir: Path, version: int) -> None:
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        images = v1.placeholder(tf.float32, shape=(None, *IMAGE_SHAPE), name=INPUT_NAME)
        variables = {
            key: v1.Variable(value, name=key.replace("/", "_"), trainable=False)
            for key, value in weights(version).items()
        }
        conv = tf.nn.conv2d(images, variables["conv/kernel"], strides=1, padding="SAME")
        act = tf.nn.relu(tf.nn.bias_add(conv, variables["conv/bias"]))
        pooled = tf.nn.max_pool2d(act, ksize=2, strides=2, padding="VALID")
        flat = tf.reshape(pooled, (-1, 14 * 14 * _FILTERS))
        logits = tf.matmul(flat, variables["dense/kernel"]) + variables["dense/bias"]
        scores = tf.nn.softmax(logits, name=OUTPUT_NAME)
        signature = _predict_signature(images, scores)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(export_dir))
            builder.add_meta_graph_and_variables(
                session,
                [v1.saved_model.tag_constants.SERVING],
                signature_def_map={SIGNATURE: signature},
                strip_default_attrs=True,
            )
            builder.save()


def _predict_signature(images: Any, scores: Any) -> Any:
    """A ``tensorflow/serving/predict`` SignatureDef (built directly: the v1 helpers log deprecations)."""
    from tfsctl.serving.protos import meta_graph_pb2

    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    for mapping, key, tensor in (
        (signature.inputs, INPUT_NAME, images),
        (signature.outputs, OUTPUT_NAME, scores),
    ):
        info = mapping[key]
        info.name = tensor.name
        info.dtype = tensor.dtype.as_datatype_enum
        info.tensor_shape.CopyFrom(tensor.shape.as_proto())
    return signature


def warmup_records(name: str, batch_sizes: Iterable[int] = WARMUP_BATCH_SIZES) -> list[bytes]:
    """Serialized ``PredictionLog``s with one PredictRequest per batch size."""
    from tfsctl.serving.protos import predict_pb2, tensor_pb2, types_pb2
    from tfsctl.serving.protos import prediction_log_pb2 as pl

    records = []
    for i, batch in enumerate(batch_sizes):
        images = sample_images(batch, seed=1000 + i)
        tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=images.tobytes())
        for dim in images.shape:
            tensor.tensor_shape.dim.add(size=dim)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.model_spec.signature_name = SIGNATURE
        request.inputs[INPUT_NAME].CopyFrom(tensor)
        request.output_filter.append(OUTPUT_NAME)
        records.append(pl.PredictionLog(predict_log=pl.PredictLog(request=request)).SerializeToString())
    return records


def _write_warmup(path: Path, name: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        tfrecord.write(stream, warmup_records(name))
