"""tfsctl: release automation for TensorFlow Serving on Kubernetes.

Kept import-light: commands that do not run a model must start fast, so nothing
here imports TensorFlow, gRPC or the Kubernetes client.
"""

from __future__ import annotations

__version__ = "0.1.0"
