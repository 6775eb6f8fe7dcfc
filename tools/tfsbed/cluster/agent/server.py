"""The kubelet-like HTTPS endpoint: ``/metrics/resource`` (for metrics-server), ``/healthz``,
``/containerLogs/{namespace}/{pod}/{container}`` (what the API server's ``pods/log`` proxies to),
and the streaming endpoints behind ``pods/exec`` and ``pods/portforward``:
``/exec/{namespace}/{pod}/{container}?command=..&input=1&output=1&error=1`` and
``/portForward/{namespace}/{pod}?port=N&port=M``, served over WebSocket with the channel
protocols of :mod:`.streaming` and over SPDY/3.1 (:mod:`.spdy`, :class:`SpdySocket`), both
transports sharing the exec backend (:func:`serve_exec` on :class:`Channels`).

A streaming session runs in its request's handler thread, which owns the TLS socket
after the 101 and is its only reader and writer; every wait is a bounded ``select``
that also watches the server's ``stopping`` event and an idle timeout.

kwokctl's binary runtime starts kube-apiserver without ``--kubelet-certificate-authority``
and without kubelet client certificates, so it connects to
``<node InternalIP>:<status.daemonEndpoints.kubeletEndpoint.port>`` over TLS without
verifying the serving certificate: a self-signed one is enough, and no client
authentication is asked for (the endpoint listens on the host's loopback only).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import io
import ipaddress
import logging
import os
import select
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Generic, Protocol, TypeVar, cast

from tfsctl.errors import InvalidInput, NotFound, ToolkitError

from . import logs, spdy, streaming

log = logging.getLogger(__name__)

M = TypeVar("M")  # what an upgraded connection's decoder yields

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
# (namespace, pod) -> the address the pod's ports listen on; raises NotFound
AddressProvider = Callable[[str, str], str]
# (argv, stdin, stdout, stderr) -> the started command (own process group, pipes for the
# requested streams); raises ToolkitError when it cannot start (reported as the kubelet does)
ExecStarter = Callable[[list[str], bool, bool, bool], "subprocess.Popen[bytes]"]
# (namespace, pod, container) -> how to start a command in that running container; raises NotFound
ExecProvider = Callable[[str, str, str], ExecStarter]

STREAM_IDLE_TIMEOUT = 4 * 3600.0  # the kubelet's default streamingConnectionIdleTimeout
STREAM_TICK = 0.5  # how often a session looks at ``stopping`` and its idle timer
IO_TIMEOUT = 10.0  # one blocking send or recv on a session's sockets
DIAL_TIMEOUT = 5.0
PORT_LINGER = 1.0  # after the pod closes a forwarded connection (containerd waits as long)
OUTPUT_GRACE = 1.0  # after an exec'd command exits, for output its children still hold open
CLOSE_WAIT = 2.0  # for the client's answer to our close frame
STDIN_BUFFER = 1 << 20
STREAM_CREATION_TIMEOUT = 30.0  # the kubelet's: for a SPDY client to open the streams it asked for


class Channels(Protocol):
    """What the exec backend needs from a transport: numbered channels on one socket.

    ``receive`` yields ``(channel, None)`` when the client half-closed that channel (SPDY's FIN;
    WebSocket v4 cannot); ``end`` half-closes one of ours (a no-op where the transport cannot).
    """

    @property
    def sock(self) -> socket.socket: ...

    @property
    def closed(self) -> bool: ...

    @property
    def codec(self) -> streaming.ChannelCodec: ...

    def ready(self) -> bool: ...

    def send(self, channel: int, data: bytes) -> None: ...

    def end(self, channel: int) -> None: ...

    def receive(self) -> Sequence[tuple[int, bytes | None]]: ...

    def finish(self) -> None: ...

    def idle_for(self) -> float: ...


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


class _UpgradedSocket(Generic[M]):
    """An upgraded streaming connection (WebSocket or SPDY) on a handler's socket, one thread only.

    Subclasses decode bytes into ``inbox`` in ``_feed`` (their decoder must exist before this
    ``__init__`` runs) and handle what ``_read`` returns; writes stop once ``done_sending``.
    """

    def __init__(self, sock: socket.socket, leftover: bytes = b"") -> None:
        self.sock = sock
        self.inbox: list[M] = []
        self.closed = False  # nothing more will be read: the peer closed, went away or broke the protocol
        self.done_sending = False  # our close frame / GOAWAY went out: nothing more is written
        self.last_activity = time.monotonic()
        sock.settimeout(IO_TIMEOUT)
        if leftover:
            self._feed(leftover)

    def _feed(self, data: bytes) -> None:
        raise NotImplementedError

    def receive(self) -> Sequence[Any]:
        raise NotImplementedError

    def ready(self) -> bool:
        """Data is waiting that ``select`` on the socket would not report (decoded or inside TLS)."""
        pending = self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) else 0
        return bool(self.inbox) or pending > 0

    def _write(self, frame: bytes) -> None:
        if self.done_sending:
            return
        self.sock.sendall(frame)
        self.last_activity = time.monotonic()

    def _read(self) -> list[M]:
        """Read once unless decoded messages wait; the messages to handle (none at EOF)."""
        if not self.inbox and not self.closed:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.closed = True
                return []
            self._feed(data)
            self.last_activity = time.monotonic()
        messages, self.inbox = self.inbox, []
        return messages

    def _drain_and_shut(self) -> None:
        """Wait a bounded time for the peer to hang up, then shut the socket down."""
        deadline = time.monotonic() + CLOSE_WAIT
        while not self.closed and time.monotonic() < deadline:
            if self.ready() or select.select([self.sock], [], [], deadline - time.monotonic())[0]:
                self.receive()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def idle_for(self) -> float:
        return time.monotonic() - self.last_activity


class ChannelSocket(_UpgradedSocket[streaming.Message]):
    """A negotiated channel WebSocket on a handler's socket, read and written from one thread only."""

    def __init__(self, sock: socket.socket, codec: streaming.ChannelCodec, leftover: bytes = b"") -> None:
        self.codec = codec
        self.decoder = streaming.FrameDecoder()
        super().__init__(sock, leftover)

    def send(self, channel: int, data: bytes) -> None:
        self._write(self.codec.encode(channel, data))

    def end(self, channel: int) -> None:
        """WebSocket channels cannot be half-closed (v4): the session's end says it."""

    def _feed(self, data: bytes) -> None:
        try:
            self.inbox += self.decoder.feed(data)
        except streaming.ProtocolError as exc:
            log.debug("stream client broke the protocol: %s", exc)
            self.close(exc.code, str(exc))
            self.closed = True

    def receive(self) -> list[tuple[int, bytes]]:
        """Read once (unless messages are waiting); return the channel data the client sent."""
        out: list[tuple[int, bytes]] = []
        for message in self._read():
            if message.opcode == streaming.OP_PING:
                self._write(streaming.encode_frame(streaming.OP_PONG, message.payload))
            elif message.opcode == streaming.OP_CLOSE:
                code, _ = streaming.parse_close(message.payload)
                self.close(code)
                self.closed = True
                break
            elif message.opcode in streaming.DATA_OPCODES:
                try:
                    decoded = self.codec.decode(message)
                except streaming.ProtocolError as exc:
                    self.close(exc.code, str(exc))
                    self.closed = True
                    break
                if decoded is not None:
                    out.append(decoded)
        return out

    def close(self, code: int | None = streaming.CLOSE_NORMAL, reason: str = "") -> None:
        if self.done_sending:
            return
        payload = b"" if code is None else streaming.close_payload(code, reason)
        with contextlib.suppress(OSError):
            self._write(streaming.encode_frame(streaming.OP_CLOSE, payload))
        self.done_sending = True

    def finish(self) -> None:
        """Close (waiting a bounded time for the client's close frame), then shut the socket down."""
        self.close()
        self._drain_and_shut()


