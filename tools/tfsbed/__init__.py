"""tfsbed: the local test bed of tfsctl, kept apart from the product.

What builds and tests the product lives here, the way kind keeps ``hack/`` and
``images/`` beside ``pkg/``: the local Kubernetes cluster and its real nodes
(``tfsbed.cluster``), the pinned upstream tools built from source
(``tfsbed.toolchain``), the drop-in model server that stands in for
``tensorflow_model_server`` (``tfsbed.serve``), the benchmarks (``tfsbed.bench``)
and the end-to-end demo (``tfsbed.demo``).

tfsbed depends on tfsctl; tfsctl never imports tfsbed. Its commands join the
``tfsctl`` CLI through the ``tfsctl.commands`` entry-point group (``tfsctl
cluster``, ``tfsctl serve``, ``tfsctl demo``, ``tfsctl toolchain``), so they
exist only where tfsbed is installed: the checkout's ``.venv`` (``make setup``),
never the product wheel.

Kept import-light, like tfsctl: the toolchain runs from here with plain
``python3 -m tfsbed.toolchain`` before any virtualenv exists.
"""

from __future__ import annotations

from pathlib import Path

# The checkout this package lives in (tools/tfsbed/__init__.py -> the repository root).
REPO_ROOT = Path(__file__).resolve().parents[2]
