"""One way to reach the cluster: a Kubernetes ApiClient from the resolved kubeconfig.

``tfsctl.paths.kubeconfig()`` resolves ``$KUBECONFIG``, then the local cluster's
``.tools/kubeconfig``, then ``~/.kube/config``; every command uses this module so
they all talk to the same cluster and fail with the same message when there is none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfsctl import paths
from tfsctl.errors import Unavailable


def api_client(kubeconfig: Path | str | None = None) -> Any:
    """A kubernetes ApiClient for ``kubeconfig`` (default: the resolved one); Unavailable if none."""
    from kubernetes import config as kconfig

    kubeconfig = kubeconfig or paths.kubeconfig()
    if kubeconfig is None:
        raise Unavailable("no kubeconfig: set KUBECONFIG or run `tfsctl cluster up`")
    try:
        return kconfig.new_client_from_config(config_file=str(kubeconfig))
    except Exception as exc:
        raise Unavailable(f"kubeconfig {kubeconfig}: {exc}") from None