def _dial_pod(address: str, port: int, where: str) -> tuple[socket.socket | None, str]:
    """A connection to ``address:port`` for port-forwarding, or None and the kubelet's error text."""
    try:
        conn = socket.create_connection((address, port), timeout=DIAL_TIMEOUT)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        message = f"error forwarding port {port} to pod {where}: dial tcp {address}:{port}: {reason}"
        log.info("port-forward: %s", message)
        return None, message
    conn.settimeout(IO_TIMEOUT)
    return conn, ""


def _wait(
    ws: Channels | SpdySocket, readers: list[int], writers: list[int], read_ws: bool
) -> tuple[bool, list[int], list[int]]:
    """One bounded wait: (the WebSocket has data, readable fds, writable fds)."""
    if read_ws and ws.ready():
        r, w, _ = select.select(readers, writers, [], 0)
        return True, r, w
    watched = [ws.sock.fileno(), *readers] if read_ws else readers
    r, w, _ = select.select(watched, writers, [], STREAM_TICK)
    ws_ready = read_ws and ws.sock.fileno() in r
    return ws_ready, [fd for fd in r if fd != ws.sock.fileno()], w


def serve_port_forward(
    ws: ChannelSocket,
    where: str,
    address: str,
    ports: list[int],
    stopping: threading.Event,
    idle_timeout: float = STREAM_IDLE_TIMEOUT,
) -> None:
    """Forward each port over its channel pair until every connection ended, the client left or we stop."""
    for i, port in enumerate(ports):
        ws.send(2 * i, streaming.port_prefix(port))
        ws.send(2 * i + 1, streaming.port_prefix(port))
    conns: dict[int, socket.socket] = {}
    for i, port in enumerate(ports):
        conn, message = _dial_pod(address, port, where)
        if conn is None:
            ws.send(2 * i + 1, message.encode())
            continue
        conns[i] = conn
    by_fd = {conn.fileno(): i for i, conn in conns.items()}
    draining: dict[int, float] = {}  # port index -> when to drop it (the pod closed its side)
    try:
        while conns and not ws.closed and not stopping.is_set() and ws.idle_for() < idle_timeout:
            readers = [conn.fileno() for i, conn in conns.items() if i not in draining]
            ws_ready, readable, _ = _wait(ws, readers, [], True)
            if ws_ready:
                for channel, data in ws.receive():
                    i, kind = divmod(channel, 2)
                    if kind == 0 and i in conns and data:
                        try:
                            conns[i].sendall(data)
                        except OSError:
                            draining.setdefault(i, time.monotonic())
            for fd in readable:
                i = by_fd[fd]
                try:
                    data = conns[i].recv(65536)
                except OSError:
                    data = b""
                if data:
                    ws.send(2 * i, data)
                else:
                    draining[i] = time.monotonic() + PORT_LINGER
            now = time.monotonic()
            for i, until in list(draining.items()):
                if now >= until:
                    conns.pop(i).close()
                    del draining[i]
    finally:
        for conn in conns.values():
            conn.close()
        ws.finish()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=IO_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("exec'd process %d survived SIGKILL", proc.pid)


