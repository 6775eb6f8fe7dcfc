"""One way to reach the cluster: a Kubernetes ApiClient from the resolved kubeconfig.

``tfsctl.paths.kubeconfig()`` resolves ``$KUBECONFIG``, then the local cluster's
``.tools/kubeconfig``, then ``~/.kube/config``; every command uses this module so
they all talk to the same cluster and fail with the same message when there is none.
A stopped local cluster (its kubeconfig gone, empty or refusing connections) gets its
own message: what to run, not what the kubernetes client could not parse.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tfsctl import paths
from tfsctl.errors import InvalidInput, NotFound, ToolkitError, Unavailable

LOCAL_CLUSTER_DOWN = (
    "the local cluster is not running: `make cluster-up`, or point KUBECONFIG at your cluster"
)
PREFLIGHT_TIMEOUT = 5.0


def is_local(kubeconfig: Path | str) -> bool:
    """Whether ``kubeconfig`` is the local cluster's (``.tools/kubeconfig`` of this checkout)."""
    try:
        return Path(kubeconfig).resolve() == paths.LOCAL_KUBECONFIG.resolve()
    except OSError:
        return False


def api_client(kubeconfig: Path | str | None = None, context: str | None = None) -> Any:
    """A kubernetes ApiClient for ``kubeconfig`` (default: the resolved one) and ``context``
    (default: its current-context); no request is made."""
    from kubernetes import config as kconfig

    path = Path(kubeconfig) if kubeconfig else paths.kubeconfig()
    if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return _in_cluster()  # a pod (the chart's canary Job): its ServiceAccount, as helm does
    if path is None:
        raise Unavailable(f"no kubeconfig found: {LOCAL_CLUSTER_DOWN}")
    if is_local(path) and (not path.exists() or not path.read_text().strip()):
        raise Unavailable(LOCAL_CLUSTER_DOWN, detail=f"{path} is missing or empty")
    if not path.exists():
        raise NotFound(f"kubeconfig {path}: no such file (check --kubeconfig or KUBECONFIG)")
    try:
        return kconfig.new_client_from_config(config_file=str(path), context=context)
    except Exception as exc:
        if context is not None and "context" in str(exc).lower():
            raise NotFound(f"--context {context}: no such context in kubeconfig {path}") from None
        if is_local(path):
            raise Unavailable(LOCAL_CLUSTER_DOWN, detail=f"{path}: {exc}") from None
        raise InvalidInput(
            f"kubeconfig {path}: {exc} (check --kubeconfig or KUBECONFIG)", detail=repr(exc)
        ) from None


def _in_cluster() -> Any:
    """An ApiClient from the pod's ServiceAccount token and the cluster's CA."""
    from kubernetes import client
    from kubernetes import config as kconfig

    configuration = client.Configuration()
    try:
        kconfig.load_incluster_config(client_configuration=configuration)
    except kconfig.ConfigException as exc:
        raise Unavailable(
            f"in-cluster config: {exc} (run with a ServiceAccount token, or pass --kubeconfig)"
        ) from None
    return client.ApiClient(configuration)


def unreachable(api: Any, kubeconfig: Path | str | None, exc: BaseException) -> ToolkitError:
    """The one line for a cluster that does not answer: the local one, or which server to check."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    for marker in ("Connection refused", "timed out", "Name or service not known", "No route to host"):
        if marker in text:
            text = marker.lower()
            break
    if kubeconfig is not None and is_local(kubeconfig):
        return Unavailable(LOCAL_CLUSTER_DOWN, detail=f"{api.configuration.host}: {exc}")
    where = f" (kubeconfig {kubeconfig})" if kubeconfig else ""
    return Unavailable(
        f"cannot reach the cluster at {api.configuration.host}{where}: {text}; "
        "is it running? check --kubeconfig or KUBECONFIG",
        detail=repr(exc),
    )


def connect(kubeconfig: Path | str | None = None, context: str | None = None) -> Any:
    """``api_client`` plus one bounded ``/version`` request, so a cluster that is down fails here,
    in one line, before any command starts changing things."""
    from kubernetes import client

    path = Path(kubeconfig) if kubeconfig else paths.kubeconfig()
    api = api_client(path, context)
    try:
        client.VersionApi(api).get_code(_request_timeout=PREFLIGHT_TIMEOUT)
    except Exception as exc:
        from kubernetes.client.exceptions import ApiException

        if isinstance(exc, ApiException):
            if exc.status in (401, 403):
                return api  # reachable; /version may be forbidden to this user
            raise Unavailable(
                f"the cluster at {api.configuration.host} answered {exc.status} {exc.reason} "
                f"(kubeconfig {path})",
                detail=str(exc.body),
            ) from None
        raise unreachable(api, path, exc) from None
    return api
