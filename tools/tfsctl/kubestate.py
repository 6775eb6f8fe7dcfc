"""How tfsctl reads a release's pods from the Kubernetes API: one place, pure (no I/O).

Which pods are a release's servers, and when one counts as ready to take requests,
are decided here for every caller (release status and promotions, load-test
checks, the local bed's waits), the way kubectl and the EndpointSlice controller do:
a pod serves when its ``Ready`` condition is ``True``, it has an IP, and it is not
being deleted.
"""

from __future__ import annotations

from typing import Any

INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"


def server_selector(release: str) -> str:
    """Label selector of the release's TF Serving pods (the chart's selector labels + component)."""
    return f"{INSTANCE_LABEL}={release},{COMPONENT_LABEL}=server"


def is_ready(obj: Any) -> bool:
    """Whether a pod's or node's ``Ready`` condition is ``True``."""
    status = getattr(obj, "status", None)
    conditions = getattr(status, "conditions", None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def is_terminating(pod: Any) -> bool:
    return getattr(pod.metadata, "deletion_timestamp", None) is not None


def serves(pod: Any) -> bool:
    """Ready, addressed and not terminating: a pod a Service would send requests to."""
    return is_ready(pod) and bool(getattr(pod.status, "pod_ip", None)) and not is_terminating(pod)