def serve_exec(
    ws: Channels,
    start: ExecStarter,
    options: streaming.ExecOptions,
    stopping: threading.Event,
    idle_timeout: float = STREAM_IDLE_TIMEOUT,
) -> None:
    """Run the command with its streams on channels 0-2; its Status on channel 3 when it ends."""
    first = streaming.STDOUT if options.stdout else streaming.STDERR if options.stderr else streaming.ERROR
    ws.send(first, b"")  # the kubelet's "connection established"
    try:
        proc = start(list(options.command), options.stdin, options.stdout, options.stderr)
    except ToolkitError as exc:
        ws.send(streaming.ERROR, streaming.status_message(ws.codec, streaming.exec_status(None, str(exc))))
        ws.finish()
        return
    outputs = {}
    for stream, channel in ((proc.stdout, streaming.STDOUT), (proc.stderr, streaming.STDERR)):
        if stream is not None:
            outputs[stream.fileno()] = channel
    stdin_fd = proc.stdin.fileno() if proc.stdin is not None else None
    if stdin_fd is not None:
        os.set_blocking(stdin_fd, False)
    pending = bytearray()
    stdin_eof = False
    exited_at: float | None = None
    status: dict[str, object] | None = None
    try:
        while True:
            if ws.closed or ws.idle_for() >= idle_timeout:
                _kill_group(proc)
                return  # nobody to tell
            if stopping.is_set():
                _kill_group(proc)
                status = streaming.exec_status(None, "the process node agent is stopping")
                break
            if proc.poll() is not None:
                exited_at = exited_at or time.monotonic()
                if not outputs or time.monotonic() - exited_at > OUTPUT_GRACE:
                    break
            writers = [stdin_fd] if pending and stdin_fd is not None else []
            ws_ready, readable, writable = _wait(ws, list(outputs), writers, len(pending) < STDIN_BUFFER)
            if ws_ready:
                for channel, data in ws.receive():
                    if channel == streaming.STDIN and stdin_fd is not None:
                        if data is None:
                            stdin_eof = True
                        else:
                            pending += data  # resize (4) and anything else: ignored
            for fd in readable:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if data:
                    ws.send(outputs[fd], data)
                else:
                    ws.end(outputs.pop(fd))
            if stdin_fd is not None and stdin_fd in writable:
                try:
                    del pending[: os.write(stdin_fd, pending)]
                except BlockingIOError:
                    pass
                except OSError:  # the command closed its stdin or exited
                    pending.clear()
                    stdin_fd = None
            if stdin_eof and not pending and stdin_fd is not None and proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # the client closed its stdin: the command reads EOF
                stdin_fd = None
    finally:
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
    if status is None:
        status = streaming.exec_status(proc.returncode)
    ws.send(streaming.ERROR, streaming.status_message(ws.codec, dict(status)))
    ws.finish()


