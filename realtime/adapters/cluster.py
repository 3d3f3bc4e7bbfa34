"""What every multi-node adapter shares, apart from its broker.

Node ids and request ids, waiting for a known number of replies with a
timeout (partial answers kept), the bookkeeping of a broadcast with acks that
spans nodes, the reconnect backoff, and the copies of remote sockets that
``fetch_sockets`` returns. No I/O here, only anyio events and timeouts.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from realtime.adapters.base import SocketId
from realtime.exceptions import ClusterTimeoutError

if TYPE_CHECKING:
    from realtime.socketio.broadcast import BroadcastOperator, Rooms
    from realtime.socketio.socket import Socket

_UID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def new_uid(length: int = 6) -> str:
    """A random id as Node's ``uid2`` makes it (node ids, request ids)."""
    return "".join(_UID_CHARS[b % 64] for b in secrets.token_bytes(length))


def backoff_delay(attempt: int, *, base: float, maximum: float) -> float:
    """Exponential backoff with full jitter: nodes that lost the broker do not return in step."""
    ceiling = min(maximum, base * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)


class PendingReplies:
    """Answers to one cluster request, until ``expected`` arrived or the timeout passed."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.responses: list[Any] = []
        self._done = anyio.Event()
        if expected <= 0:
            self._done.set()

    def add(self, response: Any) -> None:
        self.responses.append(response)
        if len(self.responses) >= self.expected:
            self._done.set()

    async def wait(self, seconds: float, what: str) -> list[Any]:
        """The responses; :class:`ClusterTimeoutError` (carrying them) if some are missing."""
        with anyio.move_on_after(seconds):
            await self._done.wait()
        if len(self.responses) < self.expected:
            raise ClusterTimeoutError(
                f"timeout reached while waiting for {what}: "
                f"{len(self.responses)} of {self.expected} nodes answered",
                responses=list(self.responses),
                expected=self.expected,
                received=len(self.responses),
            )
        return self.responses


class RequestRegistry:
    """Requests this node is waiting on, by request id (peers' replies carry it)."""

    def __init__(self) -> None:
        self._pending: dict[str, PendingReplies] = {}

    def open(self, expected: int) -> tuple[str, PendingReplies]:
        request_id = new_uid()
        pending = self._pending[request_id] = PendingReplies(expected)
        return request_id, pending

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._pending

    def answer(self, request_id: str, response: Any) -> bool:
        pending = self._pending.get(request_id)
        if pending is None:
            return False  # unknown or finished: replies share one channel
        pending.add(response)
        return True

    def close(self, request_id: str) -> None:
        self._pending.pop(request_id, None)

    def __len__(self) -> int:
        return len(self._pending)


RecipientsCallback = Callable[..., None]
AckArgsCallback = Callable[[SocketId, list[Any] | None], None]


@dataclass
class RemoteAcks:
    """The other nodes' part of one broadcast with acks.

    Peers report only how many clients they reached, then each client's
    answer, with no socket id. Each reached client gets a stand-in id
    (``<request id>:<n>``) so the emitter can count who did not answer. The
    broadcast is complete once every other node (``servers``, known from the
    server count, possibly after the first replies) reported its count.
    """

    request_id: str
    on_recipients: RecipientsCallback
    on_ack: AckArgsCallback
    servers: int | None = None
    counts: int = 0
    issued: int = 0
    acked: int = 0
    _reported_complete: bool = field(default=False, repr=False)

    def _ids(self, start: int, stop: int) -> list[SocketId]:
        return [SocketId(f"{self.request_id}:{n}") for n in range(start, stop)]

    @property
    def complete(self) -> bool:
        return self.servers is not None and self.counts >= self.servers

    def set_servers(self, servers: int) -> None:
        self.servers = max(0, servers)
        self._report([])

    def client_count(self, count: int) -> None:
        start, self.issued = self.issued, self.issued + max(0, count)
        self.counts += 1
        self._report(self._ids(start, self.issued))

    def ack(self, value: Any) -> None:
        if self.acked >= self.issued:  # an answer ahead of its count: count it too
            self.issued += 1
            self.on_recipients(self._ids(self.acked, self.issued), complete=self.complete)
        sid = SocketId(f"{self.request_id}:{self.acked}")
        self.acked += 1
        self.on_ack(sid, [value])

    def _report(self, sids: Sequence[SocketId]) -> None:
        if sids or (self.complete and not self._reported_complete):
            self._reported_complete = self.complete
            self.on_recipients(sids, complete=self.complete)


def handshake_object(socket: Socket) -> dict[str, Any]:
    """A socket's handshake as Node's fetch-sockets reply carries it."""
    from realtime.adapters.redis_wire import js_date_string

    hs = socket.handshake
    return {
        "headers": dict(hs.headers.items()),
        "time": js_date_string(hs.time),
        "address": hs.address,
        "xdomain": hs.xdomain,
        "secure": hs.secure,
        "issued": round(hs.time * 1000),
        "url": hs.url,
        "query": dict(hs.query),
        "auth": hs.auth,
    }


def socket_object(socket: Socket) -> dict[str, Any]:
    """One entry of a fetch-sockets reply: ``{id, handshake, rooms, data}``."""
    return {
        "id": socket.id,
        "handshake": handshake_object(socket),
        "rooms": list(socket.rooms),
        "data": socket.data,
    }


@dataclass(frozen=True, slots=True, eq=False)
class RemoteSocket:
    """A socket on another node, as ``fetch_sockets`` returns it.

    ``handshake`` is the dict the node sent (Node's field names); ``emit``,
    ``join``, ``leave`` and ``disconnect`` travel through the cluster to the
    node that holds it, as in the reference server.
    """

    id: SocketId
    handshake: dict[str, Any]
    rooms: frozenset[str]
    data: dict[str, Any]
    operator: BroadcastOperator = field(repr=False)

    @classmethod
    def parse(cls, raw: Any, operator: BroadcastOperator) -> RemoteSocket | None:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            return None
        rooms = raw.get("rooms")
        data = raw.get("data")
        handshake = raw.get("handshake")
        return cls(
            id=SocketId(raw["id"]),
            handshake=handshake if isinstance(handshake, dict) else {},
            rooms=frozenset(str(r) for r in rooms) if isinstance(rooms, list) else frozenset(),
            data=data if isinstance(data, dict) else {},
            operator=operator.to(raw["id"]),
        )

    async def emit(self, event: str, *args: Any) -> None:
        await self.operator.emit(event, *args)

    async def join(self, rooms: Rooms) -> None:
        await self.operator.sockets_join(rooms)

    async def leave(self, room: str) -> None:
        await self.operator.sockets_leave(room)

    async def disconnect(self, close: bool = False) -> None:
        await self.operator.disconnect_sockets(close)
