"""Which chart a command uses: ``--chart PATH|oci://REF`` (with ``--version``), default the packaged one.

``parse`` is pure: it decides what the flag names and refuses what cannot be a chart,
in one line naming ``--chart``. ``materialize`` turns the reference into a chart
directory (what helm, the schema check and the values defaults read): a directory
as it is, a ``.tgz`` unpacked, an OCI reference pulled with ``helm pull`` (Helm's own
semantics: ``--version`` picks the tag, none means the newest), through the one helm
adapter (``tfsctl.release.helm``).
"""

from __future__ import annotations

import contextlib
import re
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tfsctl import paths
from tfsctl.errors import InvalidInput, NotFound, ToolkitError

ChartKind = Literal["packaged", "directory", "archive", "oci"]
_OCI = re.compile(r"^oci://[^/\s]+(/[^/\s]+)+$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass(frozen=True)
class ChartRef:
    kind: ChartKind
    location: str
    version: str | None = None

    def describe(self) -> str:
        if self.kind == "packaged":
            return "the packaged chart"
        return self.location + (f" --version {self.version}" if self.version else "")


def parse(chart: str | None, version: str | None = None) -> ChartRef:
    """What ``--chart``/``--version`` name; ``InvalidInput`` naming the flag when it cannot be a chart."""
    if version is not None and not version.strip():
        raise InvalidInput("--version is empty")
    if chart is None or chart == "":
        if version is not None:
            raise InvalidInput("--version picks a chart version from a registry: it needs --chart oci://...")
        return ChartRef("packaged", str(paths.CHART_DIR))
    if chart.startswith("oci://"):
        if not _OCI.match(chart):
            raise InvalidInput(f"--chart {chart!r}: an OCI reference is oci://host/repository/chart")
        if ":" in chart.rsplit("/", 1)[1] or "@" in chart:
            raise InvalidInput(
                f"--chart {chart!r}: give the chart version with --version, not in the reference"
            )
        return ChartRef("oci", chart, version)
    if _SCHEME.match(chart):
        raise InvalidInput(f"--chart {chart!r}: a chart directory, a .tgz, or oci://host/repository/chart")
    if version is not None:
        raise InvalidInput(
            f"--version applies to --chart oci://...; {chart!r} is a path (its Chart.yaml says it)"
        )
    path = Path(chart).expanduser()
    if path.is_dir():
        if not (path / "Chart.yaml").is_file():
            raise InvalidInput(f"--chart {chart}: not a chart directory (no Chart.yaml)")
        return ChartRef("directory", str(path.resolve()))
    if path.is_file():
        if not path.name.endswith((".tgz", ".tar.gz")):
            raise InvalidInput(f"--chart {chart}: a chart is a directory or a .tgz archive")
        return ChartRef("archive", str(path.resolve()))
    raise NotFound(f"--chart {chart}: no such file or directory")


def _chart_dir_in(root: Path, what: str) -> Path:
    found = sorted(p.parent for p in root.glob("*/Chart.yaml"))
    if len(found) != 1:
        raise InvalidInput(f"--chart {what}: expected one chart in it, found {len(found)}")
    return found[0]


@contextlib.contextmanager
def materialize(ref: ChartRef, helm: str | None = None, timeout: float = 120.0) -> Iterator[Path]:
    """A chart directory for ``ref``, for the duration of the block."""
    if ref.kind in ("packaged", "directory"):
        yield Path(ref.location)
        return
    with tempfile.TemporaryDirectory(prefix="tfsctl-chart-") as tmp:
        root = Path(tmp)
        if ref.kind == "archive":
            try:
                with tarfile.open(ref.location, "r:gz") as archive:
                    archive.extractall(root, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise InvalidInput(f"--chart {ref.location}: not a chart archive ({exc})") from exc
            yield _chart_dir_in(root, ref.location)
            return
        import asyncio

        from tfsctl.release import helm as helm_adapter

        client = helm_adapter.helm_client(None, executable=helm)
        try:
            pulled = asyncio.run(helm_adapter.pull(client, ref.location, ref.version, root, timeout))
        except ToolkitError as exc:
            raise type(exc)(f"--chart {ref.describe()}: {exc}", detail=exc.detail) from None
        yield _chart_dir_in(pulled.parent, ref.describe())