class SpdySocket(_UpgradedSocket[spdy.Frame]):
    """An upgraded SPDY/3.1 connection on a handler's socket, read and written from one thread only.

    Every stream the client opens is answered with an empty SYN_REPLY (as the kubelet's
    ``httpstream`` server does), PINGs are echoed, and a GOAWAY or EOF marks it ``closed``.
    """

    def __init__(self, sock: socket.socket, leftover: bytes = b"") -> None:
        self.encoder = spdy.Encoder()
        self.decoder = spdy.Decoder()
        self.streams: dict[int, spdy.SynStream] = {}
        self.fin_sent: set[int] = set()
        super().__init__(sock, leftover)

    def _feed(self, data: bytes) -> None:
        try:
            self.inbox += self.decoder.feed(data)
        except spdy.ProtocolError as exc:
            log.debug("SPDY client broke the protocol: %s", exc)
            with contextlib.suppress(OSError):
                self._write(spdy.encode_goaway(max(self.streams, default=0), spdy.GOAWAY_PROTOCOL_ERROR))
            self.done_sending = True
            self.closed = True

    def receive(self) -> list[spdy.Frame]:
        """Read once (unless frames are waiting); return the client's SYN_STREAMs, data and resets."""
        out: list[spdy.Frame] = []
        for frame in self._read():
            if isinstance(frame, spdy.SynStream):
                if frame.stream_id in self.streams or frame.stream_id % 2 == 0:
                    self._write(spdy.encode_rst_stream(frame.stream_id, spdy.PROTOCOL_ERROR))
                    continue
                self.streams[frame.stream_id] = frame
                self._write(self.encoder.syn_reply(frame.stream_id))
                out.append(frame)
            elif isinstance(frame, spdy.Ping):
                self._write(spdy.encode_ping(frame.id))
            elif isinstance(frame, spdy.GoAway):
                self.closed = True
            elif isinstance(frame, spdy.Data | spdy.RstStream):
                out.append(frame)
            # SETTINGS, WINDOW_UPDATE, HEADERS: spdystream has no flow control; nothing to do
        return out

    def send(self, stream_id: int, data: bytes, fin: bool = False) -> None:
        """``data`` on the stream in frames of at most ``spdy.MAX_DATA``; ``fin`` half-closes it."""
        if stream_id in self.fin_sent:
            return
        for offset in range(0, len(data), spdy.MAX_DATA):
            last = offset + spdy.MAX_DATA >= len(data)
            self._write(spdy.encode_data(stream_id, data[offset : offset + spdy.MAX_DATA], fin and last))
        if fin:
            if not data:
                self._write(spdy.encode_data(stream_id, b"", True))
            self.fin_sent.add(stream_id)

    def end(self, stream_id: int) -> None:
        self.send(stream_id, b"", fin=True)

    def reset(self, stream_id: int, status: int = spdy.CANCEL) -> None:
        if stream_id not in self.fin_sent:
            self._write(spdy.encode_rst_stream(stream_id, status))
            self.fin_sent.add(stream_id)

    def finish(self) -> None:
        """Half-close every open stream, say GOAWAY, wait a bounded time for the client to hang up."""
        with contextlib.suppress(OSError):
            for stream_id in self.streams:
                self.end(stream_id)
            self._write(spdy.encode_goaway(max(self.streams, default=0)))
        self.done_sending = True
        self._drain_and_shut()


