"""The ``@socket.io/redis-streams-adapter`` 0.3 wire: stream entries, pub/sub messages, sessions.

Pure: no I/O. Every byte follows the Node adapter (``dist/adapter.js``) and the
``ClusterAdapter`` of ``socket.io-adapter`` 2.5 it extends, so Python and Node
nodes share one cluster:

* what must reach every node in order (broadcasts without acks, sockets
  join/leave, disconnect sockets) is a stream entry, a hash of strings
  ``{uid, nsp, type, data}``: ``data`` is JSON, or base64 msgpack when it holds
  binary (unless ``only_plaintext``);
* ephemeral requests (broadcast with acks, server-side emit, fetch sockets)
  are msgpack maps ``{type, data, uid, nsp}`` published on the namespace's
  public channel, and responses the same on the requester's private channel;
* a session kept for connection state recovery is base64 msgpack of
  ``{sid, pid, rooms, data}`` (ours adds ``offset``, which Node ignores).

msgpack as ``@msgpack/msgpack`` 2.8 writes it (bin for binary, smallest
integers, float64), which the classic wire's :func:`~realtime.adapters.redis_wire.pack` also is.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from realtime import jsoncodec
from realtime.adapters.base import BroadcastOptions, SocketId
from realtime.adapters.recovery import SessionRecord
from realtime.adapters.redis_wire import (
    WireDecodeError,
    flags_of,
    options_from,
    pack,
    raw_opts,
    unpack,
)
from realtime.socketio.packets import Packet, PacketType, dumps

DEFAULT_STREAM_NAME = "socket.io"
DEFAULT_CHANNEL_PREFIX = "socket.io"
DEFAULT_SESSION_KEY_PREFIX = "sio:session:"

#: A stream entry id, as ``restoreSession`` accepts an offset.
OFFSET_RE = re.compile(r"[0-9]+-[0-9]+")  # fullmatch: no newline slips past $


class MessageType(enum.IntEnum):
    """``ClusterAdapter``'s message types (``socket.io-adapter`` 2.5)."""

    INITIAL_HEARTBEAT = 1
    HEARTBEAT = 2
    BROADCAST = 3
    SOCKETS_JOIN = 4
    SOCKETS_LEAVE = 5
    DISCONNECT_SOCKETS = 6
    FETCH_SOCKETS = 7
    FETCH_SOCKETS_RESPONSE = 8
    SERVER_SIDE_EMIT = 9
    SERVER_SIDE_EMIT_RESPONSE = 10
    BROADCAST_CLIENT_COUNT = 11
    BROADCAST_ACK = 12
    ADAPTER_CLOSE = 13


#: The types whose ``data`` may hold binary (base64 msgpack in a stream entry).
_MAY_CONTAIN_BINARY = frozenset(
    {
        MessageType.BROADCAST,
        MessageType.FETCH_SOCKETS_RESPONSE,
        MessageType.SERVER_SIDE_EMIT,
        MessageType.SERVER_SIDE_EMIT_RESPONSE,
        MessageType.BROADCAST_ACK,
    }
)


# -- names ---------------------------------------------------------------------------------


def hash_code(text: str) -> int:
    """Java's ``String.hashCode`` on UTF-16 code units, as the adapter's ``hashCode`` (int32)."""
    units = text.encode("utf-16-le")
    value = 0
    for i in range(0, len(units), 2):
        value = (value * 31 + int.from_bytes(units[i : i + 2], "little")) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def stream_name(namespace: str, name: str, count: int) -> str:
    """The stream of a namespace's entries (routed by hash when ``count`` > 1)."""
    if count == 1:
        return name
    h = hash_code(namespace)
    index = abs(h) % count * (-1 if h < 0 else 1)  # JavaScript's %: the dividend's sign
    return f"{name}-{index}"


def stream_names(name: str, count: int) -> list[str]:
    """Every stream a node reads (one reader each)."""
    return [name] if count == 1 else [f"{name}-{i}" for i in range(count)]


@dataclass(frozen=True, slots=True)
class Channels:
    """A namespace's pub/sub channels under ``prefix`` (Node's ``channelPrefix``)."""

    prefix: str
    namespace: str

    @property
    def public(self) -> str:
        return f"{self.prefix}#{self.namespace}#"

    def private(self, uid: str) -> str:
        return f"{self.prefix}#{self.namespace}#{uid}#"


