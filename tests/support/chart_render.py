"""Render the tensorflow-serving chart with the pinned helm binary and parse the result.

``render_chart(values, show_only=...)`` is the one entry point chart tests use: it runs
``helm template`` and returns the parsed documents, or raises ``HelmError`` carrying helm's
stderr so a failing test shows exactly what helm said.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "tensorflow-serving"
PRESETS_DIR = REPO_ROOT / "values"
BAD_VALUES_DIR = REPO_ROOT / "tests" / "chart" / "bad_values"
HELM = REPO_ROOT / ".tools" / "bin" / "helm"
HELM_DOCS = REPO_ROOT / ".tools" / "bin" / "helm-docs"
RELEASE = "tfs"
NAMESPACE = "serving"
FULLNAME = f"{RELEASE}-tensorflow-serving"
KUBERNETES_VERSION = "1.35.0"
_TIMEOUT = 120


class HelmError(Exception):
    """helm exited non-zero; ``stderr`` holds its message."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"helm {' '.join(args[1:3])} failed ({returncode}): {stderr.strip()}")


def ensure_tool(path: Path, tool: str) -> Path:
    """Return ``path``, building the pinned ``tool`` with the project's toolchain first if it is missing."""
    if not path.exists():
        subprocess.run(
            [sys.executable, "-m", "tfsbed.toolchain", "ensure", tool],
            cwd=REPO_ROOT,
            env={"PYTHONPATH": str(REPO_ROOT / "tools"), "PATH": "/usr/local/bin:/usr/bin:/bin"},
            check=False,
            timeout=1800,
        )
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `make tools` (builds the pinned {tool} into .tools/bin)")
    return path


def run_helm(args: Sequence[str], timeout: float = _TIMEOUT) -> str:
    """Run the pinned helm with ``args``; return stdout or raise ``HelmError`` with stderr."""
    cmd = [str(ensure_tool(HELM, "helm")), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise HelmError(cmd, proc.returncode, proc.stderr)
    return proc.stdout


def _values_args(values: Mapping[str, Any] | None, values_files: Iterable[Path], tmp: Path) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["-f", str(path)]
    if values:
        inline = tmp / "values.yaml"
        inline.write_text(yaml.safe_dump(dict(values), sort_keys=False))
        args += ["-f", str(inline)]
    return args


def render_chart(
    values: Mapping[str, Any] | None = None,
    *,
    show_only: str | Sequence[str] = (),
    values_files: Iterable[Path] = (),
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    chart: Path = CHART_DIR,
) -> list[dict[str, Any]]:
    """Render ``chart`` with ``values_files`` then ``values`` (helm's precedence) and parse the manifests.

    ``show_only`` names templates (``"deployment.yaml"`` or ``"templates/deployment.yaml"``); a template
    that renders nothing yields no documents instead of helm's "could not find template" error.
    """
    templates = [show_only] if isinstance(show_only, str) else list(show_only)
    templates = [t if t.startswith("templates/") else f"templates/{t}" for t in templates]
    with tempfile.TemporaryDirectory(prefix="chart-render-") as tmp:
        args = ["template", release, str(chart), "--namespace", namespace]
        args += _values_args(values, values_files, Path(tmp))
        for template in templates:
            args += ["--show-only", template]
        try:
            out = run_helm(args)
        except HelmError as err:
            if templates and "could not find template" in err.stderr:
                return []
            raise
    return [doc for doc in yaml.safe_load_all(out) if doc]


_NOTES_WRAPPER = """{{- define "tensorflow-serving.testNotes" -}}
%s
{{- end -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: rendered-notes
data:
  notes: {{ include "tensorflow-serving.testNotes" . | toJson }}
"""


def render_notes(values: Mapping[str, Any] | None = None, *, values_files: Iterable[Path] = ()) -> str:
    """Render NOTES.txt offline (``helm install --dry-run`` needs a cluster for the kubeVersion check).

    A copy of the chart wraps NOTES.txt in a named template emitted by a throw-away ConfigMap.
    """
    with tempfile.TemporaryDirectory(prefix="chart-notes-") as tmp:
        chart = Path(tmp) / "tensorflow-serving"
        shutil.copytree(CHART_DIR, chart)
        notes = (chart / "templates" / "NOTES.txt").read_text()
        (chart / "templates" / "zz-rendered-notes.yaml").write_text(_NOTES_WRAPPER % notes)
        docs = render_chart(
            values, values_files=values_files, show_only="zz-rendered-notes.yaml", chart=chart
        )
    return str(docs[0]["data"]["notes"])


def find(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single document of ``kind`` (and ``name``); AssertionError listing what was rendered otherwise."""
    matches = [d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)]
    if len(matches) != 1:
        seen = [f"{d.get('kind')}/{d.get('metadata', {}).get('name')}" for d in docs]
        raise AssertionError(f"expected one {kind} {name or ''}, rendered: {seen}")
    return matches[0]


def kinds(docs: Iterable[dict[str, Any]]) -> list[str]:
    """The kinds of ``docs`` in order."""
    return [str(d.get("kind")) for d in docs]


def server_container(docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The ``tensorflow-serving`` container of the rendered Deployment."""
    pod = find(docs, "Deployment")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "tensorflow-serving")


def presets() -> list[Path]:
    """Every preset under ``values/``, sorted."""
    return sorted(PRESETS_DIR.glob("*.yaml"))


def default_values() -> dict[str, Any]:
    """The chart's values.yaml."""
    return dict(yaml.safe_load((CHART_DIR / "values.yaml").read_text()))


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing: maps merge recursively, everything else (lists included) is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_model_server_config(text: str) -> Any:
    """Parse ``text`` as a ``tensorflow.serving.ModelServerConfig`` (raises ``text_format.ParseError``).

    Imports the generated protos without the TensorFlow runtime (a stand-in ``tensorflow`` package
    whose ``__path__`` is the real one), so this costs ~0.2 s instead of 5-8 s.
    """
    from google.protobuf import text_format

    if "tensorflow_serving.config.model_server_config_pb2" not in sys.modules:
        real = sys.modules.get("tensorflow")
        if real is None:
            spec = importlib.util.find_spec("tensorflow")
            if spec is None or spec.submodule_search_locations is None:
                raise RuntimeError("tensorflow is not installed in the venv: run `make setup`")
            stub = types.ModuleType("tensorflow")
            stub.__path__ = list(spec.submodule_search_locations)
            sys.modules["tensorflow"] = stub
        try:
            import tensorflow_serving.config.model_server_config_pb2  # noqa: F401
        finally:
            if real is None:
                del sys.modules["tensorflow"]
    module = sys.modules["tensorflow_serving.config.model_server_config_pb2"]
    return text_format.Parse(text, module.ModelServerConfig())
