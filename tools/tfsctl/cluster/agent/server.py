"""The kubelet-like HTTPS endpoint: ``/metrics/resource`` (for metrics-server), ``/healthz`` and
``/containerLogs/{namespace}/{pod}/{container}`` (what the API server's ``pods/log`` proxies to).

kwokctl's binary runtime starts kube-apiserver without ``--kubelet-certificate-authority``
and without kubelet client certificates, so it connects to
``<node InternalIP>:<status.daemonEndpoints.kubeletEndpoint.port>`` over TLS without
verifying the serving certificate: a self-signed one is enough, and no client
authentication is asked for (the endpoint listens on the host's loopback only).
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import logging
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tfsctl.errors import InvalidInput, NotFound

from . import logs

log = logging.getLogger(__name__)

FOLLOW_POLL = 0.2


@dataclass(frozen=True)
class LogHandle:
    """One container run's log: raw bytes, the arrival-time index, and whether the run still writes."""

    path: Path
    index: Path
    running: Callable[[], bool]
    started_at: float  # dates bytes the index does not cover


# (namespace, pod, container, previous) -> LogHandle; raises NotFound / InvalidInput
LogProvider = Callable[[str, str, str, bool], LogHandle]


def _read_index(path: Path) -> logs.Index:
    try:
        return logs.parse_index(path.read_text())
    except OSError:
        return []


def self_signed_cert(directory: Path, host: str) -> tuple[Path, Path]:
    """Write a fresh self-signed certificate for ``host`` (and localhost); return (cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "kubelet.crt", directory / "kubelet.key"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "365",
                "-subj",
                f"/CN={host}",
                "-addext",
                f"subjectAltName=IP:{host},DNS:localhost",
                "-keyout",
                str(key_path),
                "-out",
                str(cert_path),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}@tfsctl-process-node")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


class KubeletServer:
    """Serves ``render()`` at ``/metrics/resource`` and container logs over HTTPS on ``host:port``.

    Port 0 picks a free one. Without ``logs`` the log endpoint answers 404.
    """

    def __init__(
        self,
        host: str,
        port: int,
        cert_dir: Path,
        render: Callable[[], str],
        logs_provider: LogProvider | None = None,
    ) -> None:
        cert, key = self_signed_cert(cert_dir, host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        stopping = self.stopping = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _plain(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _logs(self, path: str, query: str) -> None:
                parts = path.split("/")
                if len(parts) != 5 or not all(parts[2:]) or logs_provider is None:
                    self._plain(404, b"not found")
                    return
                namespace, pod, container = (urllib.parse.unquote(p) for p in parts[2:])
                try:
                    options = logs.LogQuery.parse(
                        urllib.parse.parse_qs(query, keep_blank_values=True), time.time()
                    )
                    handle = logs_provider(namespace, pod, container, options.previous)
                except InvalidInput as exc:
                    self._plain(400, str(exc).encode())
                    return
                except NotFound as exc:
                    self._plain(404, str(exc).encode())
                    return
                try:
                    stream = handle.path.open("rb")
                except FileNotFoundError:
                    if options.previous:
                        self._plain(
                            400,
                            f"previous terminated container {container!r} in pod {pod!r} not found".encode(),
                        )
                    else:
                        self._plain(200, b"")  # started, nothing written yet
                    return
                with stream:
                    if options.follow:
                        self._follow(stream, handle, options)
                    else:
                        body = logs.select(
                            stream.read(), _read_index(handle.index), options, handle.started_at
                        )
                        self._plain(200, body)

            def _follow(self, stream: BinaryIO, handle: LogHandle, options: logs.LogQuery) -> None:
                data = stream.read()
                first, offset = logs.follow_start(data, _read_index(handle.index), options, handle.started_at)
                budget = options.limit_bytes
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Connection", "close")
                self.end_headers()
                pending = data[offset:]

                def send(chunk: bytes) -> bool:
                    nonlocal budget
                    if budget is not None:
                        chunk = chunk[:budget]
                        budget -= len(chunk)
                    if chunk:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    return budget is None or budget > 0

                try:
                    if not send(first):
                        return
                    while not stopping.is_set():
                        running = handle.running()  # read before draining: no output is lost at exit
                        more = stream.read()
                        if more:
                            pending += more
                        cut = pending.rfind(b"\n") + 1
                        if not running and not more:
                            cut = len(pending)  # the run ended: the partial last line too
                        if cut:
                            lines = logs.split_lines(pending[:cut], offset)
                            body = logs.render_lines(
                                lines, _read_index(handle.index), options.timestamps, handle.started_at
                            )
                            offset += cut
                            pending = pending[cut:]
                            if not send(body):
                                return
                        if not running and not more:
                            return
                        if not more:
                            stopping.wait(FOLLOW_POLL)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    log.debug("log follower of %s went away", handle.path.name)

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path.startswith("/containerLogs/"):
                    self._logs(path, query)
                    return
                if path == "/healthz":
                    body, ctype, code = b"ok", "text/plain", 200
                elif path == "/metrics/resource":
                    try:
                        body, ctype, code = render().encode(), "text/plain; version=0.0.4", 200
                    except Exception as exc:
                        log.exception("metrics rendering failed")
                        body, ctype, code = f"error: {exc}".encode(), "text/plain", 500
                else:
                    body, ctype, code = b"not found", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("kubelet endpoint: " + format, *args)

        self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="kubelet-endpoint",
            daemon=True,
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
