"""Publish, validate and list versions against the loopback OSS endpoint (tests/support/oss_server.py)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from support.models_cli import run_tfsctl
from support.oss_server import Event, OssServer
from tfsctl.errors import CheckFailed, Conflict, ToolkitError
from tfsctl.models import oss, publish, repository

from .conftest import SECRET

pytestmark = pytest.mark.e2e

DEST = "oss://models/repo/fashion"
PART = 100 * 1024
BIG = "assets/vocab.bin"


def _request(
    source: Path, credentials: oss.Credentials, tmp_path: Path, **kw: object
) -> publish.PublishRequest:
    return publish.PublishRequest(
        source=source,
        dest=DEST,
        credentials=credentials,
        part_size=PART,
        multipart_threshold=2 * PART,
        num_threads=1,
        checkpoint_dir=tmp_path / "checkpoints",
        **kw,  # type: ignore[arg-type]
    )


def _writes(server: OssServer) -> list[Event]:
    ops = {"PutObject", "CopyObject", "CompleteMultipartUpload", "UploadPart"}
    return [e for e in server.events if e.op in ops and e.status == 200]


def _source_files(source: Path) -> list[str]:
    return sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())


class TestPublish:
    def test_publishes_every_file_under_the_next_version_and_removes_staging(
        self, server: OssServer, credentials: oss.Credentials, source: Path, tmp_path: Path
    ) -> None:
        result = publish.publish(_request(source, credentials, tmp_path))
        assert (result.version, result.dest, result.resumed) == (1, f"{DEST}/1/", False)
        assert server.keys(prefix="repo/") == [f"repo/fashion/1/{f}" for f in _source_files(source)]
        for rel in _source_files(source):
            assert server.buckets["models"][f"repo/fashion/1/{rel}"].data == (source / rel).read_bytes()
        assert len(server.ops("UploadPart", BIG)) == 11  # 1 MiB in 100 KiB parts: multipart really ran
        assert publish.publish(_request(source, credentials, tmp_path)).version == 2

    def test_saved_model_is_the_last_object_written_under_the_version(
        self, server: OssServer, credentials: oss.Credentials, source: Path, tmp_path: Path
    ) -> None:
        publish.publish(_request(source, credentials, tmp_path))
        writes = _writes(server)
        final = [e for e in writes if e.key.startswith("repo/fashion/1/")]
        staging = [e for e in writes if "/.tfsctl-staging/" in e.key]
        assert final[-1].key == "repo/fashion/1/saved_model.pb"
        assert len(final) == len(_source_files(source))
        assert max(e.seq for e in staging) < min(e.seq for e in final)  # verified staging first, then copies
        heads = [e for e in server.events if e.op == "HeadObject" and "/.tfsctl-staging/1/" in e.key]
        assert max(e.seq for e in heads) < min(e.seq for e in final)  # every staged object verified first

    def test_a_polling_reader_never_sees_saved_model_before_the_rest(
        self, server: OssServer, credentials: oss.Credentials, source: Path, tmp_path: Path
    ) -> None:
        """At every write under <model>/1/, if saved_model.pb exists the version is complete."""
        expected = {f"repo/fashion/1/{f}" for f in _source_files(source)}
        violations: list[set[str]] = []

        def check(event: Event) -> None:
            keys = set(server.keys(prefix="repo/fashion/1/"))
            if "repo/fashion/1/saved_model.pb" in keys and keys != expected:
                violations.append(keys)

        server.on_request.append(check)
        publish.publish(_request(source, credentials, tmp_path))
        assert set(server.keys(prefix="repo/fashion/1/")) == expected
        assert violations == []

    def test_refuses_to_overwrite_an_existing_version(
        self, server: OssServer, credentials: oss.Credentials, source: Path, tmp_path: Path
    ) -> None:
        publish.publish(_request(source, credentials, tmp_path, version=4))
        before = {k: o.data for k, o in server.buckets["models"].items()}
        (source / BIG).write_bytes(b"different content")
        with pytest.raises(Conflict, match=r"^version 4 already exists at oss://models/repo/fashion/4/$"):
            publish.publish(_request(source, credentials, tmp_path, version=4))
        assert {k: o.data for k, o in server.buckets["models"].items()} == before

    def test_validate_and_versions_read_the_bucket(
        self, server: OssServer, credentials: oss.Credentials, source: Path, tmp_path: Path
    ) -> None:
        publish.publish(_request(source, credentials, tmp_path, version=3))
        publish.publish(_request(source, credentials, tmp_path, version=10))
        assert repository.list_versions(DEST, credentials=credentials) == [3, 10]
        report = repository.validate("oss://models/repo", credentials=credentials)
        assert report.ok, [str(p) for p in report.problems]
        assert [v.warmup_records for v in report.models[0].versions] == [2, 2]

    def test_validate_names_the_object_url_of_a_problem(
        self, server: OssServer, credentials: oss.Credentials, source: Path, tmp_path: Path
    ) -> None:
        publish.publish(_request(source, credentials, tmp_path))
        server.buckets["models"]["repo/fashion/1/saved_model.pb"].data = b"\xff not a proto"
        server.buckets["models"]["repo/fashion/1/saved_model.pb"].crc = None
        report = repository.validate(DEST, credentials=credentials)
        assert [str(p).split(" (")[0] for p in report.errors] == [
            "oss://models/repo/fashion/1/saved_model.pb: not a SavedModel protobuf"
        ]


class TestResume:
    def test_failed_part_leaves_nothing_visible_and_rerun_resumes_from_the_checkpoint(
        self, server: OssServer, credentials: oss.Credentials, source: Path, tmp_path: Path
    ) -> None:
        server.inject("UploadPart", BIG, "error", part_number=6)
        with pytest.raises(
            ToolkitError,
            match=r"uploading assets/vocab\.bin to oss://models/repo/fashion/\.tfsctl-staging/1/",
        ):
            publish.publish(_request(source, credentials, tmp_path))
        assert server.keys(prefix="repo/fashion/1/") == []
        assert repository.list_versions(DEST, credentials=credentials) == []
        first_run = {e.part_number for e in server.ops("UploadPart", BIG) if e.status == 200}
        assert first_run == {1, 2, 3, 4, 5}

        mark = len(server.events)
        result = publish.publish(_request(source, credentials, tmp_path))
        assert (result.version, result.resumed) == (1, True)
        second_run = {
            e.part_number for e in server.events[mark:] if e.op == "UploadPart" and e.key.endswith(BIG)
        }
        assert second_run == set(range(6, 12))  # parts 1-5 were not sent again
        # the same multipart upload continued from oss2's checkpoint: no new one was started
        assert not any(e.op == "InitiateMultipartUpload" for e in server.events[mark:])
        assert server.buckets["models"][f"repo/fashion/1/{BIG}"].data == (source / BIG).read_bytes()
        assert server.keys(prefix="repo/fashion/.tfsctl-staging") == []

    def test_interrupted_copy_phase_is_finished_by_a_rerun(
        self, server: OssServer, credentials: oss.Credentials, source: Path, tmp_path: Path
    ) -> None:
        server.inject("CopyObject", "variables/variables.index", "error")
        with pytest.raises(ToolkitError, match=r"copying variables/variables\.index"):
            publish.publish(_request(source, credentials, tmp_path))
        assert server.keys(prefix="repo/fashion/1/saved_model.pb") == []
        assert repository.list_versions(DEST, credentials=credentials) == []
        result = publish.publish(_request(source, credentials, tmp_path))
        assert (result.version, result.resumed, result.uploaded_bytes) == (1, True, 0)
        assert repository.list_versions(DEST, credentials=credentials) == [1]

    def test_killed_upload_process_resumes(
        self, server: OssServer, source: Path, tmp_path: Path, repo_root: Path
    ) -> None:
        env = {
            **os.environ,
            **server.env(),
            "HOME": str(tmp_path / "home"),
            "PYTHONPATH": str(repo_root / "tools"),
        }
        argv = [
            sys.executable,
            "-m",
            "tfsctl",
            "upload",
            str(source),
            DEST,
            "--part-size",
            str(PART),
            "--no-progress",
        ]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        killed = threading.Event()

        def kill_after_part_3(event: Event) -> None:
            if event.op == "UploadPart" and event.part_number == 3 and not killed.is_set():
                killed.set()
                proc.send_signal(signal.SIGKILL)

        server.on_request.append(kill_after_part_3)
        proc.communicate(timeout=120)
        assert killed.is_set() and proc.returncode == -signal.SIGKILL
        assert server.keys(prefix="repo/fashion/1/") == []
        server.on_request.clear()

        mark = len(server.events)
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"published version 1 to {DEST}/1/ (resumed)")
        resent = {e.part_number for e in server.events[mark:] if e.op == "UploadPart" and e.key.endswith(BIG)}
        assert not any(e.op == "InitiateMultipartUpload" for e in server.events[mark:])
        # The CLI uploads two parts at a time: part 3 starts once part 1 or part 2 is done and
        # checkpointed, while the other may still be in flight when the kill lands (then it is
        # sent again). A rerun from scratch would send both.
        assert not {1, 2} <= resent, resent
        assert server.buckets["models"][f"repo/fashion/1/{BIG}"].data == (source / BIG).read_bytes()


class TestCrc:
    def test_wrong_crc_from_the_server_fails_the_upload(
        self, server: OssServer, credentials: oss.Credentials, source: Path, tmp_path: Path
    ) -> None:
        server.inject("PutObject", "variables/variables.index", "bad-crc")
        with pytest.raises(CheckFailed, match="CRC64 mismatch between client and OSS"):
            publish.publish(_request(source, credentials, tmp_path))
        assert server.keys(prefix="repo/fashion/1/") == []

    def test_object_corrupted_at_rest_is_caught_by_verification_and_reuploaded_by_a_rerun(
        self, server: OssServer, credentials: oss.Credentials, source: Path, tmp_path: Path
    ) -> None:
        server.inject("PutObject", "staging/1/saved_model.pb", "corrupt")
        with pytest.raises(CheckFailed, match=r"tfsctl-staging/1/saved_model.pb: staged object size/CRC64"):
            publish.publish(_request(source, credentials, tmp_path))
        assert server.keys(prefix="repo/fashion/1/") == []
        result = publish.publish(_request(source, credentials, tmp_path))
        assert result.resumed and result.uploaded_bytes == (source / "saved_model.pb").stat().st_size
        assert (
            server.buckets["models"]["repo/fashion/1/saved_model.pb"].data
            == (source / "saved_model.pb").read_bytes()
        )


class TestCli:
    def test_upload_validate_versions_with_env_credentials_never_show_the_secret(
        self,
        server: OssServer,
        source: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        caplog.set_level(logging.DEBUG)
        code, out, err = run_tfsctl(capsys, "-vv", "upload", str(source), DEST, "--part-size", str(PART))
        assert code == 0, err
        size = sum((source / f).stat().st_size for f in _source_files(source))
        assert out == f"published version 1 to {DEST}/1/: 5 files, {size} bytes\n"
        code, out2, err2 = run_tfsctl(capsys, "models", "versions", DEST)
        assert (code, out2) == (0, "1\n")
        code, out3, err3 = run_tfsctl(capsys, "models", "validate", "oss://models/repo")
        assert code == 0 and out3.startswith("fashion\t1\tsignatures=serving_default")
        code, _, err4 = run_tfsctl(capsys, "upload", str(source), DEST, "--version", "1")
        assert code == 6 and err4.strip() == f"tfsctl: error: version 1 already exists at {DEST}/1/"
        everything = out + err + out2 + err2 + out3 + err3 + err4 + caplog.text
        assert "oss2" in caplog.text  # debug logging of the client really ran
        assert SECRET not in everything

    def test_profile_with_sts_token(
        self,
        source: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        with OssServer(access_key_id="sts-id", access_key_secret=SECRET, security_token="tok-123") as srv:
            config = tmp_path / "ossutilconfig"
            config.write_text(
                f"[profile ci]\nendpoint={srv.endpoint}\naccessKeyID=sts-id\n"
                f"accessKeySecret={SECRET}\nstsToken=tok-123\n"
            )
            monkeypatch.delenv("OSS_ACCESS_KEY_ID", raising=False)
            monkeypatch.setenv("HOME", str(tmp_path / "home"))
            code, out, err = run_tfsctl(
                capsys,
                "upload",
                str(source),
                DEST,
                "--profile",
                "ci",
                "--config-file",
                str(config),
                "--no-progress",
            )
            assert code == 0, err
            assert srv.keys(prefix="repo/fashion/1/saved_model.pb") == ["repo/fashion/1/saved_model.pb"]
            assert SECRET not in out + err

    def test_wrong_secret_is_rejected_by_the_signature_check_without_echoing_it(
        self,
        server: OssServer,
        source: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "wrong-secret-value")
        code, out, err = run_tfsctl(capsys, "models", "versions", DEST)
        assert (code, out) == (2, "")
        assert err.startswith("tfsctl: error: oss://models/repo/fashion: OSS 403 SignatureDoesNotMatch")
        assert "check the access key" in err and err.count("\n") == 1
        assert "wrong-secret-value" not in err and SECRET not in err
        assert server.keys() == []
