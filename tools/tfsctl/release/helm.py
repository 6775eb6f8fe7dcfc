"""Helm adapter over pyhelm3 (async). Every call is bounded; errors become ``tfsctl.errors``.

Values are merged by us (``tfsctl.release.values``) and passed as ONE dict:
pyhelm3 concatenates lists when it merges several.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tfsctl.errors import Conflict, InvalidInput, ReleaseNotFound, Timeout, ToolkitError, Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

PENDING = {"pending-install", "pending-upgrade", "pending-rollback", "uninstalling"}


@dataclass(frozen=True)
class ReleaseInfo:
    name: str
    namespace: str
    revision: int
    status: str
    manifest: str = ""


_EXECUTION_ERROR = re.compile(r"execution error at \(([^)]*)\): (.*)")
_FAIL_CALL = re.compile(r"error calling fail: (.*)")


def cause(stderr: str) -> tuple[str, str]:
    """The line of helm's stderr that says what is wrong, and the rest (for ``-v``).

    helm ends template failures with "Use --debug flag to render out invalid YAML"; the cause is
    the ``execution error at (<template>): <message>`` line, where ``fail`` put the chart's own
    message. Schema failures list one ``- at '/path': ...`` line per value under a header.
    """
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    if not lines:
        return "", ""
    for ln in lines:
        found = _EXECUTION_ERROR.search(ln) or _FAIL_CALL.search(ln)
        if found:
            return found.groups()[-1].strip(), stderr.strip()
    schema = [ln[2:].strip() for ln in lines if ln.startswith("- ")]
    if schema and any("schema" in ln for ln in lines):
        return "values do not match the chart's schema: " + "; ".join(schema), stderr.strip()
    first = next((ln for ln in lines if ln.lower().startswith("error")), lines[0])
    first = re.sub(r"^error:\s*", "", first, flags=re.IGNORECASE)
    return first, stderr.strip()


def translate(exc: Exception, what: str) -> ToolkitError:
    """A pyhelm3 error as the matching toolkit error: helm's cause line kept, the rest for ``-v``."""
    from pyhelm3 import errors as herr

    text = ""
    if isinstance(exc, herr.Error):
        text = exc.stderr.decode(errors="replace").strip()
    text = text or str(exc)
    line, detail = cause(text)
    line = line or type(exc).__name__
    lowered = text.lower()
    if isinstance(exc, herr.ReleaseNotFoundError):
        return ReleaseNotFound(f"{what}: release not found", detail=detail)
    if "another operation" in lowered and "in progress" in lowered:
        return Conflict(
            f"{what}: another helm operation is in progress; wait for it, or see `helm history`",
            detail=detail,
        )
    if isinstance(exc, herr.ConnectionError) or any(
        s in lowered for s in ("cluster unreachable", "connection refused", "no such host", "i/o timeout")
    ):
        return Unavailable(f"{what}: cannot reach the cluster: {line}", detail=detail)
    if isinstance(exc, (herr.FailedToRenderChartError, herr.InvalidResourceError)):
        return InvalidInput(f"{what}: {line}", detail=detail)
    return ToolkitError(f"{what}: {line}", detail=detail)


