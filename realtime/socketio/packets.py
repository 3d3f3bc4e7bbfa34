"""Socket.IO v5 packets: pure encoder and incremental decoder, no I/O.

Spec: socket.io-protocol v5, "Packet encoding"; the parsing rules follow the
reference parser (socket.io-parser) so that what it refuses, we refuse::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

Each packet travels as one Engine.IO message; binary attachments follow as
separate binary messages. The decoder is fed those messages one by one and
returns a packet once it is complete.
"""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from typing import Any, NoReturn

from realtime import jsoncodec
from realtime.exceptions import EncodeError, SocketIOPacketError
from realtime.socketio import binary

MAIN_NAMESPACE = "/"

#: Event names with a meaning of their own; the application may not emit them and
#: a client may not send them (socket.io-parser refuses them the same way).
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)

#: The largest integer a JavaScript number holds exactly (``Number.MAX_SAFE_INTEGER``).
#: A larger ack id could not be answered by a JavaScript peer, so it is refused.
MAX_ACK_ID = 2**53 - 1


class PacketType(enum.IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


_TYPE_BY_CHAR = {str(int(t)): t for t in PacketType}
_BINARY_TYPES = (PacketType.BINARY_EVENT, PacketType.BINARY_ACK)


@dataclass(frozen=True, slots=True)
class Packet:
    """One Socket.IO packet. ``data`` holds bytes objects in place (no placeholders).

    Encoding picks BINARY_EVENT/BINARY_ACK by itself when ``data`` holds bytes,
    so callers build EVENT and ACK packets only.
    """

    type: PacketType
    namespace: str = MAIN_NAMESPACE
    data: Any = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class DecoderLimits:
    """Bounds on what a peer may send; breaking one is a parse error.

    Parameters
    ----------
    max_attachments
        Binary attachments one packet may announce (as socket.io-parser's
        ``maxAttachments``); each is held in memory until the packet is whole.
    max_ack_id_digits
        16, because a JavaScript peer's ids are numbers, exact up to 2**53 - 1
        (16 digits); ids above :data:`MAX_ACK_ID` are refused whatever this is.
    max_json_depth
        Nesting of arrays and objects in a payload; deeper values are refused
        before the application (or a recursive encoder) walks them.
    max_namespace_length
        Characters in a namespace name. A longer name is refused before it is
        looked up, logged or echoed back in a CONNECT_ERROR.
    """

    max_attachments: int = 10
    max_ack_id_digits: int = 16
    max_json_depth: int = 32
    max_namespace_length: int = 256


def dumps(data: Any) -> str:
    """JSON as JavaScript's ``JSON.stringify`` writes it: compact, non-ASCII kept.

    NaN and Infinity are refused with :class:`~realtime.exceptions.EncodeError`
    (a ``ValueError``): JSON has no such values, and ``JSON.parse`` in the peer
    would refuse the whole packet. Circular data is refused the same way.
    """
    text = jsoncodec.compact(data)
    return text if text is not None else _stdlib_dumps(data)


def _stdlib_dumps(data: Any) -> str:
    try:
        text = jsoncodec.stdlib_encode(data)
    except ValueError as exc:
        raise EncodeError(f"data cannot be sent as JSON: {exc}") from None
    if text.isascii():  # O(1) in CPython: the common case pays nothing more
        return text
    # A lone surrogate (a client may send "\ud800": JavaScript strings are
    # UTF-16) has no UTF-8 form and would break the write to every recipient.
    # Escape it, as JavaScript's JSON.stringify does.
    return _SURROGATE.sub(_escape_surrogate, text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def encode(packet: Packet) -> list[str | bytes]:
    """Encode a packet as ``[text, *attachments]``, one Engine.IO message each."""
    ptype = packet.type
    data = packet.data
    attachments: list[bytes] = []
    text = None
    if data is not None:
        # The compiled codec refuses bytes, so data it writes has none: the walk
        # that looks for binary data is only needed when it gives up.
        text = jsoncodec.compact(data)
        if text is None:
            if ptype in (PacketType.EVENT, PacketType.ACK) and binary.has_binary(data):
                data, attachments = binary.deconstruct(data)
                ptype = (
                    PacketType.BINARY_EVENT if ptype is PacketType.EVENT else PacketType.BINARY_ACK
                )
                text = dumps(data)
            elif ptype in _BINARY_TYPES:
                data, attachments = binary.deconstruct(data)
                text = dumps(data)
            else:
                text = _stdlib_dumps(data)
    parts = [str(int(ptype))]
    if ptype in _BINARY_TYPES:
        parts.append(f"{len(attachments)}-")
    if packet.namespace != MAIN_NAMESPACE:
        parts.append(packet.namespace + ",")
    if packet.id is not None:
        parts.append(str(packet.id))
    if text is not None:
        parts.append(text)
    return ["".join(parts), *attachments]


def _fail(message: str) -> NoReturn:
    raise SocketIOPacketError(message)


def _refuse_constant(name: str) -> NoReturn:
    _fail(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    """Refuse numbers a double cannot hold (``1e400`` would become infinity).

    No JavaScript peer sends one (``JSON.stringify`` writes ``null`` for
    infinities), and the value could not be sent back as JSON.
    """
    value = float(text)
    if math.isinf(value):
        _fail("number out of range")
    return value


def _json_depth(value: Any) -> int:
    """Depth of nested arrays/objects, iteratively (a deep value must not blow the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((x, depth + 1) for x in item)
        elif isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((x, depth + 1) for x in item.values())
    return deepest


def _stdlib_loads(text: str) -> Any:
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_parse_float)


def _parse_json(text: str, limits: DecoderLimits) -> Any:
    try:
        value = jsoncodec.loads(text, _stdlib_loads)
    except (ValueError, RecursionError) as exc:
        raise SocketIOPacketError(f"invalid JSON payload: {exc}") from None
    # Counting brackets is cheap and bounds the depth from above, so the walk is
    # only needed for payloads with many of them.
    if (
        text.count("[") + text.count("{") > limits.max_json_depth
        and _json_depth(value) > limits.max_json_depth
    ):
        _fail(f"JSON nesting deeper than {limits.max_json_depth}")
    return value


def _check_payload(ptype: PacketType, data: Any) -> None:
    """socket.io-parser's ``isPayloadValid``, stricter where the spec says MUST."""
    if ptype is PacketType.CONNECT:
        if data is not None and not isinstance(data, dict):
            _fail("CONNECT payload must be an object")
    elif ptype is PacketType.DISCONNECT:
        if data is not None:
            _fail("DISCONNECT takes no payload")
    elif ptype is PacketType.CONNECT_ERROR:
        if not isinstance(data, dict | str):
            _fail("CONNECT_ERROR payload must be an object or a string")
    elif ptype in (PacketType.EVENT, PacketType.BINARY_EVENT):
        # Spec: "The payload is mandatory and MUST be a non-empty array."
        if not isinstance(data, list) or not data:
            _fail("EVENT payload must be a non-empty array")
        if not isinstance(data[0], str):
            _fail("event name must be a string")
        if data[0] in RESERVED_EVENTS:
            _fail(f"reserved event name {data[0]!r}")
    elif not isinstance(data, list):  # ACK, BINARY_ACK
        _fail("ACK payload must be an array")


def parse_text(text: str, limits: DecoderLimits = DecoderLimits()) -> tuple[Packet, int]:
    """Parse one text packet; return it (placeholders still in) and its attachment count."""
    if not text:
        _fail("empty packet")
    ptype = _TYPE_BY_CHAR.get(text[0])
    if ptype is None:
        _fail(f"unknown packet type {text[0]!r}")
    end = len(text)
    i = 1
    attachments = 0
    if ptype in _BINARY_TYPES:
        dash = text.find("-", i)
        count = text[i:dash] if dash != -1 else ""
        if not count.isdigit() or not count.isascii() or len(count) > 4:
            _fail("illegal attachment count")
        attachments = int(count)
        if attachments > limits.max_attachments:
            _fail(f"more than {limits.max_attachments} attachments")
        i = dash + 1
    namespace = MAIN_NAMESPACE
    if i < end and text[i] == "/":
        comma = text.find(",", i)
        stop = comma if comma != -1 else end
        if stop - i > limits.max_namespace_length:
            _fail(f"namespace longer than {limits.max_namespace_length} characters")
        namespace = text[i:stop]
        i = stop + 1 if comma != -1 else end
    start = i
    while i < end and "0" <= text[i] <= "9":
        i += 1
    ack_id: int | None = None
    if i > start:
        if i - start > limits.max_ack_id_digits:
            _fail(f"ack id longer than {limits.max_ack_id_digits} digits")
        ack_id = int(text[start:i])
        if ack_id > MAX_ACK_ID:
            _fail("ack id above 2**53 - 1")
    data = _parse_json(text[i:], limits) if i < end else None
    _check_payload(ptype, data)
    if ptype in (PacketType.ACK, PacketType.BINARY_ACK) and ack_id is None:
        _fail("ACK without an id")
    return Packet(ptype, namespace, data, ack_id), attachments


class Decoder:
    """Turns Engine.IO messages into packets, reassembling binary attachments.

    ``feed`` returns a complete :class:`Packet` (with bytes in place of the
    placeholders), or ``None`` while attachments are still expected. Any
    violation raises :class:`SocketIOPacketError`; the caller closes the client.
    """

    __slots__ = ("_attachments", "_expected", "_pending", "limits")

    def __init__(self, limits: DecoderLimits | None = None) -> None:
        self.limits = limits or DecoderLimits()
        self._pending: Packet | None = None
        self._expected = 0
        self._attachments: list[bytes] = []

    @property
    def reconstructing(self) -> bool:
        return self._pending is not None

    def feed(self, message: str | bytes) -> Packet | None:
        if isinstance(message, str):
            if self._pending is not None:
                _fail("text packet while waiting for binary attachments")
            packet, count = parse_text(message, self.limits)
            if count == 0:
                if packet.type in _BINARY_TYPES:
                    return self._finish(packet, [])
                return packet
            self._pending, self._expected = packet, count
            return None
        if self._pending is None:
            _fail("binary message without a packet announcing it")
        self._attachments.append(bytes(message))
        if len(self._attachments) < self._expected:
            return None
        packet, attachments = self._pending, self._attachments
        self._pending, self._expected, self._attachments = None, 0, []
        return self._finish(packet, attachments)

    @staticmethod
    def _finish(packet: Packet, attachments: list[bytes]) -> Packet:
        data = binary.reconstruct(packet.data, attachments)
        # Binary packets are delivered as plain EVENT/ACK: whether bytes were
        # present is visible in the data, and handlers need not care.
        ptype = PacketType.EVENT if packet.type is PacketType.BINARY_EVENT else PacketType.ACK
        return Packet(ptype, packet.namespace, data, packet.id)
