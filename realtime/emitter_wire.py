"""What the emitter publishes, as bytes: the ``@socket.io/redis-emitter`` 5.x format.

Pure encoding, no I/O. Every function returns a :class:`Publish` (channel and
payload) that a Redis client sends with ``PUBLISH``; the Redis adapter of any
server in the cluster (Node's ``@socket.io/redis-adapter`` 8.x or ours) reads it.

- A broadcast goes to ``<key>#<nsp>#`` (or ``<key>#<nsp>#<room>#`` when it
  targets exactly one room, so nodes without that room skip it) as the msgpack
  array ``["emitter", {type: 2, data: [event, *args], nsp}, {rooms, flags, except}]``,
  bytes as msgpack ``bin``: the bytes ``notepack.io`` writes for the same values.
- Requests go to ``<key>-request#<nsp>#`` as compact JSON, key order as Node's
  ``JSON.stringify`` writes them. A server-side emit whose arguments hold bytes
  is sent as msgpack instead (JSON has no bytes; Node's emitter would send
  ``{"type": "Buffer", ...}``): the adapters decode any request that does not
  start with ``{`` with msgpack.

One difference with JavaScript: a Python ``float`` is always a msgpack float 64,
where JavaScript writes a whole number (``1.0``) as an integer. Peers read the
same number either way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import msgpack

from realtime.adapters.redis_wire import RequestType
from realtime.exceptions import EncodeError, ReservedEventError
from realtime.socketio.binary import has_binary
from realtime.socketio.packets import RESERVED_EVENTS, PacketType, dumps

#: The channel prefix of Node's adapter and emitter (their ``key`` option).
DEFAULT_KEY = "socket.io"

#: The sender id of every emitter; servers only skip messages with their own id.
EMITTER_UID = "emitter"


class Publish(NamedTuple):
    """One ``PUBLISH channel payload``."""

    channel: str
    payload: bytes


def namespace_name(name: str) -> str:
    """``"chat"`` as ``"/chat"``, as Node's ``emitter.of()`` does."""
    return name if name.startswith("/") else "/" + name


def _ordered(rooms: str | Iterable[str]) -> tuple[str, ...]:
    """Room names in first-seen order without repeats (a JavaScript ``Set``)."""
    items = (rooms,) if isinstance(rooms, str) else tuple(rooms)
    for room in items:
        if not isinstance(room, str):
            raise TypeError(f"room names are strings, not {type(room).__name__}")
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True, slots=True)
class Selection:
    """Which sockets of which namespace an emit or request reaches.

    Sockets in any of ``rooms`` (all sockets when empty), minus those in any of
    ``except_rooms``; ``flags`` are Node's broadcast flags (``volatile``,
    ``compress``), carried in the order they were set.
    """

    namespace: str = "/"
    rooms: tuple[str, ...] = ()
    except_rooms: tuple[str, ...] = ()
    flags: tuple[tuple[str, bool], ...] = ()

    def to(self, rooms: str | Iterable[str]) -> Selection:
        return replace(self, rooms=_ordered(self.rooms + _ordered(rooms)))

    def except_(self, rooms: str | Iterable[str]) -> Selection:
        return replace(self, except_rooms=_ordered(self.except_rooms + _ordered(rooms)))

    def flag(self, name: str, value: bool) -> Selection:
        flags = dict(self.flags)
        flags[name] = value
        return replace(self, flags=tuple(flags.items()))


def broadcast_channel(key: str, namespace: str, rooms: Sequence[str] = ()) -> str:
    channel = f"{key}#{namespace}#"
    return channel + rooms[0] + "#" if len(rooms) == 1 else channel


def request_channel(key: str, namespace: str) -> str:
    return f"{key}-request#{namespace}#"


def _check_values(data: Any) -> None:
    """Refuse what the server refuses too: NaN and infinities reach no client."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise EncodeError(f"{item!r} cannot be sent: JSON, so the client, has no such value")
        if isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())


def pack(value: Any) -> bytes:
    """msgpack as ``notepack.io`` writes it: str as str, bytes as bin, None as nil."""
    _check_values(value)
    try:
        packed: bytes = msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"data cannot be sent with msgpack: {exc}") from None
    return packed


def _check_event(event: str) -> None:
    if not isinstance(event, str):
        raise TypeError(f"event name must be a string, not {type(event).__name__}")
    if event in RESERVED_EVENTS:
        raise ReservedEventError(f"{event!r} is a reserved event name")


def broadcast(key: str, selection: Selection, event: str, args: Sequence[Any]) -> Publish:
    """An event to every selected socket (what Node's ``emitter.emit`` publishes)."""
    _check_event(event)
    packet = {"type": int(PacketType.EVENT), "data": [event, *args], "nsp": selection.namespace}
    opts = {
        "rooms": list(selection.rooms),
        "flags": dict(selection.flags),
        "except": list(selection.except_rooms),
    }
    payload = pack([EMITTER_UID, packet, opts])
    return Publish(broadcast_channel(key, selection.namespace, selection.rooms), payload)


def _request(key: str, selection: Selection, request: dict[str, Any]) -> Publish:
    return Publish(request_channel(key, selection.namespace), dumps(request).encode())


def _opts(selection: Selection) -> dict[str, list[str]]:
    return {"rooms": list(selection.rooms), "except": list(selection.except_rooms)}


def _membership(key: str, selection: Selection, kind: RequestType, rooms: Any) -> Publish:
    request = {"type": int(kind), "opts": _opts(selection), "rooms": _ordered(rooms)}
    return _request(key, selection, request)


def sockets_join(key: str, selection: Selection, rooms: str | Iterable[str]) -> Publish:
    """Make every selected socket join ``rooms``."""
    return _membership(key, selection, RequestType.REMOTE_JOIN, rooms)


def sockets_leave(key: str, selection: Selection, rooms: str | Iterable[str]) -> Publish:
    """Make every selected socket leave ``rooms``."""
    return _membership(key, selection, RequestType.REMOTE_LEAVE, rooms)


def disconnect_sockets(key: str, selection: Selection, close: bool) -> Publish:
    """Disconnect every selected socket; ``close`` also closes its connection."""
    request = {"type": int(RequestType.REMOTE_DISCONNECT), "opts": _opts(selection), "close": close}
    return _request(key, selection, request)


def server_side_emit(key: str, selection: Selection, event: str, args: Sequence[Any]) -> Publish:
    """An event to the server-side listeners of every node (no acknowledgements)."""
    _check_event(event)
    kind = int(RequestType.SERVER_SIDE_EMIT)
    request = {"uid": EMITTER_UID, "type": kind, "data": [event, *args]}
    if has_binary(args):
        return Publish(request_channel(key, selection.namespace), pack(request))
    return _request(key, selection, request)
