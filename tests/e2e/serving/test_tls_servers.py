"""``tfsctl serve --ssl_config_file`` with the client and the CLI over TLS, against real servers.

Two servers for the whole module (TensorFlow start-up is the expensive part): one
with TLS on gRPC (``client_verify: false``), one with mutual TLS
(``client_verify: true``). Certificates come from a throwaway CA made per module;
the server certificate covers 127.0.0.1 and localhost. As in TF Serving, REST
stays plain HTTP (LocalServer's readiness check relies on it).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.serving_tls import Pki, make_pki, write_ssl_config
from tfsbed.serve.testing import LocalServer
from tfsctl.errors import ExitStatus, Unavailable
from tfsctl.serving.client import Endpoint, ServingClient

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODEL = "hp3"  # half_plus_three: predicts x / 2 + 3


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _server(model_root: Path, pki: Pki, client_verify: bool) -> LocalServer:
    config = write_ssl_config(pki.ca.cert.parent / f"ssl-{client_verify}.pbtxt", pki, client_verify)
    return LocalServer(
        model_name=MODEL,
        base_path=model_root / MODEL,
        fs_poll_seconds=0,
        flags=[f"--ssl_config_file={config}"],
    )


@pytest.fixture(scope="module")
def tls_server(model_root: Path, pki: Pki) -> Iterator[LocalServer]:
    with _server(model_root, pki, client_verify=False) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(model_root: Path, pki: Pki) -> Iterator[LocalServer]:
    with _server(model_root, pki, client_verify=True) as server:
        yield server


def _client(server: LocalServer, **tls: Any) -> ServingClient:
    endpoint: Endpoint = dataclasses.replace(server.endpoint, tls=True, rest_tls=False, **tls)
    return ServingClient(endpoint, timeout=30)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsctl", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        check=False,
    )


# --------------------------------------------------------------------------- TLS, server cert only
def test_grpc_status_predict_and_metadata_succeed_over_tls_with_the_ca(
    tls_server: LocalServer, pki: Pki
) -> None:
    with _client(tls_server, ca_file=str(pki.ca.cert)) as client:
        assert [r.state for r in client.model_status(MODEL)] == ["AVAILABLE"]
        result = client.predict(MODEL, [1.0, 2.0, 5.0], transport="grpc")
        meta = client.metadata(MODEL)
    assert result["predictions"] == [3.5, 4.0, 5.5]
    assert "serving_default" in meta["metadata"]["signature_def"]["signature_def"]


def test_rest_port_stays_plain_http_as_in_tf_serving(tls_server: LocalServer) -> None:
    with ServingClient(tls_server.endpoint, timeout=30) as client:
        assert client.predict(MODEL, [1.0], transport="rest") == {"predictions": [3.5]}


def test_client_without_the_ca_is_unavailable_naming_endpoint_and_tls_failure(
    tls_server: LocalServer,
) -> None:
    with _client(tls_server) as client, pytest.raises(Unavailable) as info:
        client.model_status(MODEL)
    message = str(info.value)
    assert f"127.0.0.1:{tls_server.grpc_port}" in message
    assert "TLS handshake failed: the server certificate is not trusted by the system CAs" in message


def test_client_with_a_wrong_ca_is_unavailable_naming_the_ca_file(tls_server: LocalServer, pki: Pki) -> None:
    with _client(tls_server, ca_file=str(pki.other_ca.cert)) as client, pytest.raises(Unavailable) as info:
        client.predict(MODEL, [1.0], transport="grpc")
    message = str(info.value)
    assert f"127.0.0.1:{tls_server.grpc_port}" in message
    assert f"not trusted by CA file {pki.other_ca.cert}" in message


def test_plaintext_client_is_told_the_server_may_expect_tls(tls_server: LocalServer) -> None:
    with ServingClient(tls_server.endpoint, timeout=30) as client, pytest.raises(Unavailable) as info:
        client.model_status(MODEL)
    assert "does it expect TLS?" in str(info.value)


def test_cli_commands_work_with_ca_file(
    tls_server: LocalServer, pki: Pki, tmp_path: Path, model_root: Path
) -> None:
    tls = ["--grpc-port", str(tls_server.grpc_port), "--ca-file", str(pki.ca.cert)]
    status = _cli("model-status", MODEL, *tls, "-o", "json")
    assert status.returncode == 0, status.stderr
    assert '"state": "AVAILABLE"' in status.stdout
    predict = _cli("predict", MODEL, "-d", "[1.0, 6.0]", "--transport", "grpc", *tls)
    assert predict.returncode == 0, predict.stderr
    assert predict.stdout.split() == ["3.5", "6.0"]
    meta = _cli("metadata", MODEL, *tls)
    assert meta.returncode == 0 and "input  x: DT_FLOAT" in meta.stdout, meta.stderr
    config = tmp_path / "model_config.pbtxt"
    config.write_text(
        f'model_config_list {{ config {{ name: "{MODEL}" base_path: "{model_root / MODEL}" '
        'model_platform: "tensorflow" } }'
    )
    reload = _cli("reload-config", str(config), *tls)
    assert reload.returncode == 0, reload.stderr
    assert reload.stdout.strip() == f"reloaded: {MODEL}"


def test_cli_with_a_wrong_ca_exits_unavailable_with_one_clear_line(tls_server: LocalServer, pki: Pki) -> None:
    result = _cli(
        "model-status", MODEL, "--grpc-port", str(tls_server.grpc_port), "--ca-file", str(pki.other_ca.cert)
    )
    assert result.returncode == ExitStatus.UNAVAILABLE
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(
        f"tfsctl: error: gRPC GetModelStatus 127.0.0.1:{tls_server.grpc_port}: TLS handshake"
    )
    assert "not trusted by CA file" in lines[-1]


# --------------------------------------------------------------------------- mutual TLS (client_verify: true)
def test_mutual_tls_rejects_a_client_without_a_certificate(mtls_server: LocalServer, pki: Pki) -> None:
    with _client(mtls_server, ca_file=str(pki.ca.cert)) as client, pytest.raises(Unavailable) as info:
        client.model_status(MODEL)
    message = str(info.value)
    assert f"127.0.0.1:{mtls_server.grpc_port}" in message
    assert "does it require a client certificate?" in message


def test_mutual_tls_rejects_a_certificate_from_another_ca(mtls_server: LocalServer, pki: Pki) -> None:
    rogue = {"cert_file": str(pki.rogue_client.cert), "key_file": str(pki.rogue_client.key)}
    with (
        _client(mtls_server, ca_file=str(pki.ca.cert), **rogue) as client,
        pytest.raises(Unavailable) as info,
    ):
        client.model_status(MODEL)
    assert "was the client certificate rejected?" in str(info.value)


def test_mutual_tls_accepts_a_client_with_a_certificate(mtls_server: LocalServer, pki: Pki) -> None:
    cert = {"cert_file": str(pki.client.cert), "key_file": str(pki.client.key)}
    with _client(mtls_server, ca_file=str(pki.ca.cert), **cert) as client:
        assert [r.state for r in client.model_status(MODEL)] == ["AVAILABLE"]
        assert client.predict(MODEL, [4.0], transport="grpc")["predictions"] == [5.0]


def test_cli_mutual_tls_needs_cert_and_key_together(mtls_server: LocalServer, pki: Pki) -> None:
    base = ["model-status", MODEL, "--grpc-port", str(mtls_server.grpc_port), "--ca-file", str(pki.ca.cert)]
    ok = _cli(*base, "--cert-file", str(pki.client.cert), "--key-file", str(pki.client.key))
    assert ok.returncode == 0, ok.stderr
    assert "AVAILABLE" in ok.stdout
    half = _cli(*base, "--cert-file", str(pki.client.cert))
    assert half.returncode == ExitStatus.USAGE
    assert "--cert-file and --key-file go together" in half.stderr
    without = _cli(*base)
    assert without.returncode == ExitStatus.UNAVAILABLE
    assert "does it require a client certificate?" in without.stderr
