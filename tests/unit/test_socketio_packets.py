"""Socket.IO v5 codec: the spec's vectors, the reference parser's refusals, and our limits."""

from __future__ import annotations

from typing import Any

import pytest

from realtime.exceptions import EncodeError, SocketIOPacketError
from realtime.socketio.binary import deconstruct, has_binary, reconstruct
from realtime.socketio.packets import Decoder, DecoderLimits, Packet, PacketType, encode

T = PacketType

# (packet, encoded) pairs from socket.io-protocol v5 "Packet encoding".
SPEC_VECTORS: list[tuple[Packet, list[str | bytes]]] = [
    (Packet(T.CONNECT), ["0"]),
    (
        Packet(T.CONNECT, "/admin", {"sid": "oSO0OpakMV_3jnilAAAA"}),
        ['0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}'],
    ),
    (
        Packet(T.CONNECT_ERROR, data={"message": "Not authorized"}),
        ['4{"message":"Not authorized"}'],
    ),
    (Packet(T.EVENT, data=["foo"]), ['2["foo"]']),
    (Packet(T.EVENT, "/admin", ["bar"]), ['2/admin,["bar"]']),
    (
        Packet(T.EVENT, data=["baz", b"\x01\x02\x03\x04"]),
        ['51-["baz",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
    (
        Packet(T.EVENT, "/admin", ["baz", b"\x01\x02", b"\x03\x04"]),
        [
            '52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            b"\x01\x02",
            b"\x03\x04",
        ],
    ),
    (Packet(T.EVENT, data=["foo"], id=12), ['212["foo"]']),
    (Packet(T.ACK, "/admin", ["bar"], 13), ['3/admin,13["bar"]']),
    (
        Packet(T.ACK, data=["bar", b"\x01\x02\x03\x04"], id=15),
        ['61-15["bar",{"_placeholder":true,"num":0}]', b"\x01\x02\x03\x04"],
    ),
    (Packet(T.DISCONNECT), ["1"]),
    (Packet(T.DISCONNECT, "/admin"), ["1/admin,"]),
]


@pytest.mark.parametrize(("packet", "wire"), SPEC_VECTORS)
def test_encode_spec_vectors(packet: Packet, wire: list[str | bytes]) -> None:
    assert encode(packet) == wire


@pytest.mark.parametrize(("packet", "wire"), SPEC_VECTORS)
def test_decode_spec_vectors(packet: Packet, wire: list[str | bytes]) -> None:
    decoder = Decoder()
    results = [decoder.feed(message) for message in wire]
    assert results[:-1] == [None] * (len(wire) - 1)
    assert results[-1] == packet
    assert not decoder.reconstructing


def test_encode_keeps_non_ascii_and_is_compact() -> None:
    assert encode(Packet(T.EVENT, data=["é", {"a": [1, True, None]}])) == [
        '2["é",{"a":[1,true,null]}]'
    ]


def test_encode_refuses_nan() -> None:
    with pytest.raises(ValueError, match="Out of range"):
        encode(Packet(T.EVENT, data=["x", float("nan")]))


def test_decode_connect_payload_and_namespace_without_comma() -> None:
    assert Decoder().feed('0/custom,{"token":"abc"}') == Packet(
        T.CONNECT, "/custom", {"token": "abc"}
    )
    # The public test suite sends "0/random" (no comma) and expects that namespace back.
    assert Decoder().feed("0/random") == Packet(T.CONNECT, "/random")


def test_decode_ack_with_empty_array() -> None:
    assert Decoder().feed("3456[]") == Packet(T.ACK, data=[], id=456)


def test_decode_binary_ack_from_suite() -> None:
    decoder = Decoder()
    assert (
        decoder.feed('62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]') is None
    )
    assert decoder.feed(b"\x01\x02\x03") is None
    assert decoder.feed(b"\x04\x05\x06") == Packet(
        T.ACK, data=[b"\x01\x02\x03", b"\x04\x05\x06"], id=789
    )


def test_binary_packet_with_zero_attachments_is_complete_at_once() -> None:
    assert Decoder().feed('50-["x"]') == Packet(T.EVENT, data=["x"])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",  # unknown packet type
        "7",
        "2{}",  # EVENT payload not an array
        "2[]",  # EVENT payload empty
        "2",  # EVENT without payload
        "2[1]",  # event name not a string
        '2["connect"]',  # reserved names cannot be sent by a client
        '2["disconnecting"]',
        '2abc["message-with-ack",1]',  # invalid ack id
        "3[]",  # ACK without id
        "31",  # ACK without payload
        '31"x"',  # ACK payload not an array
        "0[]",  # CONNECT payload not an object
        '1{"a":1}',  # DISCONNECT with payload
        "4[]",  # CONNECT_ERROR payload neither object nor string
        '2["x",NaN]',
        '2["x",Infinity]',
        '2["x",-Infinity]',
        '2["x",',  # truncated JSON
        '5-["x"]',  # missing attachment count
        '5a-["x"]',
        '5¹-["x"]',  # a unicode digit is not a count
        '51["x"]',  # no dash
        '511-["x"]',  # over the default 10 attachments
        "2" + "1" * 17 + '["x"]',  # ack id over 16 digits
        '2["x",' + "[" * 40 + "]" * 40 + "]",  # deeper than 32
    ],
)
def test_decode_refuses(text: str) -> None:
    with pytest.raises(SocketIOPacketError):
        Decoder().feed(text)


