"""The kubelet's streaming protocols over WebSocket, as pure functions (no sockets here).

What the API server proxies to a kubelet for ``pods/exec`` and ``pods/portforward``
when the client speaks the WebSocket channel protocols (the Python ``kubernetes``
client; kubectl and ``v5.channel.k8s.io`` clients are translated to SPDY/3.1 by the
API server, framed by :mod:`.spdy`; the SPDY handshake's helpers are here too):

- RFC 6455 framing: the opening handshake's accept key, client frames masked, server
  frames not, fragmented messages, ping/pong, close.
- The channel protocols of k8s.io/apimachinery ``wsstream``: every message starts with
  its channel number, one byte (``channel.k8s.io``, ``v4.channel.k8s.io``), or one
  ASCII digit followed by base64 text (``base64.channel.k8s.io``,
  ``v4.base64.channel.k8s.io``). No ``Sec-WebSocket-Protocol`` at all means binary.
- exec: channels stdin 0, stdout 1, stderr 2, error 3, resize 4; at the end the v4
  protocols carry a ``metav1.Status`` JSON on the error channel (the exit code in
  ``details.causes[reason=ExitCode]``), the older ones only a failure's message.
  v4 has no way to close stdin alone: callers send a known byte count
  (``head -c N | tar -x``) or end the session.
- port-forward: port ``i`` of the query gets data channel ``2i`` and error channel
  ``2i+1``; the first message on each carries the port as uint16 little-endian.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tfsctl.errors import InvalidInput

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
CONTROL_OPCODES = frozenset({OP_CLOSE, OP_PING, OP_PONG})
DATA_OPCODES = frozenset({OP_TEXT, OP_BINARY})

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009

MAX_MESSAGE = 16 * 1024 * 1024  # a bound on one (reassembled) client message

CHANNEL_PROTOCOL = "channel.k8s.io"
BASE64_CHANNEL_PROTOCOL = "base64.channel.k8s.io"
V4_CHANNEL_PROTOCOL = "v4.channel.k8s.io"
V4_BASE64_CHANNEL_PROTOCOL = "v4.base64.channel.k8s.io"
# What the kubelet accepts; the client's order of preference decides among them.
EXEC_PROTOCOLS = (
    "",
    CHANNEL_PROTOCOL,
    BASE64_CHANNEL_PROTOCOL,
    V4_CHANNEL_PROTOCOL,
    V4_BASE64_CHANNEL_PROTOCOL,
)
PORT_FORWARD_PROTOCOLS = ("", V4_CHANNEL_PROTOCOL, V4_BASE64_CHANNEL_PROTOCOL)
# Over SPDY/3.1 (``X-Stream-Protocol-Version``): the kubelet's exec serves v4 (v5 is WebSocket only).
SPDY_UPGRADE = "SPDY/3.1"
PORT_FORWARD_SPDY_PROTOCOL = "portforward.k8s.io"
SPDY_EXEC_PROTOCOLS = (V4_CHANNEL_PROTOCOL,)
SPDY_PORT_FORWARD_PROTOCOLS = (PORT_FORWARD_SPDY_PROTOCOL,)

STDIN, STDOUT, STDERR, ERROR, RESIZE = range(5)


class ProtocolError(ValueError):
    """The peer broke RFC 6455; ``code`` is the close code to answer with."""

    def __init__(self, message: str, code: int = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


# -- handshake
def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for the client's ``Sec-WebSocket-Key`` (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key.strip() + GUID).encode()).digest()).decode()


def is_websocket_upgrade(connection: str | None, upgrade: str | None) -> bool:
    """Whether the ``Connection`` and ``Upgrade`` headers ask for a WebSocket."""
    tokens = {t.strip().lower() for t in (connection or "").split(",")}
    return "upgrade" in tokens and (upgrade or "").strip().lower() == "websocket"


def is_spdy_upgrade(connection: str | None, upgrade: str | None) -> bool:
    """Whether the ``Connection`` and ``Upgrade`` headers ask for SPDY/3.1 (kubectl, the API server)."""
    tokens = {t.strip().lower() for t in (connection or "").split(",")}
    return "upgrade" in tokens and (upgrade or "").strip().lower() == SPDY_UPGRADE.lower()


def negotiate_spdy(requested: Sequence[str], supported: Sequence[str]) -> str | None:
    """The first of the client's ``X-Stream-Protocol-Version`` values (repeated or comma-separated)
    that we support, like apimachinery's ``httpstream.Handshake``; None when none is."""
    offered = [p.strip() for value in requested for p in value.split(",") if p.strip()]
    return next((p for p in offered if p in supported), None)


