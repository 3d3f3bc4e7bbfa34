"""Engine.IO v4 packets and polling payloads: pure encode/decode, no I/O.

Spec: https://github.com/socketio/engine.io-protocol (v4), "Packet encoding".
A WebSocket frame carries one packet: text frames are ``<type><data>``, binary
frames are a message packet's raw bytes. A polling payload joins packets with
the record separator ``\\x1e``; binary packets travel as ``b<base64>``.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from realtime.exceptions import PacketDecodeError

SEPARATOR = "\x1e"


class PacketType(enum.IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


# Precomputed so decoding a text packet is one dict lookup, not int() + enum().
_TYPE_BY_CHAR = {str(int(t)): t for t in PacketType}


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded Engine.IO packet. ``data`` is bytes only for binary messages."""

    type: PacketType
    data: str | bytes = ""


class OutPacket:
    """A packet encoded once for both transports, shareable between sessions.

    A broadcast builds one ``OutPacket`` and hands the same instance to every
    recipient, so the per-recipient cost is an append to a queue. The polling
    form of a binary packet (``b`` + base64) is computed on first use and kept.
    """

    __slots__ = ("_polling", "size", "ws")

    def __init__(self, ws: str | bytes) -> None:
        self.ws = ws
        self.size = len(ws)
        self._polling: str | None = ws if isinstance(ws, str) else None

    @classmethod
    def message(cls, data: str | bytes) -> OutPacket:
        if isinstance(data, str):
            return cls("4" + data)
        return cls(bytes(data))

    @classmethod
    def of(cls, type: PacketType, data: str = "") -> OutPacket:
        return cls(f"{int(type)}{data}")

    @property
    def polling(self) -> str:
        if self._polling is None:
            assert isinstance(self.ws, bytes)
            self._polling = "b" + base64.b64encode(self.ws).decode("ascii")
        return self._polling

    def __repr__(self) -> str:
        return f"OutPacket({self.ws!r})"


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8, as Node's ``Buffer.byteLength`` counts them.

    ASCII (most traffic) is counted without encoding. A lone surrogate counts
    three bytes, as the replacement character Node writes in its place.
    """
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def message_size(packet: OutPacket) -> int | None:
    """Bytes of an outgoing message packet's data (its type character not included),
    or ``None`` for a packet that carries none (not a message, or an empty text).

    What the reference Admin UI server counts as ``bytesOut`` for each packet
    its engine creates: ``Buffer.byteLength(packet.data)``, for packets with data.
    """
    ws = packet.ws
    if isinstance(ws, bytes):
        return len(ws)  # a binary packet is always a message; empty, it still counts
    if len(ws) < 2 or ws[0] != "4":
        return None
    return utf8_size(ws) - 1


NOOP = OutPacket.of(PacketType.NOOP)
PING = OutPacket.of(PacketType.PING)
PONG_PROBE = OutPacket.of(PacketType.PONG, "probe")
CLOSE = OutPacket.of(PacketType.CLOSE)


def decode_text(text: str) -> Packet:
    """Decode one text packet (a WebSocket text frame or one polling record)."""
    if not text:
        raise PacketDecodeError("empty packet")
    ptype = _TYPE_BY_CHAR.get(text[0])
    if ptype is None:
        raise PacketDecodeError(f"unknown packet type {text[0]!r}")
    return Packet(ptype, text[1:])


def decode_frame(frame: str | bytes) -> Packet:
    """Decode a WebSocket frame: a binary frame is a message packet's raw bytes."""
    if isinstance(frame, str):
        return decode_text(frame)
    return Packet(PacketType.MESSAGE, frame)


def decode_payload(body: bytes) -> list[Packet]:
    """Decode a polling request body into its packets.

    Raises :class:`PacketDecodeError` for invalid UTF-8, an unknown type, or
    bad base64, so the caller answers 400 and closes the session.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PacketDecodeError("payload is not valid UTF-8") from exc
    packets: list[Packet] = []
    for record in text.split(SEPARATOR):
        if record[:1] == "b":
            try:
                data = base64.b64decode(record[1:], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise PacketDecodeError("invalid base64 in binary packet") from exc
            packets.append(Packet(PacketType.MESSAGE, data))
        else:
            packets.append(decode_text(record))
    return packets


def encode_payload(packets: Iterable[OutPacket]) -> str:
    """Join packets for a polling response (binary as ``b`` + base64)."""
    return SEPARATOR.join(p.polling for p in packets)


def encode_packets(packets: Sequence[Packet]) -> str:
    """Encode decoded packets as a polling payload (handy for clients and tests)."""
    out = []
    for p in packets:
        if isinstance(p.data, bytes):
            out.append("b" + base64.b64encode(p.data).decode("ascii"))
        else:
            out.append(f"{int(p.type)}{p.data}")
    return SEPARATOR.join(out)