def test_limits_are_configurable() -> None:
    deep = '2["x",' + "[" * 40 + "]" * 40 + "]"
    assert Decoder(DecoderLimits(max_json_depth=64)).feed(deep) is not None
    with pytest.raises(SocketIOPacketError):
        Decoder(DecoderLimits(max_attachments=1)).feed('52-["x"]')
    with pytest.raises(SocketIOPacketError):
        Decoder(DecoderLimits(max_ack_id_digits=2)).feed('2123["x"]')


def test_depth_at_limit_is_accepted() -> None:
    # The payload array itself is depth 1.
    at_limit = '2["x",' + "[" * 31 + "]" * 31 + "]"
    assert Decoder().feed(at_limit) is not None


def test_very_deep_json_is_a_parse_error_not_a_crash() -> None:
    with pytest.raises(SocketIOPacketError):
        Decoder().feed('2["x",' + "[" * 100_000 + "]" * 100_000 + "]")


@pytest.mark.parametrize(
    "placeholder",
    [
        '{"_placeholder":true,"num":1}',  # out of range
        '{"_placeholder":true,"num":-1}',
        '{"_placeholder":true,"num":"0"}',
        '{"_placeholder":true,"num":true}',
        '{"_placeholder":true,"num":0.5}',
        '{"_placeholder":true}',
    ],
)
def test_bad_placeholder(placeholder: str) -> None:
    decoder = Decoder()
    assert decoder.feed(f'51-["x",{placeholder}]') is None
    with pytest.raises(SocketIOPacketError):
        decoder.feed(b"\x00")


def test_text_while_reconstructing_is_refused() -> None:
    decoder = Decoder()
    decoder.feed('51-["x",{"_placeholder":true,"num":0}]')
    with pytest.raises(SocketIOPacketError):
        decoder.feed('2["y"]')


def test_binary_without_announcement_is_refused() -> None:
    with pytest.raises(SocketIOPacketError):
        Decoder().feed(b"\x01")


def test_decoder_resumes_after_a_complete_binary_packet() -> None:
    decoder = Decoder()
    decoder.feed('51-/a,7["x",{"_placeholder":true,"num":0}]')
    assert decoder.feed(b"ab") == Packet(T.EVENT, "/a", ["x", b"ab"], 7)
    assert decoder.feed('2["y"]') == Packet(T.EVENT, data=["y"])


def test_binary_helpers_roundtrip_nested() -> None:
    data: Any = {"a": [b"1", {"b": bytearray(b"2")}], "c": (memoryview(b"3"),), "d": "text"}
    assert has_binary(data)
    assert not has_binary({"a": ["b", 1, None]})
    stripped, attachments = deconstruct(data)
    assert attachments == [b"1", b"2", b"3"]
    assert not has_binary(stripped)
    assert reconstruct(stripped, attachments) == {
        "a": [b"1", {"b": b"2"}],
        "c": [b"3"],
        "d": "text",
    }


@pytest.mark.timeout(10)
@pytest.mark.parametrize("with_bytes", [False, True])
def test_circular_data_is_refused_not_walked_forever(with_bytes: bool) -> None:
    cycle: list[Any] = [b"\x01"] if with_bytes else [1]
    cycle.append({"again": cycle})
    with pytest.raises(EncodeError, match=r"[Cc]ircular"):
        encode(Packet(PacketType.EVENT, "/", ["e", cycle]))
    assert has_binary(cycle) is with_bytes