class SpdyChannels:
    """The exec channels (stdin 0 ... error 3) on the SPDY streams the client opened for them."""

    codec = streaming.ChannelCodec(streaming.V4_CHANNEL_PROTOCOL)  # the error stream carries v4 Status

    def __init__(self, conn: SpdySocket, streams: dict[int, int], backlog: Sequence[spdy.Frame] = ()) -> None:
        self.conn = conn
        self.by_channel = streams
        self.by_stream = {stream_id: channel for channel, stream_id in streams.items()}
        self.backlog = list(backlog)

    @property
    def sock(self) -> socket.socket:
        return self.conn.sock

    @property
    def closed(self) -> bool:
        return self.conn.closed

    def ready(self) -> bool:
        return bool(self.backlog) or self.conn.ready()

    def send(self, channel: int, data: bytes) -> None:
        if data and channel in self.by_channel:
            self.conn.send(self.by_channel[channel], data)

    def end(self, channel: int) -> None:
        if channel in self.by_channel:
            self.conn.end(self.by_channel[channel])

    def receive(self) -> list[tuple[int, bytes | None]]:
        frames, self.backlog = self.backlog or self.conn.receive(), []
        out: list[tuple[int, bytes | None]] = []
        for frame in frames:
            if isinstance(frame, spdy.Data | spdy.RstStream) and frame.stream_id in self.by_stream:
                channel = self.by_stream[frame.stream_id]
                if isinstance(frame, spdy.Data) and frame.data:
                    out.append((channel, frame.data))
                if isinstance(frame, spdy.RstStream) or frame.fin:
                    out.append((channel, None))
        return out

    def finish(self) -> None:
        self.conn.finish()

    def idle_for(self) -> float:
        return self.conn.idle_for()


EXEC_STREAM_TYPES = {
    "error": streaming.ERROR,
    "stdin": streaming.STDIN,
    "stdout": streaming.STDOUT,
    "stderr": streaming.STDERR,
    "resize": streaming.RESIZE,
}


def open_exec_streams(
    conn: SpdySocket, options: streaming.ExecOptions, stopping: threading.Event
) -> SpdyChannels | None:
    """Wait (bounded) until the client opened the error stream and one per requested std stream."""
    flags = ((streaming.STDIN, options.stdin), (streaming.STDOUT, options.stdout),
             (streaming.STDERR, options.stderr), (streaming.RESIZE, options.tty))  # fmt: skip
    wanted = {streaming.ERROR} | {channel for channel, on in flags if on}
    streams: dict[int, int] = {}
    backlog: list[spdy.Frame] = []
    deadline = time.monotonic() + STREAM_CREATION_TIMEOUT
    while not wanted <= streams.keys():
        if conn.closed or stopping.is_set() or time.monotonic() >= deadline:
            log.info("exec: the client opened streams for %s of %s", sorted(streams), sorted(wanted))
            return None
        if not conn.ready() and not select.select([conn.sock], [], [], STREAM_TICK)[0]:
            continue
        for frame in conn.receive():
            if isinstance(frame, spdy.SynStream):
                kind = frame.header("streamType")
                channel = EXEC_STREAM_TYPES.get(kind)
                if channel is None:
                    conn.reset(frame.stream_id, spdy.REFUSED_STREAM)
                    continue
                streams[channel] = frame.stream_id
            else:
                backlog.append(frame)  # stdin the client sent before the last stream was open
    return SpdyChannels(conn, streams, backlog)


