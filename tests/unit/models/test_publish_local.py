from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from support.models_cli import run_tfsctl
from tfsctl.errors import Conflict, InvalidInput
from tfsctl.models import oss, publish, repository


@pytest.fixture
def source(example_model: Path) -> Path:
    return example_model / "2"


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


class TestLocalPublish:
    def test_first_publish_is_version_1_with_identical_files(self, source: Path, tmp_path: Path) -> None:
        result = publish.publish(publish.PublishRequest(source=source, dest=str(tmp_path / "m")))
        assert (result.version, result.dest, result.files) == (1, str(tmp_path / "m" / "1"), 4)
        assert _tree(tmp_path / "m" / "1") == _tree(source)
        assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1"]  # no staging left behind
        assert repository.validate(tmp_path / "m").ok

    def test_next_free_version_follows_the_highest_integer_directory(
        self, source: Path, tmp_path: Path
    ) -> None:
        (tmp_path / "m" / "7").mkdir(parents=True)  # even an incomplete version is never reused
        result = publish.publish(publish.PublishRequest(source=source, dest=str(tmp_path / "m")))
        assert result.version == 8

    def test_published_version_is_readable_by_others(self, source: Path, tmp_path: Path) -> None:
        publish.publish(publish.PublishRequest(source=source, dest=str(tmp_path / "m"), version=3))
        mode = (tmp_path / "m" / "3").stat().st_mode
        assert mode & stat.S_IROTH and mode & stat.S_IXOTH

    def test_refuses_to_overwrite_an_existing_version(self, source: Path, tmp_path: Path) -> None:
        publish.publish(publish.PublishRequest(source=source, dest=str(tmp_path / "m"), version=5))
        before = _tree(tmp_path / "m" / "5")
        with pytest.raises(Conflict, match="version 5 already exists"):
            publish.publish(
                publish.PublishRequest(source=source.parent / "1", dest=str(tmp_path / "m"), version=5)
            )
        assert _tree(tmp_path / "m" / "5") == before
        assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["5"]

    def test_invalid_source_is_rejected_before_anything_is_written(
        self, source: Path, tmp_path: Path
    ) -> None:
        bad = tmp_path / "bad"
        shutil.copytree(source, bad)
        (bad / "variables" / "variables.index").unlink()
        with pytest.raises(InvalidInput, match=r"^SRC .*bad: .*variables.index: missing"):
            publish.publish(publish.PublishRequest(source=bad, dest=str(tmp_path / "m")))
        assert not (tmp_path / "m").exists()

    def test_source_that_is_a_model_directory_is_rejected(self, source: Path, tmp_path: Path) -> None:
        with pytest.raises(InvalidInput, match="SRC must be one SavedModel version directory"):
            publish.publish(publish.PublishRequest(source=source.parent, dest=str(tmp_path / "m")))

    def test_failure_while_copying_leaves_no_version_and_no_staging(
        self, source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = {"n": 0}
        real = publish.LocalPublisher._copy

        def failing_copy(self: publish.LocalPublisher, src: Path, dst: Path) -> None:
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(28, "No space left on device")
            real(self, src, dst)

        monkeypatch.setattr(publish.LocalPublisher, "_copy", failing_copy)
        with pytest.raises(OSError, match="No space left"):
            publish.publish(publish.PublishRequest(source=source, dest=str(tmp_path / "m")))
        assert list((tmp_path / "m").iterdir()) == []

    def test_progress_reports_every_byte(self, source: Path, tmp_path: Path) -> None:
        seen: list[int] = []

        class Recorder(publish.Progress):
            def start(self, total: int, description: str) -> None:
                seen.append(-total)

            def advance(self, n: int) -> None:
                seen.append(n)

        result = publish.publish(publish.PublishRequest(source=source, dest=str(tmp_path / "m")), Recorder())
        assert -seen[0] == result.bytes == sum(seen[1:])


class TestPureDecisions:
    def test_saved_model_is_copied_last(self) -> None:
        files = [publish.SourceFile(n, 1, 0) for n in ("saved_model.pb", "variables/variables.index", "a/z")]
        assert [f.rel for f in publish.copy_order(files)] == [
            "a/z",
            "variables/variables.index",
            "saved_model.pb",
        ]

    def test_next_version(self) -> None:
        assert publish.next_version([]) == 1
        assert publish.next_version([3, 1]) == 4

    def test_manifest_round_trip(self) -> None:
        files = [publish.SourceFile("b", 2, 2**64 - 1), publish.SourceFile("a", 1, 5)]
        assert publish.manifest_files(publish.manifest_json(4, files)) == sorted(files, key=lambda f: f.rel)


class TestCredentials:
    def test_environment(self) -> None:
        env = {"OSS_ACCESS_KEY_ID": "id", "OSS_ACCESS_KEY_SECRET": "s3cr3t", "OSS_ENDPOINT": "oss.example"}
        creds = oss.load_credentials(environ=env)
        assert (creds.access_key_id, creds.endpoint, creds.security_token) == ("id", "oss.example", None)
        assert "s3cr3t" not in repr(creds)

    def test_environment_missing_secret_names_the_variable(self) -> None:
        with pytest.raises(
            InvalidInput, match=r"^OSS_ACCESS_KEY_ID is set but OSS_ACCESS_KEY_SECRET is not$"
        ):
            oss.load_credentials(environ={"OSS_ACCESS_KEY_ID": "id", "OSS_ENDPOINT": "e"})

    def test_profile_sections(self, tmp_path: Path) -> None:
        config = tmp_path / "ossutilconfig"
        config.write_text(
            "[Credentials]\nendpoint=oss-default\naccessKeyID=a\naccessKeySecret=b\n\n"
            "[profile ci]\nendpoint=oss-ci\naccessKeyID=c\naccessKeySecret=d\nstsToken=tok\n"
        )
        assert oss.load_credentials(config_file=config, environ={}).endpoint == "oss-default"
        ci = oss.load_credentials(profile="ci", config_file=config, environ={})
        assert (ci.access_key_id, ci.security_token) == ("c", "tok")
        assert "tok" not in repr(ci) and "'d'" not in repr(ci)

    def test_missing_profile_names_the_file_and_flag(self, tmp_path: Path) -> None:
        config = tmp_path / "cfg"
        config.write_text("[Credentials]\nendpoint=e\naccessKeyID=a\naccessKeySecret=b\n")
        with pytest.raises(InvalidInput, match=r"cfg: no section for --profile prod"):
            oss.load_credentials(profile="prod", config_file=config, environ={})

    def test_profile_missing_secret_names_the_key(self, tmp_path: Path) -> None:
        config = tmp_path / "cfg"
        config.write_text("[default]\nendpoint=e\naccessKeyID=a\n")
        with pytest.raises(InvalidInput, match=r"cfg \[default\]: missing accessKeySecret"):
            oss.load_credentials(config_file=config, environ={})

    def test_no_credentials_at_all_says_how_to_provide_them(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidInput, match="no OSS credentials: set OSS_ACCESS_KEY_ID"):
            oss.load_credentials(environ={"OSS_CONFIG_FILE": str(tmp_path / "none")})

    @pytest.mark.parametrize("url", ["s3://b/p", "oss://", "oss:///prefix"])
    def test_bad_urls(self, url: str) -> None:
        with pytest.raises(InvalidInput):
            oss.OssUrl.parse(url)


class TestUploadCommand:
    def test_upload_prints_the_version_and_exits_0(
        self, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, out, _ = run_tfsctl(capsys, "upload", str(source), str(tmp_path / "m"), "--no-progress")
        assert code == 0
        size = sum(len(b) for b in _tree(source).values())
        assert out == f"published version 1 to {tmp_path / 'm' / '1'}: 4 files, {size} bytes\n"

    def test_existing_version_exits_6_naming_it(
        self, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "m" / "2").mkdir(parents=True)
        code, out, err = run_tfsctl(capsys, "upload", str(source), str(tmp_path / "m"), "--version", "2")
        assert (code, out) == (6, "")
        assert (
            err.strip()
            == f"tfsctl: error: version 2 already exists in {tmp_path / 'm'}; pick another --version"
        )

    def test_missing_source_exits_3_naming_src(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run_tfsctl(capsys, "upload", str(tmp_path / "nope"), str(tmp_path / "m"))
        assert code == 3
        assert err.strip() == f"tfsctl: error: SRC {tmp_path / 'nope'}: no such directory"
        assert not (tmp_path / "m").exists()

    def test_negative_version_exits_2_naming_the_flag(
        self, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run_tfsctl(capsys, "upload", str(source), str(tmp_path / "m"), "--version", "-1")
        assert code == 2
        assert err.strip() == "tfsctl: error: --version -1: must be a non-negative int64"

    def test_oss_dest_without_credentials_exits_2(
        self,
        source: Path,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        for name in ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("OSS_CONFIG_FILE", str(tmp_path / "none"))
        code, _, err = run_tfsctl(capsys, "upload", str(source), "oss://b/m")
        assert code == 2
        assert err.startswith("tfsctl: error: no OSS credentials: set OSS_ACCESS_KEY_ID")


def test_os_rename_is_what_makes_the_version_appear(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the rename, the model directory holds only the hidden staging directory."""
    seen: list[list[str]] = []
    real_rename = os.rename

    def spy(src: str | Path, dst: str | Path) -> None:
        seen.append(sorted(p.name for p in (tmp_path / "m").iterdir()))
        real_rename(src, dst)

    monkeypatch.setattr(publish.os, "rename", spy)
    publish.publish(publish.PublishRequest(source=source, dest=str(tmp_path / "m")))
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].startswith(".tfsctl-staging-1-")


def test_crc64_is_the_one_oss_reports(tmp_path: Path) -> None:
    """The local CRC64 must equal oss2's (what OSS's x-oss-hash-crc64ecma is compared with)."""
    from oss2.utils import Crc64

    from tfsctl.models.publish import crc64_file

    data = bytes(range(256)) * 1000 + b"tail"
    path = tmp_path / "blob"
    path.write_bytes(data)
    theirs = Crc64()
    theirs.update(data)
    assert crc64_file(path) == theirs.crc != 0
