"""SPDY/3.1 framing of the process node's kubelet endpoint (``tfsbed.cluster.agent.spdy``)."""

from __future__ import annotations

import socket
import struct
import zlib
from collections.abc import Iterator

import pytest

from tfsbed.cluster.agent import spdy, streaming
from tfsbed.cluster.agent.server import SpdyChannels, SpdySocket
from tfsctl.errors import InvalidInput

# Written by moby/spdystream v0.5.1's own framer (spdy.NewFramer, one buffer, WriteFrame):
# SYN_STREAM 1 {streamType: error, port: 8080, requestID: 0}, then on the same framer
# SYN_STREAM 3 with streamType data and a data frame on 3 with FIN: what kubectl port-forward
# sends for one connection. The second header block only decodes with the first one's context.
GO_SYN_STREAM_1 = bytes.fromhex(
    "800300010000003e0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45e0"
    "1c60616061c0c0c0c0590489c64c50f2663400000000ffff"
)
GO_SYN_STREAM_3_AND_DATA = bytes.fromhex(
    "800300010000001800000003000000000000c2aa19540e2512d60b000000ffff0000000301000012474554202f2048"
    "5454502f312e300d0a0d0a"
)


class TestDictionary:
    def test_is_the_spdy3_dictionary_that_zlib_identifies_by_its_adler32(self) -> None:
        assert len(spdy.DICTIONARY) == 1423
        assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2  # the DICTID in spdystream's zlib header

    def test_our_first_header_block_names_that_dictionary_in_its_zlib_header(self) -> None:
        block = spdy.HeaderCompressor().compress({"port": "80"})
        assert block[0] & 0x0F == 8 and block[1] & 0x20  # deflate, FDICT
        assert struct.unpack("!I", block[2:6])[0] == zlib.adler32(spdy.DICTIONARY)
        assert block.endswith(b"\x00\x00\xff\xff")  # a sync flush ends every block


class TestSpdystreamCapture:
    def test_kubectl_port_forward_streams_decode_with_their_headers(self) -> None:
        decoder = spdy.Decoder()
        (error,) = decoder.feed(GO_SYN_STREAM_1)
        data, request = decoder.feed(GO_SYN_STREAM_3_AND_DATA)
        assert error == spdy.SynStream(1, {"streamtype": ["error"], "port": ["8080"], "requestid": ["0"]})
        assert isinstance(data, spdy.SynStream) and data.stream_id == 3
        assert (data.header("streamType"), data.header("port"), data.header("requestID")) == (
            "data",
            "8080",
            "0",
        )
        assert request == spdy.Data(3, b"GET / HTTP/1.0\r\n\r\n", spdy.FLAG_FIN) and request.fin

    def test_frames_split_at_every_byte_decode_the_same(self) -> None:
        decoder = spdy.Decoder()
        frames: list[spdy.Frame] = []
        for byte in GO_SYN_STREAM_1 + GO_SYN_STREAM_3_AND_DATA:
            frames += decoder.feed(bytes([byte]))
        assert [type(f).__name__ for f in frames] == ["SynStream", "SynStream", "Data"]

    def test_a_later_block_needs_the_connections_compression_context(self) -> None:
        with pytest.raises(spdy.ProtocolError, match="does not decompress"):
            spdy.Decoder().feed(GO_SYN_STREAM_3_AND_DATA)

    def test_our_encoder_writes_what_spdystream_wrote_but_for_compression(self) -> None:
        ours = spdy.Encoder().syn_stream(1, {"streamType": "error", "port": "8080", "requestID": "0"})
        # control bit, version 3, SYN_STREAM; stream 1, no associated stream, priority, slot; zlib header
        assert ours[:4] == GO_SYN_STREAM_1[:4]
        assert ours[8:24] == GO_SYN_STREAM_1[8:24]
        assert spdy.Decoder().feed(ours) == spdy.Decoder().feed(GO_SYN_STREAM_1)


