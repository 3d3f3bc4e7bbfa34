"""The Engine.IO v4 packet and polling-payload codec, with the spec's vectors."""

from __future__ import annotations

import base64

import pytest

from realtime.engineio import packets as codec
from realtime.engineio.packets import (
    SEPARATOR,
    OutPacket,
    Packet,
    PacketType,
    decode_frame,
    decode_payload,
    decode_text,
    encode_packets,
    encode_payload,
)
from realtime.exceptions import PacketDecodeError


class TestDecodeText:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("0", Packet(PacketType.OPEN, "")),
            ("1", Packet(PacketType.CLOSE, "")),
            ("2", Packet(PacketType.PING, "")),
            ("2probe", Packet(PacketType.PING, "probe")),
            ("3probe", Packet(PacketType.PONG, "probe")),
            ("4hello", Packet(PacketType.MESSAGE, "hello")),
            ("4", Packet(PacketType.MESSAGE, "")),
            ("5", Packet(PacketType.UPGRADE, "")),
            ("6", Packet(PacketType.NOOP, "")),
            ("4€ü\x00", Packet(PacketType.MESSAGE, "€ü\x00")),
        ],
    )
    def test_every_type(self, text: str, expected: Packet) -> None:
        assert decode_text(text) == expected

    @pytest.mark.parametrize("text", ["7", "9x", "x", "b", "-1", " 4", "\x1e"])
    def test_unknown_type(self, text: str) -> None:
        with pytest.raises(PacketDecodeError):
            decode_text(text)

    def test_empty(self) -> None:
        with pytest.raises(PacketDecodeError):
            decode_text("")


class TestDecodeFrame:
    def test_text_frame(self) -> None:
        assert decode_frame("4hello") == Packet(PacketType.MESSAGE, "hello")

    def test_binary_frame_is_raw_message_bytes(self) -> None:
        # Spec, "WebSocket": binary frames carry the raw buffer, no type prefix.
        assert decode_frame(b"\x01\x02\x03\x04") == Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04")

    def test_binary_frame_starting_with_a_digit_stays_binary(self) -> None:
        assert decode_frame(b"4hello") == Packet(PacketType.MESSAGE, b"4hello")

    def test_empty_binary_frame(self) -> None:
        assert decode_frame(b"") == Packet(PacketType.MESSAGE, b"")

    def test_bad_text_frame(self) -> None:
        with pytest.raises(PacketDecodeError):
            decode_frame("8")
        with pytest.raises(PacketDecodeError):
            decode_frame("")


class TestDecodePayload:
    def test_spec_vector_text(self) -> None:
        assert decode_payload(b"4hello\x1e2\x1e4world") == [
            Packet(PacketType.MESSAGE, "hello"),
            Packet(PacketType.PING, ""),
            Packet(PacketType.MESSAGE, "world"),
        ]

    def test_spec_vector_binary(self) -> None:
        assert decode_payload(b"4hello\x1ebAQIDBA==") == [
            Packet(PacketType.MESSAGE, "hello"),
            Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04"),
        ]

    def test_single_packet(self) -> None:
        assert decode_payload(b"4x") == [Packet(PacketType.MESSAGE, "x")]

    def test_utf8(self) -> None:
        assert decode_payload("4€\x1e4日本".encode()) == [
            Packet(PacketType.MESSAGE, "€"),
            Packet(PacketType.MESSAGE, "日本"),
        ]

    def test_empty_binary_record(self) -> None:
        assert decode_payload(b"b") == [Packet(PacketType.MESSAGE, b"")]

    @pytest.mark.parametrize(
        "body",
        [
            b"",  # empty body
            b"\x1e",  # two empty records
            b"4a\x1e",  # trailing separator: an empty record
            b"\x1e4a",  # leading separator
            b"4a\x1e\x1e4b",  # empty record in the middle
            b"9",  # unknown type
            b"4a\x1e7b",  # unknown type after a good one
            b"bAQIDBA",  # base64 without its padding
            b"b!!!!",  # not base64 at all
            b"bAQ ID",  # whitespace is not base64
            b"4\xff\xfe",  # not UTF-8
            b"4\xc3",  # truncated UTF-8 sequence
            b"\x80",  # lone continuation byte
        ],
    )
    def test_rejects(self, body: bytes) -> None:
        with pytest.raises(PacketDecodeError):
            decode_payload(body)

    def test_many_tiny_records(self) -> None:
        body = SEPARATOR.join(["4x"] * 10_000).encode()
        decoded = decode_payload(body)
        assert len(decoded) == 10_000
        assert all(p == Packet(PacketType.MESSAGE, "x") for p in decoded)