def session_key(prefix: str, pid: str) -> str:
    return prefix + pid


def owner_key(prefix: str, pid: str) -> str:
    """The companion key naming which node may write a session: it hashes to the same
    Redis Cluster slot as :func:`session_key` (the hash tag is the whole session key)."""
    return "{" + session_key(prefix, pid) + "}owner"


# -- offsets -------------------------------------------------------------------------------


def parse_offset(offset: str) -> tuple[int, int]:
    if not OFFSET_RE.fullmatch(offset):
        raise WireDecodeError(f"not a stream entry id: {offset!r}")
    ms, seq = offset.split("-")
    return int(ms), int(seq)


def next_offset(offset: str) -> str:
    """The smallest id after ``offset`` (exclusive ranges, as Node computes them)."""
    ms, seq = parse_offset(offset)
    return f"{ms}-{seq + 1}"


# -- binary --------------------------------------------------------------------------------


def has_binary(value: Any) -> bool:
    if isinstance(value, bytes | bytearray | memoryview):
        return True
    if isinstance(value, list | tuple):
        return any(has_binary(v) for v in value)
    if isinstance(value, dict):
        return any(has_binary(v) for v in value.values())
    return False


def _json_buffers(value: Any) -> Any:
    """Binary as ``JSON.stringify`` writes a Node Buffer (``only_plaintext``)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "Buffer", "data": list(bytes(value))}
    if isinstance(value, list | tuple):
        return [_json_buffers(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_buffers(v) for k, v in value.items()}
    return value


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded cluster message: stream entry, request or response."""

    uid: str | None
    nsp: str | None
    type: int
    data: Any


def encode_entry(
    uid: str, nsp: str, kind: MessageType, data: Any, *, only_plaintext: bool = False
) -> dict[str, str]:
    """The hash of one stream entry (``RedisStreamsAdapter#encode``), fields in Node's order."""
    entry = {"uid": uid, "nsp": nsp, "type": str(int(kind))}
    if data:
        if not only_plaintext and kind in _MAY_CONTAIN_BINARY and has_binary(data):
            entry["data"] = base64.b64encode(pack(data)).decode()
        else:
            entry["data"] = dumps(_json_buffers(data) if only_plaintext else data)
    return entry


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def decode_entry(fields: Mapping[Any, Any]) -> Message:
    """A stream entry's hash (bytes or str keys); :class:`WireDecodeError` if malformed."""
    get = {_text(k): v for k, v in fields.items()}
    kind = _text(get.get("type"))
    try:
        number = int(kind) if kind is not None else 0
    except ValueError:
        raise WireDecodeError(f"bad entry type {kind!r}") from None
    raw = get.get("data")
    data: Any = None
    if raw:
        raw_bytes = raw if isinstance(raw, bytes) else str(raw).encode()
        if raw_bytes[:1] == b"{":
            try:
                data = jsoncodec.loads_bytes(raw_bytes, json.loads)
            except ValueError as exc:
                raise WireDecodeError(f"malformed JSON entry: {exc}") from None
        else:
            try:
                data = unpack(base64.b64decode(raw_bytes, validate=True))
            except binascii.Error as exc:
                raise WireDecodeError(f"malformed base64 entry: {exc}") from None
    return Message(_text(get.get("uid")), _text(get.get("nsp")), number, data)


def encode_message(uid: str, nsp: str, kind: MessageType, data: Any) -> bytes:
    """A pub/sub request or response: msgpack ``{type, data, uid, nsp}`` as Node builds it."""
    return pack({"type": int(kind), "data": data, "uid": uid, "nsp": nsp})


def decode_message(raw: bytes) -> Message:
    message = unpack(raw)
    if not isinstance(message, dict) or not isinstance(message.get("type"), int):
        raise WireDecodeError("a cluster message is a map with an integer type")
    uid, nsp = message.get("uid"), message.get("nsp")
    return Message(
        uid if isinstance(uid, str) else None,
        nsp if isinstance(nsp, str) else None,
        message["type"],
        message.get("data"),
    )


def is_ephemeral(kind: MessageType, data: Mapping[str, Any]) -> bool:
    """Sent over pub/sub rather than the stream (Node's ``isEphemeral``)."""
    if kind is MessageType.BROADCAST:
        return "requestId" in data
    return kind in (MessageType.SERVER_SIDE_EMIT, MessageType.FETCH_SOCKETS)


# -- message bodies ------------------------------------------------------------------------