class TestRoundTrips:
    def test_control_frames_decode_to_what_was_encoded(self) -> None:
        encoder, decoder = spdy.Encoder(), spdy.Decoder()
        wire = b"".join([
            encoder.syn_stream(5, {"streamType": "stdin"}, fin=True, associated_to=3, priority=7),
            encoder.syn_reply(5),
            encoder.headers(5, {"x-extra": ["a", "b"]}),
            spdy.encode_rst_stream(5, spdy.CANCEL),
            spdy.encode_settings([(1, 7, 65536)]),
            spdy.encode_ping(9),
            spdy.encode_goaway(5, spdy.GOAWAY_PROTOCOL_ERROR),
            spdy.encode_window_update(5, 1000),
        ])  # fmt: skip
        assert decoder.feed(wire) == [
            spdy.SynStream(5, {"streamtype": ["stdin"]}, spdy.FLAG_FIN, 3, 7),
            spdy.SynReply(5, {}),
            spdy.HeadersFrame(5, {"x-extra": ["a", "b"]}),
            spdy.RstStream(5, spdy.CANCEL),
            spdy.Settings(((1, 7, 65536),)),
            spdy.Ping(9),
            spdy.GoAway(5, spdy.GOAWAY_PROTOCOL_ERROR),
            spdy.WindowUpdate(5, 1000),
        ]

    @pytest.mark.parametrize("size", [0, 1, 65535, 65536, 200_000])
    def test_data_frames_keep_their_bytes_and_fin(self, size: int) -> None:
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        (frame,) = spdy.Decoder().feed(spdy.encode_data(7, payload, fin=size % 2 == 0))
        assert frame == spdy.Data(7, payload, spdy.FLAG_FIN if size % 2 == 0 else 0)

    def test_one_context_per_direction_makes_repeated_headers_cheaper(self) -> None:
        encoder, decoder = spdy.Encoder(), spdy.Decoder()
        headers = {"streamType": "data", "port": "8080", "requestID": "17"}
        first, second = encoder.syn_stream(1, headers), encoder.syn_stream(3, headers)
        assert len(second) < len(first)
        assert [f.headers for f in decoder.feed(first + second)] == [  # type: ignore[union-attr]
            {"streamtype": ["data"], "port": ["8080"], "requestid": ["17"]}
        ] * 2


class TestHeaderBlocks:
    def test_names_are_lowercased_and_values_joined_by_nul(self) -> None:
        block = spdy.encode_header_block({"X-Stream": ["a", "b"]})
        assert block == struct.pack("!II", 1, 8) + b"x-stream" + struct.pack("!I", 3) + b"a\x00b"
        assert spdy.decode_header_block(block) == {"x-stream": ["a", "b"]}

    @pytest.mark.parametrize(
        ("block", "message"),
        [
            (struct.pack("!II", 1, 4) + b"Port" + struct.pack("!I", 0), "not lowercase"),
            (struct.pack("!II", 1, 9) + b"port", "ends inside a field"),
            (struct.pack("!I", 0) + b"x", "after the last header"),
            (
                struct.pack("!II", 2, 1) + b"a" + struct.pack("!II", 0, 1) + b"a" + struct.pack("!I", 0),
                "twice",
            ),
        ],
    )
    def test_a_malformed_block_is_a_protocol_error_naming_what(self, block: bytes, message: str) -> None:
        with pytest.raises(spdy.ProtocolError, match=message):
            spdy.decode_header_block(block)


class TestDecoderErrors:
    def test_a_control_frame_of_another_spdy_version_is_refused(self) -> None:
        with pytest.raises(spdy.ProtocolError, match="version 2"):
            spdy.Decoder().feed(struct.pack("!HHI", 0x8002, spdy.PING, 4) + b"\x00\x00\x00\x01")

    def test_a_truncated_control_payload_is_refused(self) -> None:
        with pytest.raises(spdy.ProtocolError, match="want 8"):
            spdy.Decoder().feed(struct.pack("!HHI", 0x8003, spdy.RST_STREAM, 4) + b"\x00\x00\x00\x01")

    def test_unknown_control_frames_are_skipped(self) -> None:
        wire = struct.pack("!HHI", 0x8003, 0x42, 2) + b"??" + spdy.encode_ping(3)
        assert spdy.Decoder().feed(wire) == [spdy.Ping(3)]

    def test_a_data_frame_longer_than_24_bits_cannot_be_encoded(self) -> None:
        with pytest.raises(ValueError, match="too long"):
            spdy.encode_data(1, bytes(spdy.MAX_LENGTH + 1))


