"""Well-known locations of a checkout: the repo root, local state, kubeconfig."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "tensorflow-serving"
VALUES_DIR = REPO_ROOT / "values"
TOOLS_DIR = REPO_ROOT / ".tools"
LOCAL_KUBECONFIG = TOOLS_DIR / "kubeconfig"


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
