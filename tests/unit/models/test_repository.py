from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.models_cli import run_tfsctl
from tfsctl.models import repository, tfrecord
from tfsctl.models.example import WARMUP_FILE, warmup_records


@pytest.fixture
def repo(example_model: Path, tmp_path: Path) -> Path:
    """A mutable repository ``<tmp>/repo/fashion/{1,2}``."""
    shutil.copytree(example_model, tmp_path / "repo" / "fashion")
    return tmp_path / "repo"


def _messages(report: repository.Report) -> list[str]:
    return [str(p) for p in report.problems]


class TestValidate:
    def test_generated_repository_is_valid_with_signatures_and_warmup(self, repo: Path) -> None:
        report = repository.validate(repo)
        assert report.ok, _messages(report)
        assert report.kind == "repository"
        assert [(m.name, [v.version for v in m.versions]) for m in report.models] == [("fashion", [1, 2])]
        assert report.models[0].versions[0].signatures == ["serving_default"]
        assert report.models[0].versions[0].warmup_records == 2

    def test_recognises_model_and_version_directories(self, repo: Path) -> None:
        assert repository.validate(repo / "fashion").kind == "model"
        assert repository.validate(repo / "fashion" / "1").kind == "version"

    def test_tf_serving_testdata_is_valid(self, tf_serving_testdata: Path) -> None:
        report = repository.validate(tf_serving_testdata)
        assert report.ok, _messages(report)
        two = next(m for m in report.models if m.name == "saved_model_half_plus_two_2_versions")
        assert [v.version for v in two.versions] == [123, 124]  # "00000123" is version 123

    def test_does_not_import_the_tensorflow_runtime(self, repo: Path, repo_root: Path) -> None:
        code = (
            "import sys; from tfsctl.models import repository; "
            f"assert repository.validate({str(repo)!r}).ok; "
            "print(sorted(m for m in sys.modules if m.startswith('tensorflow.python')))"
        )
        env = {**os.environ, "PYTHONPATH": str(repo_root / "tools")}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "[]"

    def test_missing_saved_model_names_the_version_directory(self, repo: Path) -> None:
        (repo / "fashion" / "2" / "saved_model.pb").unlink()
        report = repository.validate(repo)
        assert not report.ok
        assert _messages(report) == [f"{repo / 'fashion' / '2'}: no saved_model.pb"]

    def test_corrupt_saved_model_is_reported_as_not_a_protobuf(self, repo: Path) -> None:
        (repo / "fashion" / "1" / "saved_model.pb").write_bytes(b"\xff\xff\xff garbage")
        report = repository.validate(repo)
        assert len(report.errors) == 1
        assert str(report.errors[0]).startswith(
            f"{repo / 'fashion' / '1' / 'saved_model.pb'}: not a SavedModel"
        )

    def test_missing_variables_index_is_reported(self, repo: Path) -> None:
        (repo / "fashion" / "1" / "variables" / "variables.index").unlink()
        report = repository.validate(repo)
        expected = (
            f"{repo / 'fashion' / '1' / 'variables' / 'variables.index'}: missing (the graph has variables)"
        )
        assert _messages(report) == [expected]

    def test_missing_variable_shard_is_reported(self, repo: Path) -> None:
        (repo / "fashion" / "1" / "variables" / "variables.data-00000-of-00001").unlink()
        assert any("no variables.data" in m for m in _messages(repository.validate(repo)))

    def test_stray_non_integer_directory_is_a_warning(self, repo: Path) -> None:
        (repo / "fashion" / "latest").mkdir()
        report = repository.validate(repo)
        assert report.ok
        assert _messages(report) == [
            f"warning: {repo / 'fashion' / 'latest'}: not an integer version directory; TF Serving ignores it"
        ]

    def test_two_directories_for_one_version_are_an_error(self, repo: Path) -> None:
        shutil.copytree(repo / "fashion" / "1", repo / "fashion" / "0001")
        assert any("version 1 also in directory" in m for m in _messages(repository.validate(repo)))

    def test_model_without_versions_is_an_error(self, repo: Path) -> None:
        (repo / "empty").mkdir()
        assert f"{repo / 'empty'}: no integer version directories" in " ".join(
            _messages(repository.validate(repo))
        )

    def test_truncated_warmup_file_names_the_record(self, repo: Path) -> None:
        path = repo / "fashion" / "1" / WARMUP_FILE
        path.write_bytes(path.read_bytes()[:-7])
        first, second = (len(r) for r in warmup_records("fashion"))
        expected = f"record 1 at byte {first + 16}: truncated data ({second} bytes declared)"
        assert _messages(repository.validate(repo)) == [f"{path}: not a TFRecord file: {expected}"]

    def test_flipped_bit_in_warmup_fails_the_crc(self, repo: Path) -> None:
        path = repo / "fashion" / "1" / WARMUP_FILE
        data = bytearray(path.read_bytes())
        data[100] ^= 0x01
        path.write_bytes(bytes(data))
        assert _messages(repository.validate(repo)) == [
            f"{path}: not a TFRecord file: record 0 at byte 0: data CRC mismatch"
        ]

    def test_more_than_1000_warmup_records_is_an_error(self, repo: Path) -> None:
        path = repo / "fashion" / "1" / WARMUP_FILE
        record = warmup_records("fashion", batch_sizes=(1,))[0]
        with path.open("wb") as stream:
            tfrecord.write(stream, [record] * 1001)
        assert _messages(repository.validate(repo)) == [f"{path}: more than 1000 warmup records"]

    def test_exactly_1000_warmup_records_is_fine(self, repo: Path) -> None:
        path = repo / "fashion" / "1" / WARMUP_FILE
        record = warmup_records("fashion", batch_sizes=(1,))[0]
        with path.open("wb") as stream:
            tfrecord.write(stream, [record] * 1000)
        report = repository.validate(repo)
        assert report.ok and report.models[0].versions[0].warmup_records == 1000

    def test_warmup_record_that_is_not_a_prediction_log_is_an_error(self, repo: Path) -> None:
        path = repo / "fashion" / "1" / WARMUP_FILE
        with path.open("wb") as stream:
            tfrecord.write(stream, [b""])  # parses as an empty PredictionLog: no log_type
        assert _messages(repository.validate(repo)) == [
            f"{path}: record 0: log type unset is not a warmup request"
        ]

    def test_warmup_record_that_does_not_parse_is_an_error(self, repo: Path) -> None:
        path = repo / "fashion" / "1" / WARMUP_FILE
        with path.open("wb") as stream:
            tfrecord.write(stream, [b"\xff\xff\xff"])
        assert _messages(repository.validate(repo)) == [
            f"{path}: record 0: not a tensorflow.serving.PredictionLog"
        ]

    def test_warmup_request_for_a_missing_signature_is_an_error(self, repo: Path) -> None:
        from tfsctl.serving import schema

        log = schema.new("tensorflow.serving.PredictionLog")
        log.predict_log.request.model_spec.signature_name = "nope"
        path = repo / "fashion" / "1" / WARMUP_FILE
        with path.open("wb") as stream:
            tfrecord.write(stream, [log.SerializeToString()])
        assert "names signature 'nope', not in the model" in _messages(repository.validate(repo))[0]

    def test_leftover_staging_directory_is_a_warning(self, repo: Path) -> None:
        (repo / "fashion" / ".tfsctl-staging-3-abc").mkdir()
        report = repository.validate(repo)
        assert report.ok
        assert "staging of an unfinished upload" in _messages(report)[0]


