"""TLS without a model: ``--ssl_config_file`` parsing and checks, and the client's REST TLS.

The server side runs through the real ``tfsctl serve`` CLI (it must fail before any
model loads); the client side talks to a real HTTPS server on loopback, since
``tfsctl serve`` (like TF Serving) keeps REST plain and the client must still do
REST over TLS for proxies and managed endpoints. Certificates are generated per
module by ``support.serving_tls``.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.serving_tls import Pki, make_pki, pbtxt_string, write_ssl_config
from tfsbed.serve.tls import check_pem, load_ssl_config, parse_ssl_config
from tfsctl.errors import ExitStatus, InvalidInput, Unavailable
from tfsctl.serving.client import Endpoint, ServingClient

SERVE = [sys.executable, "-m", "tfsctl", "serve"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


# --------------------------------------------------------------------------- SSLConfig parsing
def test_ssl_config_text_format_carries_the_pem_contents(pki: Pki, tmp_path: Path) -> None:
    path = write_ssl_config(tmp_path / "ssl.pbtxt", pki, client_verify=True)
    config = load_ssl_config(str(path))
    assert config.server_cert == pki.server.cert.read_bytes()
    assert config.server_key == pki.server.key.read_bytes()
    assert config.custom_ca == pki.ca.cert.read_bytes()
    assert config.client_verify is True
    assert "PRIVATE KEY" not in repr(config)


def test_ssl_config_without_custom_ca_leaves_it_unset(pki: Pki, tmp_path: Path) -> None:
    config = load_ssl_config(str(write_ssl_config(tmp_path / "ssl.pbtxt", pki, custom_ca=False)))
    assert config.custom_ca is None and config.client_verify is False


def test_malformed_ssl_config_reports_the_text_format_error_and_the_flag() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_ssl_config('server_key: "k"\nserver_certificate: "c"\n', "/etc/ssl.pbtxt")
    message = str(info.value)
    assert message.startswith(
        "--ssl_config_file: /etc/ssl.pbtxt: invalid text format of tensorflow.serving.SSLConfig"
    )
    assert 'has no field named "server_certificate"' in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('server_cert: "c"', "server_key is empty"),
        ('server_key: "k"', "server_cert is empty"),
        (
            'server_key: "k" server_cert: "c" client_verify: true',
            "client_verify is true but custom_ca is empty",
        ),
    ],
)
def test_incomplete_ssl_config_names_the_missing_field(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_ssl_config(text, "ssl.pbtxt")


def test_key_that_does_not_match_the_certificate_is_rejected(pki: Pki) -> None:
    text = f"server_key: {pbtxt_string(pki.client.key_pem)} server_cert: {pbtxt_string(pki.server.cert_pem)}"
    with pytest.raises(
        InvalidInput, match="server_key/server_cert are not a matching PEM key and certificate"
    ):
        check_pem(parse_ssl_config(text, "ssl.pbtxt"), "ssl.pbtxt")


def test_custom_ca_that_is_not_pem_is_rejected(pki: Pki) -> None:
    text = (
        f"server_key: {pbtxt_string(pki.server.key_pem)} server_cert: {pbtxt_string(pki.server.cert_pem)} "
        'custom_ca: "not a certificate"'
    )
    with pytest.raises(InvalidInput, match="custom_ca is not a PEM certificate"):
        check_pem(parse_ssl_config(text, "ssl.pbtxt"), "ssl.pbtxt")


# --------------------------------------------------------------------------- tfsctl serve refuses bad files
def _bad_files(pki: Pki, directory: Path) -> dict[str, tuple[Path, str]]:
    garbage = directory / "garbage.pbtxt"
    garbage.write_text("server_key: {")
    bad_pem = directory / "bad-pem.pbtxt"
    bad_pem.write_text(
        'server_key: "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n" '
        f"server_cert: {pbtxt_string(pki.server.cert_pem)}"
    )
    return {
        "malformed": (garbage, "invalid text format of tensorflow.serving.SSLConfig"),
        "bad PEM": (bad_pem, "server_key/server_cert are not a matching PEM key and certificate"),
        "missing": (directory / "absent.pbtxt", "cannot read"),
    }


@pytest.mark.parametrize("case", ["malformed", "bad PEM", "missing"])
def test_serve_with_a_bad_ssl_config_exits_2_with_one_line_before_loading_models(
    pki: Pki, tmp_path: Path, case: str
) -> None:
    path, message = _bad_files(pki, tmp_path)[case]
    result = subprocess.run(
        [
            *SERVE,
            "--model_name=m",
            "--model_base_path=/nonexistent/m",
            "--port=1",
            f"--ssl_config_file={path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == ExitStatus.USAGE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        f"tfsctl: error: --ssl_config_file: {'cannot read ' if case == 'missing' else ''}"
    )
    assert message in lines[0] and str(path) in lines[0]
    assert "-----BEGIN" not in result.stderr  # never echoes key material


# --------------------------------------------------------------------------- client REST over TLS
class _Status(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        rows = [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]
        body = json.dumps({"model_version_status": rows}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _HttpsServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # failed handshakes are what some tests provoke


@pytest.fixture(scope="module", params=[False, True], ids=["tls", "mutual-tls"])
def https(request: pytest.FixtureRequest, pki: Pki) -> Iterator[tuple[int, bool]]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server.cert, pki.server.key)
    if request.param:
        context.load_verify_locations(pki.ca.cert)
        context.verify_mode = ssl.CERT_REQUIRED
    server = _HttpsServer(("127.0.0.1", 0), _Status)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1]), bool(request.param)
    server.shutdown()
    server.server_close()


def _client(port: int, **tls: Any) -> ServingClient:
    return ServingClient(Endpoint("127.0.0.1", grpc_port=1, rest_port=port, tls=True, **tls), timeout=10)


def test_rest_over_tls_trusts_the_given_ca(https: tuple[int, bool], pki: Pki) -> None:
    port, mutual = https
    client_cert = {"cert_file": str(pki.client.cert), "key_file": str(pki.client.key)} if mutual else {}
    with _client(port, ca_file=str(pki.ca.cert), **client_cert) as client:
        rows = client.model_status("m", transport="rest")
    assert [(r.version, r.state) for r in rows] == [(1, "AVAILABLE")]


def test_rest_over_tls_with_a_wrong_ca_is_unavailable_naming_url_and_cause(
    https: tuple[int, bool], pki: Pki
) -> None:
    port, _ = https
    with _client(port, ca_file=str(pki.other_ca.cert)) as client, pytest.raises(Unavailable) as info:
        client.model_status("m", transport="rest")
    message = str(info.value)
    assert f"TLS handshake with https://127.0.0.1:{port} failed" in message
    assert f"not trusted by CA file {pki.other_ca.cert}" in message


def test_rest_mutual_tls_refuses_a_client_without_certificate(https: tuple[int, bool], pki: Pki) -> None:
    port, mutual = https
    if not mutual:
        # Without client_verify the same client is accepted: the refusal below is the server's doing.
        with _client(port, ca_file=str(pki.ca.cert)) as client:
            assert client.model_status("m", transport="rest")[0].state == "AVAILABLE"
        return
    with _client(port, ca_file=str(pki.ca.cert)) as client, pytest.raises(Unavailable) as info:
        client.model_status("m", transport="rest")
    assert f"https://127.0.0.1:{port}" in str(info.value)


def test_client_tls_files_are_checked_with_the_field_named(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=f"ca_file: cannot read {tmp_path}/none.pem"):
        Endpoint("127.0.0.1", tls=True, ca_file=str(tmp_path / "none.pem")).check_tls_files()
    with pytest.raises(InvalidInput, match="cert_file and key_file: give both"):
        Endpoint("127.0.0.1", tls=True, cert_file=str(pki.client.cert)).check_tls_files()
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello")
    with pytest.raises(InvalidInput, match="is not a PEM file"):
        Endpoint("127.0.0.1", tls=True, ca_file=str(not_pem)).check_tls_files()