def serve_spdy_port_forward(
    conn: SpdySocket,
    where: str,
    address: str,
    stopping: threading.Event,
    idle_timeout: float = STREAM_IDLE_TIMEOUT,
) -> None:
    """The kubelet's ``portforward.k8s.io``: each (error, data) stream pair with one ``requestID``
    is one TCP connection to the pod's ``port``; a refused dial is a message on the error stream."""
    pairs: dict[str, dict[str, spdy.SynStream]] = {}
    conns: dict[int, socket.socket] = {}  # data stream id -> connection to the pod
    errors: dict[int, int] = {}  # data stream id -> its error stream id

    def drop(data_id: int) -> None:
        with contextlib.suppress(OSError):
            conns.pop(data_id).close()
        conn.end(data_id)
        conn.end(errors.pop(data_id))

    def start(error: spdy.SynStream, data: spdy.SynStream) -> None:
        sock, message = _dial_pod(address, int(data.header("port")), where)
        if sock is None:
            conn.send(error.stream_id, message.encode(), fin=True)
            conn.reset(data.stream_id)
            return
        conns[data.stream_id] = sock
        errors[data.stream_id] = error.stream_id

    try:
        while not conn.closed and not stopping.is_set() and conn.idle_for() < idle_timeout:
            by_fd = {sock.fileno(): data_id for data_id, sock in conns.items()}
            ws_ready, readable, _ = _wait(conn, list(by_fd), [], True)
            if ws_ready:
                for frame in conn.receive():
                    if isinstance(frame, spdy.SynStream):
                        kind, port = frame.header("streamType"), frame.header("port")
                        if kind not in ("error", "data") or not port.isdigit() or not 0 < int(port) < 65536:
                            log.info("port-forward: stream %d: bad streamType %r or port %r", frame.stream_id,
                                     kind, port)  # fmt: skip
                            conn.reset(frame.stream_id, spdy.REFUSED_STREAM)
                            continue
                        pair = pairs.setdefault(frame.header("requestID") or port, {})
                        pair[kind] = frame
                        if len(pair) == 2:
                            del pairs[frame.header("requestID") or port]
                            start(pair["error"], pair["data"])
                    elif isinstance(frame, spdy.Data | spdy.RstStream) and frame.stream_id in conns:
                        if isinstance(frame, spdy.RstStream):
                            drop(frame.stream_id)
                            continue
                        try:
                            if frame.data:
                                conns[frame.stream_id].sendall(frame.data)
                            if frame.fin:
                                conns[frame.stream_id].shutdown(socket.SHUT_WR)
                        except OSError:
                            drop(frame.stream_id)
            for fd in readable:
                data_id = by_fd[fd]
                if data_id not in conns:
                    continue
                try:
                    chunk = conns[data_id].recv(65536)
                except OSError:
                    chunk = b""
                if chunk:
                    conn.send(data_id, chunk)
                else:
                    drop(data_id)  # the pod closed: EOF on the data stream, no error
    finally:
        for data_id in list(conns):
            with contextlib.suppress(OSError):
                drop(data_id)
        conn.finish()