class TestListVersions:
    def test_lists_versions_with_a_saved_model_in_numeric_order(self, repo: Path) -> None:
        shutil.copytree(repo / "fashion" / "1", repo / "fashion" / "10")
        (repo / "fashion" / "11").mkdir()  # incomplete: not loadable
        (repo / "fashion" / "other").mkdir()
        assert repository.list_versions(repo / "fashion") == [1, 2, 10]

    def test_repository_root_is_not_a_model_directory(self, repo: Path) -> None:
        with pytest.raises(repository.InvalidInput, match="not a model directory"):
            repository.list_versions(repo)

    def test_missing_directory_is_not_found(self, tmp_path: Path) -> None:
        with pytest.raises(repository.NotFound, match="no such directory"):
            repository.list_versions(tmp_path / "absent")


def test_parse_version_follows_int64_rules() -> None:
    assert repository.parse_version("00000123") == 123
    assert repository.parse_version("0") == 0
    assert repository.parse_version("-1") is None
    assert repository.parse_version("1a") is None
    assert repository.parse_version("\u0661") is None  # non-ASCII digit
    assert repository.parse_version(str(2**63)) is None


class TestTfRecord:
    def test_round_trip(self) -> None:
        data = b"".join(tfrecord.encode(p) for p in (b"", b"x", b"y" * 300))
        assert [r.data for r in tfrecord.read(data)] == [b"", b"x", b"y" * 300]

    def test_known_masked_crc(self) -> None:
        # CRC32C("123456789") = 0xE3069283 (RFC 3720); masked as TFRecord does.
        crc = 0xE3069283
        assert tfrecord.masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    def test_corrupt_length_is_detected(self) -> None:
        data = bytearray(tfrecord.encode(b"abc"))
        data[0] ^= 1
        with pytest.raises(tfrecord.FramingError, match="record 0 at byte 0: length CRC mismatch"):
            list(tfrecord.read(bytes(data)))


class TestCli:
    def test_validate_ok_lists_versions_and_exits_0(
        self, repo: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run_tfsctl(capsys, "models", "validate", str(repo))
        assert code == 0, err
        assert out.splitlines() == [
            "fashion\t1\tsignatures=serving_default\twarmup=2",
            "fashion\t2\tsignatures=serving_default\twarmup=2",
        ]

    def test_validate_problem_exits_7_with_one_line_naming_the_file(
        self, repo: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (repo / "fashion" / "2" / "saved_model.pb").unlink()
        code, _, err = run_tfsctl(capsys, "models", "validate", str(repo))
        assert code == 7
        assert err.splitlines() == [f"tfsctl: error: {repo / 'fashion' / '2'}: no saved_model.pb"]

    def test_validate_json(self, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run_tfsctl(capsys, "models", "validate", str(repo / "fashion"), "--output", "json")
        doc = json.loads(out)
        assert code == 0
        assert doc["ok"] is True and doc["kind"] == "model"
        assert [v["version"] for v in doc["models"][0]["versions"]] == [1, 2]

    def test_versions_prints_one_per_line(self, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, _ = run_tfsctl(capsys, "models", "versions", str(repo / "fashion"))
        assert (code, out) == (0, "1\n2\n")

    def test_versions_of_missing_directory_exits_3(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, err = run_tfsctl(capsys, "models", "versions", str(tmp_path / "nope"))
        assert (code, out) == (3, "")
        assert err.strip() == f"tfsctl: error: {tmp_path / 'nope'}: no such directory"

    def test_profile_flag_is_rejected_for_local_paths(
        self, repo: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run_tfsctl(capsys, "models", "versions", str(repo / "fashion"), "--profile", "x")
        assert code == 2
        assert err.strip() == "tfsctl: error: --profile/--config-file: only used with oss:// paths"
