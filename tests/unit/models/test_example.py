from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from support.models_cli import run_tfsctl
from tfsctl.cli.models import models
from tfsctl.errors import InvalidInput
from tfsctl.models import example, tfrecord


def _session_predict(version_dir: Path, images: np.ndarray) -> np.ndarray:
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(version_dir))
        signature = meta.signature_def["serving_default"]
        return np.asarray(
            session.run(signature.outputs["scores"].name, {signature.inputs["images"].name: images})
        )


class TestGenerate:
    def test_writes_saved_model_and_variables_per_version(self, example_model: Path) -> None:
        for v in (1, 2):
            assert (example_model / str(v) / "saved_model.pb").is_file()
            assert (example_model / str(v) / "variables" / "variables.index").is_file()
        assert sorted(p.name for p in example_model.iterdir()) == ["1", "2"]

    def test_session_bundle_loader_serves_the_reference_scores(self, example_model: Path) -> None:
        images = example.sample_images(5)
        for v in (1, 2):
            scores = _session_predict(example_model / str(v), images)
            assert scores.shape == (5, 10)
            np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-5)
            np.testing.assert_allclose(scores, example.reference_scores(images, v), atol=1e-5)

    def test_tf2_loader_serves_the_same_signature(self, example_model: Path) -> None:
        loaded = tf.saved_model.load(str(example_model / "2"))
        fn = loaded.signatures["serving_default"]
        assert set(fn.structured_input_signature[1]) == {"images"}
        images = example.sample_images(3)
        out = fn(images=tf.constant(images))
        assert set(out) == {"scores"}
        np.testing.assert_allclose(out["scores"].numpy(), example.reference_scores(images, 2), atol=1e-5)

    def test_versions_answer_differently(self, example_model: Path) -> None:
        images = example.sample_images(4)
        one = _session_predict(example_model / "1", images)
        two = _session_predict(example_model / "2", images)
        assert np.abs(one - two).max() > 0.05

    def test_warmup_file_is_read_by_tensorflow_as_predict_logs(self, example_model: Path) -> None:
        path = example_model / "1" / example.WARMUP_FILE
        records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
        assert len(records) == len(example.WARMUP_BATCH_SIZES)
        from tensorflow_serving.apis import prediction_log_pb2

        for record, batch in zip(records, example.WARMUP_BATCH_SIZES, strict=True):
            log = prediction_log_pb2.PredictionLog.FromString(record)
            request = log.predict_log.request
            assert request.model_spec.name == "fashion"
            assert [d.size for d in request.inputs["images"].tensor_shape.dim] == [batch, 28, 28, 1]

    def test_warmup_framing_matches_tensorflow_writer(self, tmp_path: Path) -> None:
        path = tmp_path / "records"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for payload in (b"", b"a", b"x" * 1000):
                writer.write(payload)
        data = path.read_bytes()
        assert [r.data for r in tfrecord.read(data)] == [b"", b"a", b"x" * 1000]
        assert b"".join(tfrecord.encode(p) for p in (b"", b"a", b"x" * 1000)) == data

    def test_regenerating_a_version_replaces_it_without_leaving_staging(self, tmp_path: Path) -> None:
        model_dir = example.generate(tmp_path, versions=(7,), warmup=False)
        example.generate(tmp_path, versions=(7,), warmup=False)
        assert sorted(p.name for p in model_dir.iterdir()) == ["7"]
        assert not (model_dir / "7" / "assets.extra").exists()

    @pytest.mark.parametrize("versions", [(), (-1,), ("2",)])
    def test_rejects_bad_versions(self, tmp_path: Path, versions: tuple) -> None:
        with pytest.raises(InvalidInput, match="versions"):
            example.generate(tmp_path, versions=versions)


class TestExampleCommand:
    def test_prints_one_line_per_version(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(models, ["example", str(tmp_path), "--name", "m", "--versions", "3,4"])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [str(tmp_path / "m" / "3"), str(tmp_path / "m" / "4")]

    def test_bad_versions_flag_exits_2_naming_the_flag(self, tmp_path: Path, capsys) -> None:
        code, out, err = run_tfsctl(capsys, "models", "example", str(tmp_path), "--versions", "1,two")
        assert code == 2
        assert out == ""
        assert (
            err.strip()
            == "tfsctl: error: --versions '1,two': expected comma-separated integers such as 1,2,3"
        )
        assert not (tmp_path / "fashion").exists()
