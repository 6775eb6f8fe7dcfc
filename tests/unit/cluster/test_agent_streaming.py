"""The kubelet streaming protocols of the process node agent: WebSocket framing and k8s channels."""

from __future__ import annotations

import base64
import json
import os
import struct

import pytest
from websocket import ABNF
from websocket._abnf import frame_buffer  # websocket-client's reader: the reference decoder

from tfsbed.cluster.agent import streaming
from tfsbed.cluster.agent.streaming import (
    ChannelCodec,
    ExecOptions,
    FrameDecoder,
    Message,
    ProtocolError,
    encode_frame,
)
from tfsctl.errors import InvalidInput

MASK = b"\x37\xfa\x21\x3d"


def client_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    return encode_frame(opcode, payload, fin=fin, mask=MASK)


class TestHandshake:
    def test_accept_key_matches_rfc_6455_example(self) -> None:
        assert streaming.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

    def test_response_names_the_negotiated_protocol_and_accept_key(self) -> None:
        response = streaming.handshake_response("dGhlIHNhbXBsZSBub25jZQ==", "v4.channel.k8s.io").decode()
        assert response.startswith("HTTP/1.1 101 Switching Protocols\r\n")
        assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in response
        assert "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n" in response
        assert response.endswith("\r\n\r\n")

    def test_response_without_protocol_has_no_protocol_header(self) -> None:
        assert b"Sec-WebSocket-Protocol" not in streaming.handshake_response("dGhlIHNhbXBsZSBub25jZQ==", "")

    def test_upgrade_needs_connection_upgrade_and_upgrade_websocket(self) -> None:
        assert streaming.is_websocket_upgrade("keep-alive, Upgrade", "WebSocket")
        assert not streaming.is_websocket_upgrade("Upgrade", "SPDY/3.1")
        assert not streaming.is_websocket_upgrade(None, "websocket")

    def test_handshake_rejects_other_versions_and_bad_keys_naming_the_header(self) -> None:
        assert streaming.check_handshake("13", " dGhlIHNhbXBsZSBub25jZQ== ") == "dGhlIHNhbXBsZSBub25jZQ=="
        with pytest.raises(InvalidInput, match="Sec-WebSocket-Version"):
            streaming.check_handshake("8", "dGhlIHNhbXBsZSBub25jZQ==")
        with pytest.raises(InvalidInput, match="Sec-WebSocket-Key"):
            streaming.check_handshake("13", "c2hvcnQ=")

    @pytest.mark.parametrize(
        ("requested", "expected"),
        [
            ("v5.channel.k8s.io,v4.channel.k8s.io", "v4.channel.k8s.io"),  # the Python client's default
            ("v4.base64.channel.k8s.io, v4.channel.k8s.io", "v4.base64.channel.k8s.io"),
            (None, ""),
            ("v5.channel.k8s.io", None),
        ],
    )
    def test_negotiation_takes_the_clients_first_supported_protocol(
        self, requested: str | None, expected: str | None
    ) -> None:
        assert streaming.negotiate(requested, streaming.PORT_FORWARD_PROTOCOLS) == expected

    def test_exec_also_speaks_the_pre_v4_protocols(self) -> None:
        assert streaming.negotiate("channel.k8s.io", streaming.EXEC_PROTOCOLS) == "channel.k8s.io"
        assert streaming.negotiate("channel.k8s.io", streaming.PORT_FORWARD_PROTOCOLS) is None


class TestFrames:
    @pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70000])
    def test_server_frames_decode_with_websocket_client_at_every_length_encoding(self, size: int) -> None:
        payload = os.urandom(size)
        frame = encode_frame(streaming.OP_BINARY, payload)
        data = iter([frame])
        buffer = bytearray()

        def recv(n: int) -> bytes:
            nonlocal buffer
            while len(buffer) < n:
                buffer += next(data)
            out, buffer = bytes(buffer[:n]), buffer[n:]
            return out

        parsed = frame_buffer(recv, skip_utf8_validation=True).recv_frame()
        assert (parsed.opcode, parsed.fin, parsed.mask_value) == (streaming.OP_BINARY, 1, 0)
        assert parsed.data == payload

    def test_masked_client_frames_from_websocket_client_decode(self) -> None:
        wire = ABNF.create_frame(b"\x00hello", ABNF.OPCODE_BINARY).format()
        assert FrameDecoder().feed(wire) == [Message(streaming.OP_BINARY, b"\x00hello")]

    def test_decoder_waits_for_a_whole_frame_fed_byte_by_byte(self) -> None:
        wire = client_frame(streaming.OP_BINARY, b"x" * 300)
        decoder = FrameDecoder()
        out = [m for byte in wire for m in decoder.feed(bytes([byte]))]
        assert out == [Message(streaming.OP_BINARY, b"x" * 300)]

    def test_fragments_are_joined_and_control_frames_pass_between_them(self) -> None:
        wire = (
            client_frame(streaming.OP_TEXT, b"he", fin=False)
            + client_frame(streaming.OP_PING, b"p")
            + client_frame(streaming.OP_CONTINUATION, b"ll", fin=False)
            + client_frame(streaming.OP_CONTINUATION, b"o")
        )
        assert FrameDecoder().feed(wire) == [
            Message(streaming.OP_PING, b"p"),
            Message(streaming.OP_TEXT, b"hello"),
        ]

    def test_unmasked_client_frames_are_a_protocol_error(self) -> None:
        with pytest.raises(ProtocolError, match="masked"):
            FrameDecoder().feed(encode_frame(streaming.OP_BINARY, b"\x00x"))

    @pytest.mark.parametrize(
        "wire",
        [
            bytes([0x82 | 0x40, 0x80]) + MASK,  # reserved bit
            client_frame(streaming.OP_CONTINUATION, b"x"),  # nothing to continue
            client_frame(streaming.OP_PING, b"p", fin=False),  # fragmented control frame
            client_frame(streaming.OP_BINARY, b"a", fin=False) + client_frame(streaming.OP_BINARY, b"b"),
            client_frame(0x3, b""),  # reserved opcode
        ],
    )
    def test_protocol_violations_are_refused(self, wire: bytes) -> None:
        with pytest.raises(ProtocolError):
            FrameDecoder().feed(wire)

    def test_oversized_messages_close_with_1009(self) -> None:
        with pytest.raises(ProtocolError) as exc:
            FrameDecoder(max_message=10).feed(client_frame(streaming.OP_BINARY, b"x" * 11))
        assert exc.value.code == streaming.CLOSE_TOO_BIG

    def test_close_payload_round_trips_code_and_reason(self) -> None:
        assert streaming.parse_close(streaming.close_payload(1001, "bye")) == (1001, "bye")
        assert streaming.parse_close(b"") == (None, "")


