"""``--ssl_config_file``: TF Serving's ``tensorflow.serving.SSLConfig`` for the gRPC port.

The file is the text format of::

    message SSLConfig {            // tensorflow_serving/config/ssl_config.proto
      string server_key = 1;       // PEM private key
      string server_cert = 2;      // PEM certificate (chain)
      string custom_ca = 3;        // PEM CA bundle that signs client certificates
      bool client_verify = 4;      // require and verify a client certificate
    }

As in ``tensorflow_model_server`` it secures the gRPC port only; the REST port
stays plain HTTP (TF Serving's HTTP server has no TLS). The pip package
``tensorflow-serving-api`` does not ship ``ssl_config_pb2``, so the message is
built here from the four fields above, in a private descriptor pool (no clash if
the real module is ever imported).

``parse_ssl_config`` is pure; ``load_ssl_config`` reads the file and checks the
PEM blocks with the ``ssl`` module, so a bad key or certificate fails at start-up
with a line naming the flag, not at the first handshake.
"""

from __future__ import annotations

import functools
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsctl.errors import InvalidInput

FLAG = "--ssl_config_file"
_FIELDS = (("server_key", 9), ("server_cert", 9), ("custom_ca", 9), ("client_verify", 8))  # 9 string, 8 bool


@dataclass(frozen=True)
class SSLConfig:
    """The parsed ``SSLConfig``; PEM contents as bytes (what gRPC takes). Keys never in ``repr``."""

    server_key: bytes = field(repr=False)
    server_cert: bytes
    custom_ca: bytes | None = None
    client_verify: bool = False


@functools.cache
def _message_class() -> Any:
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    proto = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/ssl_config.proto", package="tensorflow.serving", syntax="proto3"
    )
    message = proto.message_type.add(name="SSLConfig")
    for number, (name, kind) in enumerate(_FIELDS, start=1):
        message.field.add(
            name=name, number=number, type=kind, label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.SSLConfig"))


def parse_ssl_config(text: str, source: str) -> SSLConfig:
    """Parse the text format; raises ``InvalidInput`` naming the flag and ``source``."""
    from google.protobuf import text_format

    message = _message_class()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise InvalidInput(
            f"{FLAG}: {source}: invalid text format of tensorflow.serving.SSLConfig: {exc}"
        ) from exc
    for name in ("server_key", "server_cert"):
        if not getattr(message, name).strip():
            raise InvalidInput(f"{FLAG}: {source}: {name} is empty (it must hold the PEM contents)")
    if message.client_verify and not message.custom_ca.strip():
        raise InvalidInput(
            f"{FLAG}: {source}: client_verify is true but custom_ca is empty "
            "(give the PEM of the CA that signs client certificates)"
        )
    return SSLConfig(
        server_key=message.server_key.encode(),
        server_cert=message.server_cert.encode(),
        custom_ca=message.custom_ca.encode() or None,
        client_verify=bool(message.client_verify),
    )


def check_pem(config: SSLConfig, source: str) -> None:
    """Load key, certificate and CA the way a TLS server would; ``InvalidInput`` on any mismatch."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # load_cert_chain reads files only: a private 0700 directory, removed right away.
    with tempfile.TemporaryDirectory(prefix="tfsctl-tls-") as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert.write_bytes(config.server_cert)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(config.server_key)
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise InvalidInput(
                f"{FLAG}: {source}: server_key/server_cert are not a matching PEM key and certificate "
                f"({exc.reason or exc})"
            ) from exc
    if config.custom_ca is not None:
        try:
            context.load_verify_locations(cadata=config.custom_ca.decode(errors="replace"))
        except (ssl.SSLError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise InvalidInput(f"{FLAG}: {source}: custom_ca is not a PEM certificate ({reason})") from exc


def load_ssl_config(path: str) -> SSLConfig:
    """Read, parse and check ``path``; every failure is one ``InvalidInput`` line naming the flag."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise InvalidInput(f"{FLAG}: cannot read {path}: {reason}") from exc
    config = parse_ssl_config(text, path)
    check_pem(config, path)
    return config


def server_credentials(config: SSLConfig) -> Any:
    """``grpc.ServerCredentials`` as TF Serving builds them (client certs required iff client_verify)."""
    import grpc

    return grpc.ssl_server_credentials(
        [(config.server_key, config.server_cert)],
        root_certificates=config.custom_ca,
        require_client_auth=config.client_verify,
    )
