"""Property-based tests of both codecs.

Every value the encoders accept comes back unchanged from the decoders, and no
input, random or a mutation of a valid packet, makes a decoder raise anything
but its documented error class (:class:`PacketDecodeError` for Engine.IO,
:class:`SocketIOPacketError` for Socket.IO): the server turns exactly those
into "400" or "parse error", so anything else would escape as a crash.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from realtime.exceptions import PacketDecodeError, SocketIOPacketError
from realtime.socketio import packets as sio
from realtime.socketio.packets import RESERVED_EVENTS, Decoder, DecoderLimits, encode

PROPERTIES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- Engine.IO ----------------------------------------------------------------------

TEXT_TYPES = [t for t in PacketType]
# The separator is the one character a polling text packet cannot carry, and
# text travels as UTF-8, which has no form for a lone surrogate.
packet_text = st.text(st.characters(codec="utf-8", exclude_characters=SEPARATOR), max_size=40)
text_packets = st.builds(Packet, st.sampled_from(TEXT_TYPES), packet_text)
binary_packets = st.builds(Packet, st.just(PacketType.MESSAGE), st.binary(max_size=40))
engine_packets = st.one_of(text_packets, binary_packets)


@PROPERTIES
@given(st.lists(engine_packets, min_size=1, max_size=8))
def test_engine_payload_round_trips(packets: list[Packet]) -> None:
    assert decode_payload(encode_packets(packets).encode("utf-8")) == packets


@PROPERTIES
@given(st.lists(st.one_of(packet_text, st.binary(max_size=40)), min_size=1, max_size=8))
def test_engine_out_packets_round_trip_on_both_transports(messages: list[str | bytes]) -> None:
    out = [OutPacket.message(m) for m in messages]
    expected = [Packet(PacketType.MESSAGE, m) for m in messages]
    assert decode_payload(encode_payload(out).encode("utf-8")) == expected
    assert [decode_frame(p.ws) for p in out] == expected


@PROPERTIES
@given(st.binary(max_size=200))
def test_engine_random_body_raises_only_decode_error(body: bytes) -> None:
    with contextlib.suppress(PacketDecodeError):
        decode_payload(body)


@PROPERTIES
@given(st.text(max_size=100))
def test_engine_random_text_raises_only_decode_error(text: str) -> None:
    with contextlib.suppress(PacketDecodeError):
        decode_text(text)


def mutate(data: st.DataObject, text: str, alphabet: str) -> str:
    """Apply a few random edits (insert, delete, replace) to ``text``."""
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        at = data.draw(st.integers(0, len(text)))
        char = data.draw(st.sampled_from(alphabet) | st.characters())
        if op == "insert":
            text = text[:at] + char + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + char + text[at + 1 :]
    return text


@PROPERTIES
@given(st.lists(engine_packets, min_size=1, max_size=5), st.data())
def test_engine_mutated_payload_raises_only_decode_error(
    packets: list[Packet], data: st.DataObject
) -> None:
    payload = mutate(data, encode_packets(packets), "0123456789b\x1e=+/")
    with contextlib.suppress(PacketDecodeError):
        decode_payload(payload.encode("utf-8", "surrogatepass"))


# -- Socket.IO ------------------------------------------------------------------------

# Any code point, lone surrogates included: a client can send "\ud800" in JSON.
sio_text = st.text(st.characters(), max_size=20)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    sio_text,
)
# "_placeholder" is the key binary attachments are marked with; data that uses
# it itself is ambiguous on the wire in every Socket.IO implementation.
keys = st.text(st.characters(), max_size=10).filter(lambda k: k != "_placeholder")


def json_values(with_binary: bool) -> st.SearchStrategy[Any]:
    leaves = st.one_of(json_scalars, st.binary(max_size=20)) if with_binary else json_scalars
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )


namespaces = st.one_of(
    st.just("/"),
    # Outside JSON nothing is escaped: a namespace from the wire is valid UTF-8.
    st.text(
        st.characters(codec="utf-8", exclude_characters=","),
        min_size=1,
        max_size=30,
    ).map(lambda s: "/" + s),
)
ack_ids = st.integers(min_value=0, max_value=sio.MAX_ACK_ID)
event_names = sio_text.filter(lambda name: name not in RESERVED_EVENTS)
values = json_values(with_binary=True)

T = sio.PacketType
sio_packets = st.one_of(
    st.builds(
        sio.Packet,
        st.just(T.EVENT),
        namespaces,
        st.builds(lambda name, args: [name, *args], event_names, st.lists(values, max_size=4)),
        st.none() | ack_ids,
    ),
    st.builds(sio.Packet, st.just(T.ACK), namespaces, st.lists(values, max_size=4), ack_ids),
    st.builds(
        sio.Packet,
        st.just(T.CONNECT),
        namespaces,
        st.none() | st.dictionaries(keys, json_values(with_binary=False), max_size=4),
    ),
    st.builds(sio.Packet, st.just(T.DISCONNECT), namespaces),
    st.builds(
        sio.Packet,
        st.just(T.CONNECT_ERROR),
        namespaces,
        st.text(max_size=20) | st.dictionaries(keys, json_values(with_binary=False), max_size=4),
    ),
)


def feed_all(decoder: Decoder, parts: list[str | bytes]) -> sio.Packet | None:
    result = None
    for part in parts:
        result = decoder.feed(part)
    return result


@PROPERTIES
@given(sio_packets)
def test_socketio_packet_round_trips(packet: sio.Packet) -> None:
    parts = encode(packet)
    for part in parts:
        if isinstance(part, str):
            part.encode("utf-8")  # lone surrogates leave escaped, as JSON.stringify does
    # Limits are tested on their own; here every encodable packet must come back.
    decoder = Decoder(DecoderLimits(max_attachments=len(parts)))
    for part in parts[:-1]:
        assert decoder.feed(part) is None
    assert decoder.feed(parts[-1]) == packet
    assert not decoder.reconstructing


@PROPERTIES
@given(st.lists(st.one_of(st.text(max_size=60), st.binary(max_size=20)), max_size=5))
def test_socketio_random_messages_raise_only_packet_error(messages: list[str | bytes]) -> None:
    decoder = Decoder()
    for message in messages:
        try:
            decoder.feed(message)
        except SocketIOPacketError:
            decoder = Decoder()  # the server closes the connection: start afresh


@PROPERTIES
@given(sio_packets, st.data())
def test_socketio_mutated_packet_raises_only_packet_error(
    packet: sio.Packet, data: st.DataObject
) -> None:
    text, *attachments = encode(packet)
    assert isinstance(text, str)
    mutated = mutate(data, text, '0123456789-/,[]{}":_placeholdernum')
    # Sometimes drop or add an attachment as well.
    count = len(attachments) + data.draw(st.sampled_from([-1, 0, 0, 1]))
    frames: list[str | bytes] = [mutated, *([b"x"] * max(0, count))]
    with contextlib.suppress(SocketIOPacketError):
        feed_all(Decoder(), frames)


@PROPERTIES
@given(
    st.integers(0, 12),
    st.lists(st.one_of(st.integers(-3, 15), json_values(with_binary=False)), max_size=4),
    st.integers(0, 12),
)
def test_socketio_random_placeholders_raise_only_packet_error(
    announced: int, nums: list[Any], sent: int
) -> None:
    placeholders = [{"_placeholder": True, "num": num} for num in nums]
    frames: list[str | bytes] = [f"5{announced}-" + sio.dumps(["e", *placeholders])]
    frames += [b"a"] * sent
    with contextlib.suppress(SocketIOPacketError):
        feed_all(Decoder(), frames)