class TestEncode:
    def test_spec_vector_text(self) -> None:
        out = [
            OutPacket.message("hello"),
            OutPacket.of(PacketType.PING),
            OutPacket.message("world"),
        ]
        assert encode_payload(out) == "4hello\x1e2\x1e4world"

    def test_spec_vector_binary(self) -> None:
        out = [OutPacket.message("hello"), OutPacket.message(b"\x01\x02\x03\x04")]
        assert encode_payload(out) == "4hello\x1ebAQIDBA=="

    def test_empty_payload(self) -> None:
        assert encode_payload([]) == ""

    def test_ws_forms(self) -> None:
        assert OutPacket.message("hi").ws == "4hi"
        assert OutPacket.message(b"\x00\xff").ws == b"\x00\xff"
        assert OutPacket.of(PacketType.PONG, "probe").ws == "3probe"
        assert OutPacket.of(PacketType.CLOSE).ws == "1"
        assert codec.NOOP.ws == "6"
        assert codec.PING.ws == "2"
        assert codec.PONG_PROBE.ws == "3probe"
        assert codec.CLOSE.ws == "1"

    def test_size_is_the_ws_length(self) -> None:
        assert OutPacket.message("abc").size == 4
        assert OutPacket.message(b"\x01\x02\x03").size == 3

    def test_encode_packets_round_trip(self) -> None:
        packets = [
            Packet(PacketType.MESSAGE, "hello"),
            Packet(PacketType.PING, ""),
            Packet(PacketType.MESSAGE, b"\x01\x02\x03\x04"),
            Packet(PacketType.MESSAGE, "€"),
        ]
        text = encode_packets(packets)
        assert text == "4hello\x1e2\x1ebAQIDBA==\x1e4€"
        assert decode_payload(text.encode()) == packets

    @pytest.mark.parametrize("data", [b"", b"\x00", bytes(range(256)), b"\xff" * 1000])
    def test_binary_round_trip(self, data: bytes) -> None:
        payload = encode_payload([OutPacket.message(data)])
        assert decode_payload(payload.encode()) == [Packet(PacketType.MESSAGE, data)]


class TestOutPacketEncodesOnce:
    def test_polling_form_of_binary_is_cached(self, monkeypatch: pytest.MonkeyPatch) -> None:
        calls = 0
        real = base64.b64encode

        def counting(data: bytes) -> bytes:
            nonlocal calls
            calls += 1
            return real(data)

        monkeypatch.setattr(base64, "b64encode", counting)
        packet = OutPacket.message(b"\x01\x02\x03\x04")
        assert calls == 0  # computed on first use, not at construction
        first = packet.polling
        assert first == "bAQIDBA=="
        # One instance shared by many sessions' payloads: encoded once.
        for _ in range(100):
            assert encode_payload([packet, packet]) == "bAQIDBA==\x1ebAQIDBA=="
        assert packet.polling is first
        assert calls == 1

    def test_text_polling_form_is_the_ws_form(self) -> None:
        packet = OutPacket.message("hello")
        assert packet.polling is packet.ws

    def test_shared_instance_in_many_payloads(self) -> None:
        shared = OutPacket.message(b"\xde\xad")
        payloads = [encode_payload([OutPacket.message(str(i)), shared]) for i in range(3)]
        assert payloads == [f"4{i}\x1eb3q0=" for i in range(3)]