class HelmAdapter:
    """Install/upgrade/inspect one chart's releases through a ``pyhelm3.Client``."""

    def __init__(self, client: Any, chart_dir: Path, timeout: float = 300.0) -> None:
        self.client = client
        self.chart_dir = Path(chart_dir)
        self.timeout = timeout
        self._chart: Any = None

    async def _bounded(self, coro: Awaitable[T], what: str, timeout: float | None = None) -> T:
        limit = timeout or self.timeout
        try:
            return await asyncio.wait_for(coro, limit)
        except asyncio.TimeoutError:
            raise Timeout(f"{what}: no answer from helm within {limit:.0f}s") from None
        except ToolkitError:
            raise
        except Exception as exc:
            from pyhelm3 import errors as herr

            if isinstance(exc, herr.Error):
                raise translate(exc, what) from None
            raise

    async def chart(self) -> Any:
        if self._chart is None:
            self._chart = await self._bounded(
                self.client.get_chart(self.chart_dir), f"chart {self.chart_dir}"
            )
        return self._chart

    async def _current(self, release: str, namespace: str) -> Any:
        """pyhelm3's current revision of the release (``helm status``); ``ReleaseNotFound`` if none."""
        return await self._bounded(
            self.client.get_current_revision(release, namespace=namespace), f"release {namespace}/{release}"
        )

    async def status(self, release: str, namespace: str) -> ReleaseInfo | None:
        try:
            revision = await self._current(release, namespace)
        except ReleaseNotFound:
            return None
        resources = await self._bounded(revision.resources(), f"manifest of {namespace}/{release}")
        return ReleaseInfo(
            release, namespace, int(revision.revision), str(revision.status.value), _dump(resources)
        )

    async def require_deployed(self, release: str, namespace: str) -> ReleaseInfo:
        info = await self.status(release, namespace)
        if info is None:
            raise ReleaseNotFound(
                f"release {namespace}/{release} not found: `helm list -n {namespace}` lists the releases, "
                f"`tfsctl deploy -r {release} -n {namespace} -f VALUES` installs it"
            )
        if info.status in PENDING:
            raise Conflict(
                f"release {namespace}/{release} is {info.status} (revision {info.revision}): another helm "
                f"operation is running or was interrupted; wait, or `helm rollback {release} -n {namespace}`"
            )
        return info

    async def values(self, release: str, namespace: str, *, computed: bool = False) -> dict[str, Any]:
        revision = await self._current(release, namespace)
        return dict(
            await self._bounded(revision.values(computed=computed), f"values of {namespace}/{release}") or {}
        )

    async def upgrade(
        self,
        release: str,
        namespace: str,
        values: dict[str, Any],
        *,
        atomic: bool = True,
        wait: bool = False,
        timeout: float | None = None,
        dry_run: bool = False,
        description: str | None = None,
    ) -> ReleaseInfo:
        chart = await self.chart()
        limit = timeout or self.timeout
        rev = await self._bounded(
            self.client.install_or_upgrade_release(
                release,
                chart,
                values,
                atomic=atomic,
                wait=wait,
                timeout=f"{int(limit)}s",
                dry_run=dry_run,
                namespace=namespace,
                description=description,
                create_namespace=False,
            ),
            f"helm upgrade {namespace}/{release}",
            limit + 30,
        )
        resources = await self._bounded(rev.resources(), f"manifest of {namespace}/{release}")
        return ReleaseInfo(release, namespace, int(rev.revision), str(rev.status.value), _dump(resources))

    async def template_docs(self, release: str, namespace: str, values: dict[str, Any]) -> list[Any]:
        """The chart rendered with ``values`` (``helm template``): one dict per resource."""
        chart = await self.chart()
        docs = await self._bounded(
            self.client.template_resources(chart, release, values, namespace=namespace),
            f"helm template {release}",
        )
        return [d for d in docs if d]

    async def template(self, release: str, namespace: str, values: dict[str, Any]) -> str:
        return _dump(await self.template_docs(release, namespace, values))

    @staticmethod
    def normalise_manifest(text: str) -> str:
        """Re-dump a manifest with sorted keys so diffs show changes, not formatting."""
        docs = [d for d in yaml.safe_load_all(text) if d]
        docs.sort(key=lambda d: (d.get("kind", ""), d.get("metadata", {}).get("name", "")))
        return "\n---\n".join(yaml.safe_dump(d, sort_keys=True) for d in docs)


async def pull(client: Any, chart_ref: str, version: str | None, into: Path, timeout: float) -> Path:
    """``helm pull CHART_REF [--version V] --untar`` through pyhelm3; the chart copied under ``into``."""
    what = f"helm pull {chart_ref}" + (f" --version {version}" if version else "")

    async def run() -> Path:
        async with client.pull_chart(chart_ref, version=version) as chart:
            target = into / Path(chart.ref).name
            shutil.copytree(chart.ref, target)
            return target

    try:
        return await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:
        raise Timeout(f"{what}: no answer from helm within {timeout:.0f}s") from None
    except Exception as exc:
        from pyhelm3 import errors as herr

        if isinstance(exc, herr.Error):
            raise translate(exc, what) from None
        raise


def _dump(resources: Any) -> str:
    """Resources as one manifest, keys sorted: what diffs and summaries compare."""
    return "\n---\n".join(yaml.safe_dump(r, sort_keys=True) for r in (resources or []) if r)


def helm_client(
    kubeconfig: Path | None,
    timeout: float = 300.0,
    context: str | None = None,
    executable: str | None = None,
) -> Any:
    """A pyhelm3 client on the pinned helm binary (``--kube-context`` with ``context``)."""
    from pyhelm3 import Client

    from tfsctl.paths import tool_path

    # pyhelm3 logs every non-zero helm exit as a warning, including the expected "release: not
    # found" of a first install; the adapter turns real failures into one-line errors instead.
    logging.getLogger("pyhelm3.command").setLevel(logging.ERROR)

    executable = executable or tool_path("helm")
    if shutil.which(executable) is None:
        raise ToolkitError("helm not found: put helm 3 on PATH (in a checkout, `make tools`)")
    return Client(
        executable=executable,
        kubeconfig=kubeconfig,
        kubecontext=context,
        default_timeout=f"{int(timeout)}s",
    )