def spdy_handshake_response(protocol: str) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Connection: Upgrade",
        f"Upgrade: {SPDY_UPGRADE}",
        f"X-Stream-Protocol-Version: {protocol}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def check_handshake(version: str | None, key: str | None) -> str:
    """The client's ``Sec-WebSocket-Key`` once the request is a valid version 13 one (else InvalidInput)."""
    if (version or "").strip() != "13":
        raise InvalidInput(f"Sec-WebSocket-Version: {version!r} is not supported (want 13)")
    key = (key or "").strip()
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except (ValueError, binascii.Error):
        raise InvalidInput(f"Sec-WebSocket-Key: {key!r} is not 16 bytes in base64") from None
    return key


def negotiate(requested: str | None, supported: Sequence[str]) -> str | None:
    """The first protocol of the client's ``Sec-WebSocket-Protocol`` list that we support.

    ``""`` when the client asked for none (binary ``channel.k8s.io`` then, like wsstream);
    None when it asked only for protocols we do not speak.
    """
    offered = [p.strip() for p in (requested or "").split(",") if p.strip()] or [""]
    return next((p for p in offered if p in supported), None)


def handshake_response(key: str, protocol: str) -> bytes:
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(key)}",
    ]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- framing
def encode_frame(opcode: int, payload: bytes = b"", fin: bool = True, mask: bytes | None = None) -> bytes:
    """One frame; servers send unmasked frames, clients (and tests) pass a 4-byte ``mask``."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    mask_bit = 0x80 if mask is not None else 0
    size = len(payload)
    if size < 126:
        head.append(mask_bit | size)
    elif size < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", size)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", size)
    if mask is None:
        return bytes(head) + payload
    if len(mask) != 4:
        raise ValueError("a frame mask is 4 bytes")
    return bytes(head) + mask + apply_mask(payload, mask)


def apply_mask(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return b""
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()[:120]


def parse_close(payload: bytes) -> tuple[int | None, str]:
    if len(payload) < 2:
        return None, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode(errors="replace")


@dataclass(frozen=True)
class Message:
    """A whole message (fragments joined) or a control frame."""

    opcode: int
    payload: bytes


@dataclass
class FrameDecoder:
    """Incremental decoder of client frames: ``feed`` bytes as they arrive, get whole messages."""

    require_mask: bool = True
    max_message: int = MAX_MESSAGE
    _buffer: bytearray = field(default_factory=bytearray)
    _fragments: list[bytes] = field(default_factory=list)
    _fragment_opcode: int | None = None
    _fragment_size: int = 0

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        out: list[Message] = []
        while True:
            frame = self._next_frame()
            if frame is None:
                return out
            fin, opcode, payload = frame
            message = self._assemble(fin, opcode, payload)
            if message is not None:
                out.append(message)

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        first, second = buf[0], buf[1]
        if first & 0x70:
            raise ProtocolError("reserved bits set without a negotiated extension")
        fin, opcode, masked, size = bool(first & 0x80), first & 0x0F, bool(second & 0x80), second & 0x7F
        offset = 2
        if size == 126:
            if len(buf) < 4:
                return None
            size, offset = struct.unpack("!H", buf[2:4])[0], 4
        elif size == 127:
            if len(buf) < 10:
                return None
            size, offset = struct.unpack("!Q", buf[2:10])[0], 10
        if opcode in CONTROL_OPCODES and (size > 125 or not fin):
            raise ProtocolError("control frames are at most 125 bytes and never fragmented")
        if opcode not in CONTROL_OPCODES | DATA_OPCODES | {OP_CONTINUATION}:
            raise ProtocolError(f"unknown opcode {opcode:#x}")
        if self.require_mask and not masked:
            raise ProtocolError("client frames must be masked")
        if size + self._fragment_size > self.max_message:
            raise ProtocolError(f"message larger than {self.max_message} bytes", CLOSE_TOO_BIG)
        mask = b""
        if masked:
            mask = bytes(buf[offset : offset + 4])
            offset += 4
        if len(buf) < offset + size:
            return None
        payload = bytes(buf[offset : offset + size])
        del buf[: offset + size]
        return fin, opcode, apply_mask(payload, mask) if masked else payload

    def _assemble(self, fin: bool, opcode: int, payload: bytes) -> Message | None:
        if opcode in CONTROL_OPCODES:
            return Message(opcode, payload)  # may arrive between fragments
        if opcode == OP_CONTINUATION:
            if self._fragment_opcode is None:
                raise ProtocolError("continuation frame without a message to continue")
        elif self._fragment_opcode is not None:
            raise ProtocolError("new data message before the fragmented one ended")
        else:
            self._fragment_opcode = opcode
        self._fragments.append(payload)
        self._fragment_size += len(payload)
        if not fin:
            return None
        message = Message(self._fragment_opcode, b"".join(self._fragments))
        self._fragments, self._fragment_opcode, self._fragment_size = [], None, 0
        return message


# -- channels
@dataclass(frozen=True)
class ChannelCodec:
    """Channel prefix (and base64 for the text protocols) of one negotiated protocol."""

    protocol: str

    @property
    def text(self) -> bool:
        return "base64" in self.protocol

    @property
    def v4(self) -> bool:
        return self.protocol.startswith("v4.")

    def encode(self, channel: int, data: bytes) -> bytes:
        """One server frame carrying ``data`` on ``channel``."""
        if self.text:
            return encode_frame(OP_TEXT, str(channel).encode() + base64.b64encode(data))
        return encode_frame(OP_BINARY, bytes([channel]) + data)

    def decode(self, message: Message) -> tuple[int, bytes] | None:
        """(channel, data) of a client data message; None for an empty one (wsstream skips those)."""
        payload = message.payload
        if not payload:
            return None
        if self.text:
            channel = payload[0] - ord("0")
            try:
                return channel, base64.b64decode(payload[1:], validate=True)
            except (ValueError, binascii.Error):
                raise ProtocolError(f"channel {channel}: payload is not base64") from None
        return payload[0], payload[1:]


def port_prefix(port: int) -> bytes:
    """The first message of a port's data and error channels: the port, uint16 little-endian."""
    return struct.pack("<H", port)