class TestHandshake:
    def test_spdy_upgrade_is_recognised_case_insensitively(self) -> None:
        assert streaming.is_spdy_upgrade("keep-alive, Upgrade", "spdy/3.1")
        assert not streaming.is_spdy_upgrade("Upgrade", "websocket")
        assert not streaming.is_spdy_upgrade(None, "SPDY/3.1")

    def test_negotiation_takes_the_clients_first_supported_protocol(self) -> None:
        offered = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io, channel.k8s.io"]
        assert streaming.negotiate_spdy(offered, streaming.SPDY_EXEC_PROTOCOLS) == "v4.channel.k8s.io"
        assert streaming.negotiate_spdy(["portforward.k8s.io"], streaming.SPDY_PORT_FORWARD_PROTOCOLS)
        assert streaming.negotiate_spdy(["v3.channel.k8s.io"], streaming.SPDY_EXEC_PROTOCOLS) is None

    def test_the_101_echoes_the_protocol(self) -> None:
        response = streaming.spdy_handshake_response("portforward.k8s.io").decode()
        assert response.startswith("HTTP/1.1 101 Switching Protocols\r\n")
        assert "\r\nUpgrade: SPDY/3.1\r\n" in response and "\r\nConnection: Upgrade\r\n" in response
        assert "\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n" in response

    def test_exec_options_refuse_a_tty_unless_the_transport_reports_it_later(self) -> None:
        query = {"command": ["sh"], "input": ["1"], "tty": ["1"]}
        with pytest.raises(InvalidInput, match="without -t/--tty"):
            streaming.ExecOptions.parse(query)
        assert streaming.ExecOptions.parse(query, allow_tty=True).tty


class TestSpdySocket:
    """The server side on a real socket pair: what it answers without being asked by a backend."""

    @pytest.fixture
    def pair(self) -> Iterator[tuple[SpdySocket, socket.socket]]:
        ours, theirs = socket.socketpair()
        theirs.settimeout(5)
        with ours, theirs:
            yield SpdySocket(ours), theirs

    @staticmethod
    def read_frames(sock: socket.socket, decoder: spdy.Decoder, count: int) -> list[spdy.Frame]:
        frames: list[spdy.Frame] = []
        while len(frames) < count:
            frames += decoder.feed(sock.recv(65536))
        return frames

    def test_every_stream_the_client_opens_gets_a_syn_reply_and_pings_are_echoed(
        self, pair: tuple[SpdySocket, socket.socket]
    ) -> None:
        server, client = pair
        encoder, decoder = spdy.Encoder(), spdy.Decoder()
        client.sendall(encoder.syn_stream(1, {"streamType": "error"}) + spdy.encode_ping(7))
        (opened,) = server.receive()
        assert isinstance(opened, spdy.SynStream) and opened.header("streamType") == "error"
        assert self.read_frames(client, decoder, 2) == [spdy.SynReply(1, {}), spdy.Ping(7)]

    def test_exec_channels_map_streams_and_a_fin_on_stdin_is_end_of_input(
        self, pair: tuple[SpdySocket, socket.socket]
    ) -> None:
        server, client = pair
        encoder, decoder = spdy.Encoder(), spdy.Decoder()
        client.sendall(
            encoder.syn_stream(1, {"streamType": "error"}) + encoder.syn_stream(3, {"streamType": "stdin"})
        )
        server.receive()
        channels = SpdyChannels(server, {streaming.ERROR: 1, streaming.STDIN: 3})
        client.sendall(spdy.encode_data(3, b"abc") + spdy.encode_data(3, b"", fin=True))
        received: list[tuple[int, bytes | None]] = []
        while len(received) < 2:
            received += channels.receive()
        assert received == [(streaming.STDIN, b"abc"), (streaming.STDIN, None)]
        channels.send(streaming.ERROR, b"{}")
        channels.end(streaming.ERROR)
        frames = self.read_frames(client, decoder, 4)
        assert frames[2:] == [spdy.Data(1, b"{}"), spdy.Data(1, b"", spdy.FLAG_FIN)]

    def test_a_goaway_or_a_hang_up_ends_the_session(self, pair: tuple[SpdySocket, socket.socket]) -> None:
        server, client = pair
        client.sendall(spdy.encode_goaway(0))
        assert server.receive() == [] and server.closed

    def test_broken_framing_is_answered_with_a_protocol_error_goaway(
        self, pair: tuple[SpdySocket, socket.socket]
    ) -> None:
        server, client = pair
        client.sendall(struct.pack("!HHI", 0x8002, spdy.PING, 4) + b"\x00\x00\x00\x01")
        server.receive()
        assert server.closed
        assert spdy.Decoder().feed(client.recv(64)) == [spdy.GoAway(0, spdy.GOAWAY_PROTOCOL_ERROR)]
