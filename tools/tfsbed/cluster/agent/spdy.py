"""SPDY/3.1 framing as pure functions (no sockets here): what the API server and kubectl speak
to a kubelet's streaming endpoints (``pods/exec``, ``pods/portforward``) after an
``Upgrade: SPDY/3.1``, as moby/spdystream writes and reads it.

- Control frames: ``1 | version 3 (15 bits) | type (16) | flags (8) | length (24) | payload``;
  data frames: ``0 | stream id (31) | flags (8) | length (24) | data``; ``FLAG_FIN`` half-closes
  the sender's side of a stream.
- Name/value header blocks (SYN_STREAM, SYN_REPLY, HEADERS): ``count (32)`` then
  ``name length (32) | name | value length (32) | value`` per header (several values joined by
  NUL), zlib-compressed with the SPDY/3 dictionary, one compression context per direction for
  the whole connection, each block ending at a sync flush.
- spdystream has no flow control: WINDOW_UPDATE and SETTINGS are parsed and can be ignored.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

VERSION = 3

SYN_STREAM = 1
SYN_REPLY = 2
RST_STREAM = 3
SETTINGS = 4
PING = 6
GOAWAY = 7
HEADERS = 8
WINDOW_UPDATE = 9

FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

# RST_STREAM status codes
PROTOCOL_ERROR = 1
INVALID_STREAM = 2
REFUSED_STREAM = 3
CANCEL = 5
INTERNAL_ERROR = 6
# GOAWAY status codes
GOAWAY_OK = 0
GOAWAY_PROTOCOL_ERROR = 1

MAX_LENGTH = (1 << 24) - 1  # the 24-bit length field
MAX_DATA = 1 << 16  # what we put in one data frame
MAX_HEADER_BLOCK = 1 << 20  # a bound on one decompressed header block
STREAM_ID_MASK = 0x7FFFFFFF

Headers = dict[str, list[str]]

# The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 section 2.6.10.1).
DICTIONARY = (
    b"\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\x00\x00\x00"
    b"\x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00"
    b"\x0faccept-encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\x0daccept-ranges\x00\x00\x00\x03a"
    b"ge\x00\x00\x00\x05allow\x00\x00\x00\x0dauthorization\x00\x00\x00\x0dcache-control\x00\x00\x00"
    b"\x0aconnection\x00\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding\x00\x00\x00\x10conten"
    b"t-language\x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-location\x00\x00\x00\x0bcontent-"
    b"md5\x00\x00\x00\x0dcontent-range\x00\x00\x00\x0ccontent-type\x00\x00\x00\x04date\x00\x00\x00\x04"
    b"etag\x00\x00\x00\x06expect\x00\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\x04host\x00"
    b"\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since\x00\x00\x00\x0dif-none-match\x00\x00\x00"
    b"\x08if-range\x00\x00\x00\x13if-unmodified-since\x00\x00\x00\x0dlast-modified\x00\x00\x00\x08loca"
    b"tion\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00\x00\x00\x12proxy-authenticate\x00\x00"
    b"\x00\x13proxy-authorization\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-aft"
    b"er\x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07trailer\x00\x00\x00\x11transfer-encodi"
    b"ng\x00\x00\x00\x07upgrade\x00\x00\x00\x0auser-agent\x00\x00\x00\x04vary\x00\x00\x00\x03via\x00"
    b"\x00\x00\x07warning\x00\x00\x00\x10www-authenticate\x00\x00\x00\x06method\x00\x00\x00\x03get\x00"
    b"\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HTTP/1.1\x00\x00"
    b"\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\x0aset-cookie\x00\x00\x00\x0akeep-alive\x00\x00"
    b"\x00\x06origin1001012012022052063003023033043053063074024054064074084094104114124134144154164175"
    b"02504505203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 U"
    b"nauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Una"
    b"vailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, "
    b"Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,te"
    b"xt/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,u"
    b"tf-,*,enq=0."
)


class ProtocolError(ValueError):
    """The peer broke SPDY/3 framing; the connection cannot go on."""


# -- header blocks
def encode_header_block(headers: Mapping[str, Sequence[str] | str]) -> bytes:
    """The uncompressed name/value block: names lowercased, several values joined by NUL."""
    out = bytearray(struct.pack("!I", len(headers)))
    for name, values in headers.items():
        raw_name = name.lower().encode()
        value = values if isinstance(values, str) else "\x00".join(values)
        raw_value = value.encode()
        out += struct.pack("!I", len(raw_name)) + raw_name + struct.pack("!I", len(raw_value)) + raw_value
    return bytes(out)


def decode_header_block(block: bytes) -> Headers:
    """Headers of an uncompressed block (values split at NUL); ProtocolError when malformed."""
    view = memoryview(block)

    def take(size: int) -> bytes:
        nonlocal view
        if len(view) < size:
            raise ProtocolError("header block ends inside a field")
        chunk, view = bytes(view[:size]), view[size:]
        return chunk

    (count,) = struct.unpack("!I", take(4))
    headers: Headers = {}
    for _ in range(count):
        (size,) = struct.unpack("!I", take(4))
        name = take(size).decode("utf-8", errors="replace")
        (size,) = struct.unpack("!I", take(4))
        value = take(size).decode("utf-8", errors="replace")
        if not name or name != name.lower():
            raise ProtocolError(f"header name {name!r} is empty or not lowercase")
        if name in headers:
            raise ProtocolError(f"header {name!r} appears twice")
        headers[name] = value.split("\x00")
    if view:
        raise ProtocolError(f"{len(view)} bytes after the last header")
    return headers


@dataclass
class HeaderCompressor:
    """One direction's compression context: every block of a connection goes through the same one."""

    _z: zlib._Compress = field(
        default_factory=lambda: zlib.compressobj(
            zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 9, zdict=DICTIONARY
        )
    )

    def compress(self, headers: Mapping[str, Sequence[str] | str]) -> bytes:
        return self._z.compress(encode_header_block(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


@dataclass
class HeaderDecompressor:
    _z: zlib._Decompress = field(default_factory=lambda: zlib.decompressobj(zdict=DICTIONARY))

    def decompress(self, block: bytes) -> Headers:
        try:
            raw = self._z.decompress(block, MAX_HEADER_BLOCK)
        except zlib.error as exc:
            raise ProtocolError(f"header block does not decompress: {exc}") from None
        if self._z.unconsumed_tail:
            raise ProtocolError(f"header block larger than {MAX_HEADER_BLOCK} bytes")
        return decode_header_block(raw)


# -- frames
@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    flags: int = 0
    associated_to: int = 0
    priority: int = 0
    slot: int = 0

    def header(self, name: str) -> str:
        """The first value of header ``name`` ("" when absent)."""
        return (self.headers.get(name.lower()) or [""])[0]

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class HeadersFrame:
    stream_id: int
    headers: Headers
    flags: int = 0


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Settings:
    entries: tuple[tuple[int, int, int], ...]  # (flags, id, value)
    flags: int = 0


@dataclass(frozen=True)
class Ping:
    id: int


@dataclass(frozen=True)
class GoAway:
    last_good_stream_id: int
    status: int = GOAWAY_OK


@dataclass(frozen=True)
class WindowUpdate:
    stream_id: int
    delta: int


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


Frame = SynStream | SynReply | HeadersFrame | RstStream | Settings | Ping | GoAway | WindowUpdate | Data


def _control(kind: int, flags: int, payload: bytes) -> bytes:
    if len(payload) > MAX_LENGTH:
        raise ValueError(f"control frame payload of {len(payload)} bytes is too long")
    return struct.pack("!HHI", 0x8000 | VERSION, kind, flags << 24 | len(payload)) + payload


def encode_data(stream_id: int, data: bytes = b"", fin: bool = False) -> bytes:
    if len(data) > MAX_LENGTH:
        raise ValueError(f"data frame of {len(data)} bytes is too long")
    flags = FLAG_FIN if fin else 0
    return struct.pack("!II", stream_id & STREAM_ID_MASK, flags << 24 | len(data)) + data


def encode_rst_stream(stream_id: int, status: int) -> bytes:
    return _control(RST_STREAM, 0, struct.pack("!II", stream_id & STREAM_ID_MASK, status))


def encode_ping(ping_id: int) -> bytes:
    return _control(PING, 0, struct.pack("!I", ping_id))


def encode_goaway(last_good_stream_id: int, status: int = GOAWAY_OK) -> bytes:
    return _control(GOAWAY, 0, struct.pack("!II", last_good_stream_id & STREAM_ID_MASK, status))


def encode_settings(entries: Iterable[tuple[int, int, int]], flags: int = 0) -> bytes:
    items = list(entries)
    payload = struct.pack("!I", len(items)) + b"".join(
        struct.pack("!II", f << 24 | (i & 0xFFFFFF), v) for f, i, v in items
    )
    return _control(SETTINGS, flags, payload)


def encode_window_update(stream_id: int, delta: int) -> bytes:
    return _control(WINDOW_UPDATE, 0, struct.pack("!II", stream_id & STREAM_ID_MASK, delta & STREAM_ID_MASK))


@dataclass
class Encoder:
    """Frames one side sends; owns that direction's header compression context."""

    compressor: HeaderCompressor = field(default_factory=HeaderCompressor)

    def syn_stream(
        self,
        stream_id: int,
        headers: Mapping[str, Sequence[str] | str],
        fin: bool = False,
        associated_to: int = 0,
        priority: int = 0,
    ) -> bytes:
        head = struct.pack(
            "!IIBB", stream_id & STREAM_ID_MASK, associated_to & STREAM_ID_MASK, (priority & 7) << 5, 0
        )
        return _control(SYN_STREAM, FLAG_FIN if fin else 0, head + self.compressor.compress(headers))

    def syn_reply(
        self, stream_id: int, headers: Mapping[str, Sequence[str] | str] | None = None, fin: bool = False
    ) -> bytes:
        block = self.compressor.compress(headers or {})
        return _control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack("!I", stream_id) + block)

    def headers(self, stream_id: int, headers: Mapping[str, Sequence[str] | str], fin: bool = False) -> bytes:
        block = self.compressor.compress(headers)
        return _control(HEADERS, FLAG_FIN if fin else 0, struct.pack("!I", stream_id) + block)


@dataclass
class Decoder:
    """Incremental decoder: ``feed`` bytes as they arrive, get whole frames; owns the peer's context."""

    decompressor: HeaderDecompressor = field(default_factory=HeaderDecompressor)
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames: list[Frame] = []
        while len(self._buffer) >= 8:
            first, second = struct.unpack("!II", self._buffer[:8])
            flags, length = second >> 24, second & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                break
            payload = bytes(self._buffer[8 : 8 + length])
            del self._buffer[: 8 + length]
            if first & 0x80000000:
                version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"control frame of SPDY version {version}, want {VERSION}")
                frame = self._control(kind, flags, payload)
                if frame is not None:
                    frames.append(frame)
            else:
                frames.append(Data(first & STREAM_ID_MASK, payload, flags))
        return frames

    def _control(self, kind: int, flags: int, payload: bytes) -> Frame | None:
        def need(size: int) -> None:
            if len(payload) < size:
                raise ProtocolError(f"control frame type {kind} of {len(payload)} bytes, want {size}")

        if kind == SYN_STREAM:
            need(10)
            stream_id, associated, priority, slot = struct.unpack("!IIBB", payload[:10])
            headers = self.decompressor.decompress(payload[10:])
            return SynStream(
                stream_id & STREAM_ID_MASK, headers, flags, associated & STREAM_ID_MASK, priority >> 5, slot
            )
        if kind in (SYN_REPLY, HEADERS):
            need(4)
            (stream_id,) = struct.unpack("!I", payload[:4])
            headers = self.decompressor.decompress(payload[4:])
            cls = SynReply if kind == SYN_REPLY else HeadersFrame
            return cls(stream_id & STREAM_ID_MASK, headers, flags)
        if kind == RST_STREAM:
            need(8)
            stream_id, status = struct.unpack("!II", payload[:8])
            return RstStream(stream_id & STREAM_ID_MASK, status)
        if kind == SETTINGS:
            need(4)
            (count,) = struct.unpack("!I", payload[:4])
            need(4 + 8 * count)
            entries = []
            for offset in range(4, 4 + 8 * count, 8):
                head, value = struct.unpack("!II", payload[offset : offset + 8])
                entries.append((head >> 24, head & 0xFFFFFF, value))
            return Settings(tuple(entries), flags)
        if kind == PING:
            need(4)
            return Ping(struct.unpack("!I", payload[:4])[0])
        if kind == GOAWAY:
            need(4)
            (last,) = struct.unpack("!I", payload[:4])
            status = struct.unpack("!I", payload[4:8])[0] if len(payload) >= 8 else GOAWAY_OK
            return GoAway(last & STREAM_ID_MASK, status)
        if kind == WINDOW_UPDATE:
            need(8)
            stream_id, delta = struct.unpack("!II", payload[:8])
            return WindowUpdate(stream_id & STREAM_ID_MASK, delta & STREAM_ID_MASK)
        return None  # unknown control frames are ignored (SPDY/3 section 2.2.1)
