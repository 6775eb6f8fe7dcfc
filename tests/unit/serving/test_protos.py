from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_protos_import_without_the_tensorflow_runtime() -> None:
    out = _run(
        """
        import sys
        from tfsctl.serving import protos
        from tfsctl.serving import client, config
        assert protos.predict_pb2.PredictRequest().model_spec.name == ""
        print("tensorflow" in sys.modules, "tensorflow.python" in sys.modules)
        """
    )
    assert out.split() == ["False", "False"]


@pytest.mark.slow
def test_real_tensorflow_imported_later_shares_the_proto_modules() -> None:
    out = _run(
        """
        from tfsctl.serving import protos
        import tensorflow as tf
        proto = tf.make_tensor_proto([1.0, 2.0])
        same = tf.core.framework.tensor_pb2 is protos.tensor_pb2
        print(isinstance(proto, protos.tensor_pb2.TensorProto), same)
        print(float(tf.reduce_sum(tf.constant([1.0, 2.0]))))
        """
    )
    assert out.split() == ["True", "True", "3.0"]
