"""Where tfsctl finds its data (the chart, the load test) and a checkout's local state.

An installed tfsctl carries the chart and the locustfile as package data
(``tfsctl/data/``, put there by ``setup.py``); in a checkout, whose package has no
``data/``, they are read from ``charts/`` and ``loadtest/`` beside ``tools/``.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / ".tools"
LOCAL_KUBECONFIG = TOOLS_DIR / "kubeconfig"
VALUES_DIR = REPO_ROOT / "values"


def _data(packaged: str, checkout: str) -> Path:
    """The package-data copy of a file when installed, else the checkout's."""
    candidate = Path(str(resources.files("tfsctl").joinpath("data", packaged)))
    return candidate if candidate.exists() else REPO_ROOT / checkout


CHART_DIR = _data("chart/tensorflow-serving", "charts/tensorflow-serving")
LOCUSTFILE = _data("loadtest/locustfile.py", "loadtest/locustfile.py")
LOCUST_MANIFEST = _data(
    "loadtest/manifests/locust-distributed.yaml", "loadtest/manifests/locust-distributed.yaml"
)


def kubeconfig() -> Path | None:
    """``$KUBECONFIG`` when set, else the local cluster's, else ``~/.kube/config`` if present."""
    if env := os.environ.get("KUBECONFIG"):
        return Path(env.split(os.pathsep)[0])
    if LOCAL_KUBECONFIG.exists():
        return LOCAL_KUBECONFIG
    default = Path.home() / ".kube" / "config"
    return default if default.exists() else None


def tool_path(name: str) -> str:
    """Path of a pinned binary in ``.tools/bin``, else the bare name (found on PATH)."""
    candidate = TOOLS_DIR / "bin" / name
    return str(candidate) if candidate.exists() else name