# -- request options
def _flag(query: Mapping[str, Sequence[str]], name: str) -> bool:
    return (query.get(name) or [""])[0] == "1"


TTY_REFUSED = "tty=1: this process node runs containers without a terminal; exec without -t/--tty"


@dataclass(frozen=True)
class ExecOptions:
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def parse(cls, query: Mapping[str, Sequence[str]], allow_tty: bool = False) -> ExecOptions:
        """The kubelet's query: ``command`` (repeated), ``input``, ``output``, ``error``, ``tty``.

        ``allow_tty`` lets ``tty=1`` through for a transport that reports the refusal after the
        upgrade (SPDY: the API server passes only a Status on the error stream on to kubectl).
        """
        options = cls(
            command=tuple(query.get("command") or ()),
            stdin=_flag(query, "input"),
            stdout=_flag(query, "output"),
            stderr=_flag(query, "error"),
            tty=_flag(query, "tty"),
        )
        if not options.command:
            raise InvalidInput("query parameter command: at least one is required")
        if not (options.stdin or options.stdout or options.stderr):
            raise InvalidInput("you must specify at least 1 of stdin, stdout, stderr")
        if options.tty and not allow_tty:
            raise InvalidInput(TTY_REFUSED)
        return options


def parse_ports(values: Iterable[str]) -> list[int]:
    """The ``port`` query parameters (each may hold a comma-separated list), like the kubelet."""
    ports: list[int] = []
    for value in values:
        for item in value.split(","):
            try:
                port = int(item.strip())
            except ValueError:
                raise InvalidInput(f"query parameter port: {item.strip()!r} is not a number") from None
            if not 0 < port < 65536:
                raise InvalidInput(f"query parameter port: {port} must be between 1 and 65535")
            ports.append(port)
    if not ports:
        raise InvalidInput('query parameter "port" is required')
    return ports


# -- exec result
def exec_status(returncode: int | None, error: str = "") -> dict[str, Any]:
    """The ``metav1.Status`` the kubelet writes on the error channel when an exec ends.

    ``returncode`` as ``subprocess`` reports it (negative: killed by that signal, shown
    as 128+signal like a container runtime does); None with ``error`` when the
    command could not run at all (the kubelet's InternalError).
    """
    if returncode is None:
        message = f"error executing command in container: {error}"
        return {
            "metadata": {},
            "status": "Failure",
            "message": f"Internal error occurred: {message}",
            "reason": "InternalError",
            "details": {"causes": [{"message": message}]},
            "code": 500,
        }
    code = 128 - returncode if returncode < 0 else returncode
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: exit status {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def status_message(codec: ChannelCodec, status: dict[str, Any]) -> bytes:
    """What goes on the error channel: the Status JSON (v4), or only a failure's message (older)."""
    if codec.v4:
        return json.dumps(status, separators=(",", ":")).encode()
    return b"" if status.get("status") == "Success" else str(status.get("message", "")).encode()
