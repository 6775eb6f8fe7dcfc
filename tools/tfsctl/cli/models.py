"""``tfsctl models`` (example, validate, versions) and ``tfsctl upload``."""

from __future__ import annotations

from pathlib import Path

import click

from tfsctl.cli.output import OUTPUT, structured
from tfsctl.errors import InvalidInput


def _parse_versions(text: str) -> tuple[int, ...]:
    try:
        versions = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InvalidInput(f"--versions {text!r}: expected comma-separated integers such as 1,2,3") from None
    if not versions or any(v < 0 for v in versions):
        raise InvalidInput(f"--versions {text!r}: expected comma-separated non-negative integers")
    return versions


@click.group()
def models() -> None:
    """Model repositories: example models, validation, versions."""


@models.command("example")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="fashion", show_default=True, help="Model name (sub-directory of DIRECTORY).")
@click.option("--versions", "versions_text", default="1,2", show_default=True, help="Versions to write.")
@click.option("--no-warmup", is_flag=True, help="Do not write assets.extra/tf_serving_warmup_requests.")
def example_cmd(directory: Path, name: str, versions_text: str, no_warmup: bool) -> None:
    """Write a Fashion-MNIST-shaped example classifier to DIRECTORY/NAME/<version>/."""
    from tfsctl.models import example

    versions = _parse_versions(versions_text)
    model_dir = example.generate(directory, name=name, versions=versions, warmup=not no_warmup)
    for v in versions:
        click.echo(str(model_dir / str(v)))


def _credentials(path: str, profile: str | None, config_file: Path | None) -> object | None:
    from tfsctl.models import oss

    if not oss.is_oss(path):
        if profile or config_file:
            raise InvalidInput("--profile/--config-file: only used with oss:// paths")
        return None
    return oss.load_credentials(profile=profile, config_file=config_file)


_profile_option = click.option(
    "--profile", default=None, help="Section of the OSS config file to read credentials from."
)
_config_option = click.option(
    "--config-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="ossutil-style config file (default $OSS_CONFIG_FILE or ~/.ossutilconfig).",
)
_output_option = OUTPUT


@models.command("validate")
@click.argument("path")
@_output_option
@_profile_option
@_config_option
def validate_cmd(path: str, output: str, profile: str | None, config_file: Path | None) -> None:
    """Check a repository, model directory or version directory (local or oss://bucket/prefix).

    Prints one line per version; on errors exits 7 with the first one (naming the file) on
    stderr, every finding with -v or -o json.
    """

    from tfsctl.errors import first_of
    from tfsctl.models import repository

    report = repository.validate(path, credentials=_credentials(path, profile, config_file))
    if not structured(output, report.to_dict()):
        for model in report.models:
            for v in model.versions:
                warmup = "-" if v.warmup_records is None else str(v.warmup_records)
                label = model.name or report.path
                click.echo(
                    f"{label}\t{v.version}\tsignatures={','.join(v.signatures) or '-'}\twarmup={warmup}"
                )
        if report.ok:
            for problem in report.warnings:
                click.echo(f"tfsctl: warning: {problem}", err=True)
    if not report.ok:
        raise first_of(report.errors)


@models.command("versions")
@click.argument("path")
@_output_option
@_profile_option
@_config_option
def versions_cmd(path: str, output: str, profile: str | None, config_file: Path | None) -> None:
    """List the loadable versions (those with saved_model.pb) of a model directory."""

    from tfsctl.models import repository

    found = repository.list_versions(path, credentials=_credentials(path, profile, config_file))
    if not structured(output, {"path": path, "versions": found}):
        for v in found:
            click.echo(str(v))


class _TqdmProgress:
    """The publisher's progress as a tqdm bar on stderr."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: object | None = None

    def start(self, total: int, description: str) -> None:
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=description, leave=False
            )

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)  # type: ignore[attr-defined]

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()  # type: ignore[attr-defined]
            self.bar = None


@click.command("upload")
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dest")
@click.option(
    "--version", "version", type=int, default=None, help="Version number (default: the next free one)."
)
@click.option(
    "--restart", is_flag=True, help="OSS: discard an unfinished upload of other content for --version."
)
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: when a TTY).")
@click.option(
    "--part-size",
    type=click.IntRange(min=100 * 1024),
    default=8 << 20,
    show_default=True,
    help="OSS multipart part size in bytes (files over twice this size go multipart).",
)
@_output_option
@_profile_option
@_config_option
def upload(
    src: Path,
    dest: str,
    version: int | None,
    restart: bool,
    progress: bool | None,
    part_size: int,
    output: str,
    profile: str | None,
    config_file: Path | None,
) -> None:
    """Publish the SavedModel in SRC as a new version of DEST atomically.

    DEST is a local model directory or oss://bucket/path/to/model. Interrupted OSS
    uploads resume when the same command is run again. An existing version is
    never overwritten.
    """
    import sys

    from tfsctl.models import publish

    request = publish.PublishRequest(
        source=src,
        dest=dest,
        version=version,
        credentials=_credentials(dest, profile, config_file),  # type: ignore[arg-type]
        restart=restart,
        part_size=part_size,
        multipart_threshold=2 * part_size,
    )
    show = sys.stderr.isatty() if progress is None else progress
    result = publish.publish(request, progress=_TqdmProgress(show))  # type: ignore[arg-type]
    if not structured(output, result.__dict__):
        resumed = " (resumed)" if result.resumed else ""
        summary = f"{result.files} files, {result.bytes} bytes"
        click.echo(f"published version {result.version} to {result.dest}{resumed}: {summary}")