class TestChannels:
    def test_binary_protocols_prefix_one_channel_byte(self) -> None:
        codec = ChannelCodec("v4.channel.k8s.io")
        assert codec.encode(3, b"{}") == encode_frame(streaming.OP_BINARY, b"\x03{}")
        assert codec.decode(Message(streaming.OP_BINARY, b"\x00input")) == (0, b"input")
        assert codec.decode(Message(streaming.OP_BINARY, b"")) is None

    def test_base64_protocols_prefix_an_ascii_digit_and_encode_the_payload(self) -> None:
        codec = ChannelCodec("v4.base64.channel.k8s.io")
        assert codec.encode(1, b"out") == encode_frame(streaming.OP_TEXT, b"1" + base64.b64encode(b"out"))
        assert codec.decode(Message(streaming.OP_TEXT, b"0" + base64.b64encode(b"in"))) == (0, b"in")
        with pytest.raises(ProtocolError):
            codec.decode(Message(streaming.OP_TEXT, b"0***"))

    def test_port_prefix_is_uint16_little_endian(self) -> None:
        assert streaming.port_prefix(8500) == struct.pack("<H", 8500) == b"\x34\x21"

    def test_ports_repeat_or_list_and_must_be_valid(self) -> None:
        assert streaming.parse_ports(["8500", "8501,9000"]) == [8500, 8501, 9000]
        with pytest.raises(InvalidInput, match='"port" is required'):
            streaming.parse_ports([])
        with pytest.raises(InvalidInput, match="between 1 and 65535"):
            streaming.parse_ports(["0"])
        with pytest.raises(InvalidInput, match="'http'"):
            streaming.parse_ports(["http"])


class TestExec:
    def test_options_use_the_kubelets_query_names(self) -> None:
        query = {"command": ["sh", "-c", "echo hi"], "input": ["1"], "output": ["1"], "error": ["1"]}
        assert ExecOptions.parse(query) == ExecOptions(("sh", "-c", "echo hi"), True, True, True, False)

    @pytest.mark.parametrize(
        ("query", "message"),
        [
            ({"output": ["1"]}, "command"),
            ({"command": ["ls"]}, "at least 1 of stdin, stdout, stderr"),
            ({"command": ["sh"], "input": ["1"], "tty": ["1"]}, "without -t/--tty"),
        ],
    )
    def test_bad_options_are_refused_naming_what_to_change(
        self, query: dict[str, list[str]], message: str
    ) -> None:
        with pytest.raises(InvalidInput, match=message):
            ExecOptions.parse(query)

    def test_success_status_is_what_the_python_client_reads_as_zero(self) -> None:
        assert streaming.exec_status(0) == {"metadata": {}, "status": "Success"}

    def test_exit_code_is_the_first_cause_like_the_kubelet(self) -> None:
        status = streaming.exec_status(3)
        assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]

    def test_a_signal_death_reports_128_plus_the_signal(self) -> None:
        assert streaming.exec_status(-9)["details"]["causes"][0]["message"] == "137"

    def test_a_command_that_cannot_start_is_an_internal_error(self) -> None:
        status = streaming.exec_status(None, 'exec: "nope": executable file not found in $PATH')
        assert status["reason"] == "InternalError" and status["code"] == 500
        assert 'exec: "nope"' in status["message"]

    def test_v4_carries_the_status_json_and_older_protocols_only_a_failure_message(self) -> None:
        status = streaming.exec_status(2)
        assert json.loads(streaming.status_message(ChannelCodec("v4.channel.k8s.io"), status)) == status
        assert streaming.status_message(ChannelCodec("channel.k8s.io"), status) == status["message"].encode()
        assert streaming.status_message(ChannelCodec("channel.k8s.io"), streaming.exec_status(0)) == b""
