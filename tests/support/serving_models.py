"""Tiny SavedModels for the serving tests, written by a TensorFlow subprocess.

The test process itself stays TensorFlow-free (the server under test imports it);
generating in a child keeps the runner light and lets these run from fixtures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

TESTDATA = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "tf_serving"

_SLOW_MODEL = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    tf.compat.v1.disable_eager_execution()
    path = sys.argv[1]
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        delay = tf.compat.v1.placeholder(tf.int64, [], name="delay_us")
        # Sleeps on the server without burning CPU: a dataset op that waits, then x * 2.
        ds = tf.data.Dataset.from_tensors(x)
        slept = tf.raw_ops.SleepDataset(
            input_dataset=ds._variant_tensor, sleep_microseconds=delay,
            output_types=[tf.float32], output_shapes=[tf.TensorShape([None])],
        )
        ds = tf.data.experimental.from_variant(slept, ds.element_spec)
        y = tf.identity(ds.get_single_element() * 2.0, name="y")
        with tf.compat.v1.Session(graph=graph) as sess:
            builder = tf.compat.v1.saved_model.Builder(path)
            sig = tf.compat.v1.saved_model.predict_signature_def({"x": x, "delay_us": delay}, {"y": y})
            builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={"serving_default": sig})
            builder.save()
    """
)


def write_slow_model(base: Path, version: int = 1) -> Path:
    """``base/<version>``: predict ``y = 2 * x`` after sleeping ``delay_us`` microseconds."""
    target = base / str(version)
    if target.exists():
        return target
    base.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", _SLOW_MODEL, str(target)], capture_output=True, text=True, timeout=300, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(f"could not write the slow test model: {result.stderr[-2000:]}")
    return target


def copy_model(name: str, dest: Path, versions: tuple[int, ...] | None = None) -> Path:
    """Copy TF Serving test model ``name`` (e.g. ``saved_model_half_plus_two_2_versions``) to ``dest``.

    ``versions`` keeps only those (directory names are zero-padded upstream).
    """
    src = TESTDATA / name
    dest.mkdir(parents=True, exist_ok=True)
    for vdir in sorted(src.iterdir()):
        if vdir.name.isdigit() and (versions is None or int(vdir.name) in versions):
            shutil.copytree(vdir, dest / vdir.name, dirs_exist_ok=True)
    return dest


def add_version(src_model_dir: Path, src_version: str, dest_model_dir: Path, version: int) -> Path:
    """Publish a version like an atomic uploader does: copy aside, then rename into place."""
    staging = dest_model_dir / f".staging-{version}"
    shutil.copytree(src_model_dir / src_version, staging)
    final = dest_model_dir / str(version)
    staging.rename(final)
    return final
