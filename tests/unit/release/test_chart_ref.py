"""``--chart PATH|oci://REF`` and ``--version``: what they name, and one line naming the flag when wrong."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from tfsctl import paths
from tfsctl.errors import InvalidInput, NotFound, ToolkitError
from tfsctl.release import chart


def test_no_chart_is_the_packaged_one() -> None:
    ref = chart.parse(None)
    assert ref == chart.ChartRef("packaged", str(paths.CHART_DIR))
    with chart.materialize(ref) as directory:
        assert (directory / "Chart.yaml").is_file()


def test_a_chart_directory_is_used_as_it_is(tmp_path: Path) -> None:
    copy = tmp_path / "tensorflow-serving"
    shutil.copytree(paths.CHART_DIR, copy)
    ref = chart.parse(str(copy))
    assert ref.kind == "directory"
    with chart.materialize(ref) as directory:
        assert directory == copy.resolve()


def test_a_chart_archive_is_unpacked_for_the_command(tmp_path: Path) -> None:
    archive = tmp_path / "tensorflow-serving-9.9.9.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(paths.CHART_DIR, arcname="tensorflow-serving")
    ref = chart.parse(str(archive))
    assert ref.kind == "archive"
    with chart.materialize(ref) as directory:
        assert (directory / "values.schema.json").read_text() == (
            paths.CHART_DIR / "values.schema.json"
        ).read_text()
        kept = directory
    assert not kept.exists(), "the unpacked copy outlives the command"


def test_an_oci_reference_keeps_its_version() -> None:
    ref = chart.parse("oci://registry.example/charts/tensorflow-serving", "0.6.0")
    assert ref == chart.ChartRef("oci", "oci://registry.example/charts/tensorflow-serving", "0.6.0")
    assert ref.describe() == "oci://registry.example/charts/tensorflow-serving --version 0.6.0"


@pytest.mark.parametrize(
    ("value", "version", "error", "words"),
    [
        ("/no/such/chart", None, NotFound, "--chart /no/such/chart: no such file or directory"),
        ("https://example/charts/x", None, InvalidInput, "a chart directory, a .tgz, or oci://"),
        ("oci://registry.example", None, InvalidInput, "oci://host/repository/chart"),
        ("oci://registry.example/charts/x:1.0", None, InvalidInput, "with --version, not in the reference"),
        (None, "1.0", InvalidInput, "--version picks a chart version from a registry"),
        ("oci://registry.example/charts/x", " ", InvalidInput, "--version is empty"),
    ],
)
def test_what_cannot_be_a_chart_is_one_line_naming_the_flag(
    value: str | None, version: str | None, error: type[ToolkitError], words: str
) -> None:
    with pytest.raises(error) as caught:
        chart.parse(value, version)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_directory_without_chart_yaml_or_a_plain_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"no Chart\.yaml"):
        chart.parse(str(tmp_path))
    plain = tmp_path / "values.yaml"
    plain.write_text("{}")
    with pytest.raises(InvalidInput, match=r"directory or a \.tgz"):
        chart.parse(str(plain))
    with pytest.raises(InvalidInput, match="applies to --chart oci://"):
        chart.parse(str(tmp_path), "1.0")


def test_an_archive_that_is_not_a_chart_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "x.tgz"
    bogus.write_bytes(b"not gzip")
    with pytest.raises(InvalidInput, match="not a chart archive"), chart.materialize(chart.parse(str(bogus))):
        pass


def _fake_helm(tmp_path: Path, pull: str) -> Path:
    """A helm that answers pyhelm3's ``version`` and runs ``pull`` (shell) for ``pull``."""
    fake = tmp_path / "helm"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ]; then printf v3.15.4; exit 0; fi\n'
        f'echo "$@" > {tmp_path / "argv"}\n' + pull
    )
    fake.chmod(0o755)
    return fake


def test_an_oci_pull_runs_helm_pull_with_the_version(tmp_path: Path) -> None:
    """``helm pull REF --version V --untar``: a fake helm records its argv and writes a chart."""
    fake = _fake_helm(
        tmp_path,
        'while [ "$1" != "--destination" ]; do shift; done\n'
        'mkdir -p "$2/tensorflow-serving"\n'
        'printf "apiVersion: v2\\nname: tensorflow-serving\\nversion: 0.6.0\\n" \\\n'
        '  > "$2/tensorflow-serving/Chart.yaml"\n',
    )
    ref = chart.parse("oci://registry.example/charts/tensorflow-serving", "0.6.0")
    with chart.materialize(ref, helm=str(fake)) as directory:
        assert "version: 0.6.0" in (directory / "Chart.yaml").read_text()
    argv = (tmp_path / "argv").read_text().split()
    assert argv[:2] == ["pull", "oci://registry.example/charts/tensorflow-serving"]
    assert argv[argv.index("--version") + 1] == "0.6.0" and "--untar" in argv


def test_a_failed_oci_pull_says_helms_reason_naming_the_flag(tmp_path: Path) -> None:
    fake = _fake_helm(tmp_path, "echo 'Error: failed to do request: connection refused' >&2\nexit 1\n")
    ref = chart.parse("oci://127.0.0.1:9/charts/tensorflow-serving")
    with pytest.raises(ToolkitError) as caught, chart.materialize(ref, helm=str(fake)):
        pass
    message = str(caught.value)
    assert message.startswith("--chart oci://127.0.0.1:9/charts/tensorflow-serving: ")
    assert "connection refused" in message and "\n" not in message


def test_validate_reads_the_chart_given(tmp_path: Path) -> None:
    """The schema of the chart named by --chart decides, not the packaged one's."""
    from tfsctl.release import ops

    copy = tmp_path / "tensorflow-serving"
    shutil.copytree(paths.CHART_DIR, copy)
    (copy / "values.schema.json").write_text('{"type": "object", "required": ["onlyInThisChart"]}')
    values = tmp_path / "v.yaml"
    values.write_text("{}\n")
    report = ops.validate([values], [], None, None, chart=str(copy))
    assert any("onlyInThisChart" in p for p in report.problems), report.problems
