"""The classic ``@socket.io/redis-adapter`` 8.x wire: channel names and message bodies.

Pure: no I/O. Every byte follows the Node adapter (``lib/index.ts``), so a
Python node and a Node node share one cluster. Broadcasts and the two messages
that may carry binary (a broadcast with acks and each client's ack) are
msgpack, as notepack.io writes it (binary as ``bin``, ``None`` as ``nil``);
every other request and response is JSON. A message starting with ``{`` is
JSON, anything else msgpack, as the Node adapter decides.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgpack

from realtime import jsoncodec
from realtime.adapters.base import BroadcastOptions
from realtime.exceptions import EncodeError, ProtocolError
from realtime.socketio.packets import MAIN_NAMESPACE, Packet, PacketType, dumps

#: The Node adapter's default ``key`` option.
DEFAULT_KEY = "socket.io"


class RequestType(enum.IntEnum):
    """Request types between nodes, as ``@socket.io/redis-adapter`` numbers them."""

    SOCKETS = 0
    ALL_ROOMS = 1
    REMOTE_JOIN = 2
    REMOTE_LEAVE = 3
    REMOTE_DISCONNECT = 4
    REMOTE_FETCH = 5
    SERVER_SIDE_EMIT = 6
    BROADCAST = 7
    BROADCAST_CLIENT_COUNT = 8
    BROADCAST_ACK = 9


class WireDecodeError(ProtocolError):
    """A message on a cluster channel that does not parse as the adapter protocol."""


@dataclass(frozen=True, slots=True)
class Channels:
    """The channel names of one namespace under one ``key``."""

    key: str
    namespace: str

    @property
    def broadcast(self) -> str:
        return f"{self.key}#{self.namespace}#"

    @property
    def pattern(self) -> str:
        """PSUBSCRIBE pattern: the broadcast channel and every per-room channel."""
        return self.broadcast + "*"

    def room(self, room: str) -> str:
        return f"{self.broadcast}{room}#"

    @property
    def request(self) -> str:
        return f"{self.key}-request#{self.namespace}#"

    @property
    def response(self) -> str:
        return f"{self.key}-response#{self.namespace}#"

    def specific_response(self, uid: str) -> str:
        return f"{self.response}{uid}#"

    def room_of(self, channel: str) -> str | None:
        """The room a broadcast channel targets (``""``: none), or ``None`` if not ours."""
        prefix = self.broadcast
        if not channel.startswith(prefix):
            return None
        return channel[len(prefix) : -1]  # as Node slices it: "" for the shared channel


# -- msgpack as notepack.io writes it --------------------------------------------------

_TIMESTAMP_MARKERS = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")


def _refuse(value: Any) -> Any:
    raise EncodeError(f"cannot send {type(value).__name__} to the cluster")


def pack(value: Any) -> bytes:
    """msgpack with notepack's choices: ``bytes`` as bin, ``str`` as str, ``None`` as nil."""
    try:
        return msgpack.packb(value, use_bin_type=True, default=_refuse)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot send to the cluster: {exc}") from None


def _js_date(ts: msgpack.Timestamp) -> str:
    """A notepack Date (timestamp ext -1) as a Node server would forward it: ``toJSON()``."""
    moment = datetime.fromtimestamp(ts.seconds, UTC)
    millis = ts.nanoseconds // 1_000_000
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def _dates_in_list(items: list[Any]) -> list[Any]:
    return [_js_date(v) if isinstance(v, msgpack.Timestamp) else v for v in items]


def _dates_in_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    return {k: _js_date(v) if isinstance(v, msgpack.Timestamp) else v for k, v in pairs}


def unpack(raw: bytes) -> Any:
    """Decode msgpack; Dates become the ISO strings a Node server would send its clients."""
    try:
        if any(marker in raw for marker in _TIMESTAMP_MARKERS):
            return msgpack.unpackb(
                raw,
                raw=False,
                strict_map_key=False,
                list_hook=_dates_in_list,
                object_pairs_hook=_dates_in_map,
            )
        return msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise WireDecodeError(f"malformed msgpack message: {exc}") from None


def to_json(value: Any) -> bytes:
    """JSON as ``JSON.stringify`` writes it (compact, non-ASCII kept)."""
    return dumps(value).encode()


def decode(raw: bytes) -> Any:
    """A request or response: JSON when it starts with ``{``, msgpack otherwise."""
    if raw[:1] == b"{":
        try:
            return jsoncodec.loads_bytes(raw, json.loads)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WireDecodeError(f"malformed JSON message: {exc}") from None
    return unpack(raw)


# -- broadcast ---------------------------------------------------------------------------


def flags_of(opts: BroadcastOptions, timeout: float | None = None) -> dict[str, Any]:
    """The ``flags`` object a Node server sends: only the flags that are set."""
    flags: dict[str, Any] = {}
    if opts.volatile:
        flags["volatile"] = True
    if timeout is not None:
        flags["timeout"] = round(timeout * 1000)
    return flags


def packet_object(packet: Packet) -> dict[str, Any]:
    """A socket.io-parser packet object as Node's broadcast carries it (no ack id)."""
    return {"type": int(PacketType.EVENT), "data": packet.data, "nsp": packet.namespace}


def raw_opts(opts: BroadcastOptions, flags: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "rooms": sorted(opts.rooms),
        "except": sorted(opts.except_rooms),
        "flags": dict(flags),
    }