def packet_object(packet: Packet) -> dict[str, Any]:
    """The packet as Node's broadcast publishes it: ``{type, data}`` (``nsp`` is set later)."""
    return {"type": int(PacketType.EVENT), "data": packet.data}


def encode_options(opts: BroadcastOptions, timeout: float | None = None) -> dict[str, Any]:
    return raw_opts(opts, flags_of(opts, timeout))


def broadcast_data(packet: Packet, opts: BroadcastOptions) -> dict[str, Any]:
    return {"packet": packet_object(packet), "opts": encode_options(opts)}


def broadcast_with_ack_data(
    packet: Packet, request_id: str, opts: BroadcastOptions, timeout: float
) -> dict[str, Any]:
    return {
        "packet": packet_object(packet),
        "requestId": request_id,
        "opts": encode_options(opts, timeout),
    }


def sockets_join_data(opts: BroadcastOptions, rooms: Iterable[str]) -> dict[str, Any]:
    return {"opts": encode_options(opts), "rooms": list(rooms)}


def disconnect_data(opts: BroadcastOptions, *, close: bool) -> dict[str, Any]:
    return {"opts": encode_options(opts), "close": close}


def fetch_sockets_data(opts: BroadcastOptions, request_id: str) -> dict[str, Any]:
    return {"opts": encode_options(opts), "requestId": request_id}


def server_side_emit_data(packet: list[Any], request_id: str | None = None) -> dict[str, Any]:
    if request_id is None:
        return {"packet": packet}
    return {"requestId": request_id, "packet": packet}


def fetch_sockets_response_data(request_id: str, sockets: list[dict[str, Any]]) -> dict[str, Any]:
    return {"requestId": request_id, "sockets": sockets}


def server_side_emit_response_data(request_id: str, value: Any) -> dict[str, Any]:
    return {"requestId": request_id, "packet": value}


def client_count_data(request_id: str, count: int) -> dict[str, Any]:
    return {"requestId": request_id, "clientCount": count}


def broadcast_ack_data(request_id: str, value: Any) -> dict[str, Any]:
    return {"requestId": request_id, "packet": value}


@dataclass(frozen=True, slots=True)
class Broadcast:
    """The packet and selector of a BROADCAST message; ``request_id`` when it wants acks."""

    packet: Packet
    opts: BroadcastOptions
    request_id: str | None
    flags: dict[str, Any]


def decode_broadcast(message: Message) -> Broadcast:
    data = message.data
    if not isinstance(data, dict):
        raise WireDecodeError("a broadcast's data is an object")
    raw = data.get("packet")
    if not isinstance(raw, dict):
        raise WireDecodeError("a broadcast carries a packet object")
    args = raw.get("data")
    if not isinstance(args, list) or not args or not isinstance(args[0], str):
        raise WireDecodeError("packet data must be [event, ...args]")
    nsp = message.nsp if message.nsp is not None else raw.get("nsp", "/")
    opts, flags = options_from(data.get("opts"))
    request_id = data.get("requestId")
    return Broadcast(
        Packet(PacketType.EVENT, str(nsp), list(args)),
        opts,
        str(request_id) if request_id is not None else None,
        flags,
    )


def room_list(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WireDecodeError("rooms must be an array")
    return [str(room) for room in value]


# -- sessions ------------------------------------------------------------------------------


def encode_session(record: SessionRecord) -> str:
    """base64 msgpack of the record, as Node's ``persistSession`` writes it (plus ``offset``)."""
    body: dict[str, Any] = {
        "sid": record.sid,
        "pid": record.pid,
        "rooms": list(record.rooms),
        "data": record.data,
    }
    if record.offset is not None:
        body["offset"] = record.offset
    return base64.b64encode(pack(body)).decode()


def decode_session(raw: bytes | str) -> SessionRecord:
    try:
        body = unpack(base64.b64decode(raw, validate=True))
    except binascii.Error as exc:
        raise WireDecodeError(f"malformed session: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("sid"), str):
        raise WireDecodeError("a session is a map with a sid")
    data = body.get("data")
    offset = body.get("offset")
    return SessionRecord(
        sid=SocketId(body["sid"]),
        pid=str(body.get("pid")),
        rooms=room_list(body.get("rooms")),
        data=data if isinstance(data, dict) else {},
        offset=offset if isinstance(offset, str) and OFFSET_RE.fullmatch(offset) else None,
    )
