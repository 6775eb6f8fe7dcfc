"""The chart's canary Job has no kubeconfig: tfsctl talks to the API as the pod's ServiceAccount."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tfsctl import kubeclient, paths
from tfsctl.errors import Unavailable


def test_a_pod_without_a_kubeconfig_uses_its_service_account(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes import config as kconfig

    monkeypatch.setattr(paths, "kubeconfig", lambda: None)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")

    def fake_incluster(client_configuration: Any) -> None:
        client_configuration.host = "https://10.96.0.1:443"
        client_configuration.api_key = {"authorization": "Bearer sa-token"}

    monkeypatch.setattr(kconfig, "load_incluster_config", fake_incluster)
    api = kubeclient.api_client(None)
    assert api.configuration.host == "https://10.96.0.1:443"


def test_a_pod_without_a_token_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "kubeconfig", lambda: None)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(Unavailable, match=r"in-cluster config: .*pass --kubeconfig"):
        kubeclient.api_client(None)


def test_outside_a_pod_no_kubeconfig_is_still_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(paths, "kubeconfig", lambda: None)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(Unavailable, match="no kubeconfig found"):
        kubeclient.api_client(None)