def broadcast_channel(channels: Channels, opts: BroadcastOptions) -> str:
    """One room targeted: its own channel (peers without it skip decoding), else the shared one."""
    if len(opts.rooms) == 1:
        (room,) = opts.rooms
        return channels.room(room)
    return channels.broadcast


def encode_broadcast(uid: str, packet: Packet, opts: BroadcastOptions) -> bytes:
    return pack([uid, packet_object(packet), raw_opts(opts, flags_of(opts))])


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A decoded broadcast (or the packet and options of a broadcast with acks)."""

    uid: str | None
    packet: Packet
    opts: BroadcastOptions
    flags: dict[str, Any] = field(default_factory=dict)


def _rooms(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise WireDecodeError("rooms must be an array")
    # Node matches numeric room names both ways; rooms are strings here.
    return frozenset(str(room) for room in value)


def options_from(raw: Any) -> tuple[BroadcastOptions, dict[str, Any]]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise WireDecodeError("opts must be an object")
    flags = raw.get("flags") or {}
    if not isinstance(flags, dict):
        raise WireDecodeError("flags must be an object")
    opts = BroadcastOptions(
        rooms=_rooms(raw.get("rooms")),
        except_rooms=_rooms(raw.get("except")),
        volatile=bool(flags.get("volatile")),
    )
    return opts, flags


def packet_from(raw: Any) -> Packet:
    if not isinstance(raw, dict):
        raise WireDecodeError("packet must be an object")
    data = raw.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], str):
        raise WireDecodeError("packet data must be [event, ...args]")
    namespace = raw.get("nsp")
    if namespace is None:
        namespace = MAIN_NAMESPACE
    if not isinstance(namespace, str):
        raise WireDecodeError("packet nsp must be a string")
    return Packet(PacketType.EVENT, namespace, data)


def decode_broadcast(raw: bytes) -> Broadcast:
    message = unpack(raw)
    if not isinstance(message, list) or len(message) < 3:
        raise WireDecodeError("a broadcast is [uid, packet, opts]")
    uid, packet, opts = message[0], message[1], message[2]
    parsed_opts, flags = options_from(opts)
    return Broadcast(uid if isinstance(uid, str) else None, packet_from(packet), parsed_opts, flags)


# -- requests (what a node asks its peers) -----------------------------------------------


def selector(opts: BroadcastOptions) -> dict[str, list[str]]:
    return {"rooms": sorted(opts.rooms), "except": sorted(opts.except_rooms)}


def all_rooms_request(uid: str, request_id: str) -> bytes:
    return to_json({"uid": uid, "requestId": request_id, "type": RequestType.ALL_ROOMS})


def fetch_request(uid: str, request_id: str, opts: BroadcastOptions) -> bytes:
    return to_json(
        {
            "uid": uid,
            "requestId": request_id,
            "type": RequestType.REMOTE_FETCH,
            "opts": selector(opts),
        }
    )


def join_request(uid: str, opts: BroadcastOptions, rooms: Iterable[str], *, leave: bool) -> bytes:
    kind = RequestType.REMOTE_LEAVE if leave else RequestType.REMOTE_JOIN
    return to_json({"uid": uid, "type": kind, "opts": selector(opts), "rooms": sorted(rooms)})


def disconnect_request(uid: str, opts: BroadcastOptions, *, close: bool) -> bytes:
    return to_json(
        {"uid": uid, "type": RequestType.REMOTE_DISCONNECT, "opts": selector(opts), "close": close}
    )


def server_side_emit_request(uid: str, data: list[Any], request_id: str | None = None) -> bytes:
    if request_id is None:
        return to_json({"uid": uid, "type": RequestType.SERVER_SIDE_EMIT, "data": data})
    return to_json(
        {"uid": uid, "requestId": request_id, "type": RequestType.SERVER_SIDE_EMIT, "data": data}
    )


def broadcast_ack_request(
    uid: str, request_id: str, packet: Packet, opts: BroadcastOptions, timeout: float
) -> bytes:
    return pack(
        {
            "uid": uid,
            "requestId": request_id,
            "type": int(RequestType.BROADCAST),
            "packet": packet_object(packet),
            "opts": raw_opts(opts, flags_of(opts, timeout)),
        }
    )


# -- responses (what a node answers) -----------------------------------------------------


def sockets_response(request_id: str, sids: Iterable[str]) -> bytes:
    return to_json({"requestId": request_id, "sockets": list(sids)})


def rooms_response(request_id: str, rooms: Iterable[str]) -> bytes:
    return to_json({"requestId": request_id, "rooms": list(rooms)})


def fetch_response(request_id: str, sockets: list[dict[str, Any]]) -> bytes:
    return to_json({"requestId": request_id, "sockets": sockets})


def server_side_emit_response(request_id: str, data: Any) -> bytes:
    return to_json({"type": RequestType.SERVER_SIDE_EMIT, "requestId": request_id, "data": data})


def client_count_response(request_id: str, count: int) -> bytes:
    return to_json(
        {"type": RequestType.BROADCAST_CLIENT_COUNT, "requestId": request_id, "clientCount": count}
    )


def broadcast_ack_response(request_id: str, value: Any) -> bytes:
    return pack({"type": int(RequestType.BROADCAST_ACK), "requestId": request_id, "packet": value})


def js_date_string(epoch: float) -> str:
    """``new Date().toString()`` as Node's handshake ``time`` has it (in UTC)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")