class KubeletServer:
    """Serves ``render()`` at ``/metrics/resource`` and container logs over HTTPS on ``host:port``.

    Port 0 picks a free one. Without ``logs_provider`` the log endpoint answers 404, without
    ``address_provider`` port-forward does, without ``exec_provider`` exec does.
    """

    def __init__(
        self,
        host: str,
        port: int,
        cert_dir: Path,
        render: Callable[[], str],
        logs_provider: LogProvider | None = None,
        address_provider: AddressProvider | None = None,
        exec_provider: ExecProvider | None = None,
        stream_idle_timeout: float = STREAM_IDLE_TIMEOUT,
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

            def _stream(self, path: str, query: str) -> None:
                kind, *parts = (urllib.parse.unquote(p) for p in path.split("/")[1:])
                connection, upgrade = self.headers.get("Connection"), self.headers.get("Upgrade")
                over_spdy = streaming.is_spdy_upgrade(connection, upgrade)
                if not over_spdy and not streaming.is_websocket_upgrade(connection, upgrade):
                    self._plain(
                        400,
                        f"{kind}: upgrade {upgrade or 'none'!r} is not served by this process node: upgrade "
                        f"to {streaming.SPDY_UPGRADE} (kubectl) or to a WebSocket channel protocol "
                        f"({streaming.V4_CHANNEL_PROTOCOL})".encode(),
                    )
                    return
                params = urllib.parse.parse_qs(query, keep_blank_values=True)
                start: ExecStarter | None = None
                options: streaming.ExecOptions | None = None
                ports: list[int] = []
                supported: tuple[str, ...]
                key = address = ""
                try:
                    if not over_spdy:
                        key = streaming.check_handshake(
                            self.headers.get("Sec-WebSocket-Version"), self.headers.get("Sec-WebSocket-Key")
                        )
                    if kind == "exec":
                        if len(parts) != 3 or not all(parts) or exec_provider is None:
                            self._plain(404, b"not found")
                            return
                        options = streaming.ExecOptions.parse(params, allow_tty=over_spdy)
                        start = exec_provider(*parts)
                        supported = streaming.SPDY_EXEC_PROTOCOLS if over_spdy else streaming.EXEC_PROTOCOLS
                    else:
                        if len(parts) != 2 or not all(parts) or address_provider is None:
                            self._plain(404, b"not found")
                            return
                        if over_spdy:  # ports come with each stream pair
                            supported = streaming.SPDY_PORT_FORWARD_PROTOCOLS
                        else:
                            ports = streaming.parse_ports(params.get("port") or [])
                            supported = streaming.PORT_FORWARD_PROTOCOLS
                        address = address_provider(*parts)
                except InvalidInput as exc:
                    self._plain(400, str(exc).encode())
                    return
                except NotFound as exc:
                    self._plain(404, str(exc).encode())
                    return
                where = "/".join(parts[:2])
                if over_spdy:
                    self._spdy(kind, where, supported, start, options, address)
                    return
                requested = self.headers.get("Sec-WebSocket-Protocol")
                protocol = streaming.negotiate(requested, supported)
                if protocol is None:
                    offered = ", ".join(p for p in supported if p)
                    self._plain(
                        400,
                        f"requested protocol(s) {requested!r} are not supported; supports {offered}".encode(),
                    )
                    return
                self.close_connection = True  # the connection is the session's from here on
                leftover = self._buffered()
                self.connection.sendall(streaming.handshake_response(key, protocol))
                self.log_request(101)
                ws = ChannelSocket(self.connection, streaming.ChannelCodec(protocol), leftover)
                try:
                    if start is not None and options is not None:
                        serve_exec(ws, start, options, stopping, stream_idle_timeout)
                    else:
                        serve_port_forward(ws, where, address, ports, stopping, stream_idle_timeout)
                except OSError as exc:
                    log.debug("%s session for %s ended: %s", kind, where, exc)

            def _spdy(
                self,
                kind: str,
                where: str,
                supported: tuple[str, ...],
                start: ExecStarter | None,
                options: streaming.ExecOptions | None,
                address: str,
            ) -> None:
                """Negotiate ``X-Stream-Protocol-Version`` like ``httpstream.Handshake``, then serve."""
                requested = self.headers.get_all("X-Stream-Protocol-Version") or []
                protocol = streaming.negotiate_spdy(requested, supported)
                if protocol is None:
                    self._plain(
                        403 if requested else 400,
                        f"unable to upgrade: unable to negotiate protocol: client supports {requested}, "
                        f"server accepts {list(supported)}".encode(),
                    )
                    return
                self.close_connection = True
                leftover = self._buffered()
                self.connection.sendall(streaming.spdy_handshake_response(protocol))
                self.log_request(101)
                conn = SpdySocket(self.connection, leftover)
                try:
                    if start is not None and options is not None:
                        channels = open_exec_streams(conn, options, stopping)
                        if channels is None:
                            conn.finish()
                        elif options.tty:  # like a runtime without TTY support: a Status, no command
                            status = streaming.exec_status(None, streaming.TTY_REFUSED)
                            channels.send(streaming.ERROR, streaming.status_message(channels.codec, status))
                            channels.finish()
                        else:
                            serve_exec(channels, start, options, stopping, stream_idle_timeout)
                    else:
                        serve_spdy_port_forward(conn, where, address, stopping, stream_idle_timeout)
                except OSError as exc:
                    log.debug("%s session (SPDY) for %s ended: %s", kind, where, exc)

            def _buffered(self) -> bytes:
                """What the client sent after the request that ``rfile`` already read off the socket."""
                reader = cast(io.BufferedReader, self.rfile)
                self.connection.setblocking(False)
                try:
                    data = reader.peek(1)  # the buffer, or one read of what the socket has
                except OSError:  # nothing there (SSLWantReadError, BlockingIOError)
                    data = b""
                finally:
                    self.connection.setblocking(True)
                return reader.read(len(data)) if data else b""

            def do_POST(self) -> None:
                path, _, query = self.path.partition("?")
                if path.startswith(("/exec/", "/portForward/")):
                    self._stream(path, query)
                else:
                    self._plain(405, b"method not allowed")

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path.startswith(("/exec/", "/portForward/")):
                    self._stream(path, query)
                    return
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
