"""What every multi-node adapter shares, apart from its broker and its wire.

Node ids and request ids, waiting for a known number of replies with a
timeout (partial answers kept), the bookkeeping of a broadcast with acks that
spans nodes, the reconnect backoff, the copies of remote sockets that
``fetch_sockets`` returns, and :class:`PeeringAdapter`, the requests to the
other nodes both Redis adapters make (over a :class:`Bus`: no I/O here).
"""

from __future__ import annotations

import logging
import random
import secrets
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import anyio

from realtime.adapters.base import (
    BroadcastOptions,
    LocalNamespace,
    SocketDetails,
    SocketId,
)
from realtime.adapters.base import RecipientsCallback as Recipients
from realtime.adapters.memory import InMemoryAdapter
from realtime.exceptions import ClusterTimeoutError, ClusterUnavailableError
from realtime.socketio.handlers import ack_value

if TYPE_CHECKING:
    from realtime.socketio.broadcast import BroadcastOperator, Rooms
    from realtime.socketio.packets import Packet
    from realtime.socketio.socket import Socket

logger = logging.getLogger("realtime.adapters.cluster")

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


class Bus(Protocol):
    """What a :class:`PeeringAdapter` needs of its broker link (a ``RedisLink``)."""

    #: PUBLISH's reply counts the receiving broker node's subscribers only.
    spans_nodes: bool

    async def publish(self, channel: str, data: bytes) -> int: ...

    async def server_count(self, channel: str) -> int: ...

    def start_soon(self, func: Callable[..., Any], *args: Any) -> None: ...


class PeeringAdapter(InMemoryAdapter):
    """Local rooms in memory, and the operations that ask the other nodes over a
    :class:`Bus` and wait for their answers: broadcast with acks, fetch sockets,
    server-side emits, and answering peers' broadcasts with acks.

    A subclass speaks one wire: it encodes the requests (``_*_request``), names
    the channel they go to and the other nodes are counted on
    (``request_channel``), and hands each reply to :meth:`_ack_count`,
    :meth:`_ack_answer` or ``self.requests.answer`` (a fetch-sockets reply as the
    list of its sockets).
    """

    #: The request kinds of the subclass's wire, as ``_request_kinds`` records them.
    FETCH_KIND: ClassVar[Any]
    SERVER_SIDE_EMIT_KIND: ClassVar[Any]

    def __init__(
        self, namespace: LocalNamespace, bus: Bus, *, uid: str, requests_timeout: float
    ) -> None:
        super().__init__(namespace)
        self.bus = bus
        self.uid = uid
        self.requests = RequestRegistry()
        self.requests_timeout = requests_timeout
        self._request_kinds: dict[str, Any] = {}
        self._ack_requests: dict[str, RemoteAcks] = {}

    @property
    @abstractmethod
    def request_channel(self) -> str: ...

    @abstractmethod
    def _ack_request(
        self, request_id: str, packet: Packet, opts: BroadcastOptions, seconds: float
    ) -> bytes: ...

    @abstractmethod
    def _fetch_request(self, request_id: str, opts: BroadcastOptions) -> bytes: ...

    @abstractmethod
    def _server_side_emit_request(self, data: list[Any], request_id: str | None) -> bytes: ...

    # -- asking ----------------------------------------------------------------------

    async def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        on_recipients: Recipients,
        on_ack: Callable[[SocketId, list[Any] | None], None],
    ) -> None:
        local_only = opts.local
        await super().broadcast_with_ack(
            packet, opts, partial(on_recipients, complete=local_only), on_ack
        )
        if local_only:
            return
        request_id = new_uid()
        remote = RemoteAcks(request_id, on_recipients, on_ack)
        self._ack_requests[request_id] = remote
        seconds = opts.timeout if opts.timeout is not None else self.requests_timeout
        self.bus.start_soon(self._forget_ack_request, request_id, seconds)
        try:
            data = self._ack_request(request_id, packet, opts, seconds)
            await self.bus.publish(self.request_channel, data)
            remote.set_servers(await self.bus.server_count(self.request_channel) - 1)
        except ClusterUnavailableError:
            self._ack_requests.pop(request_id, None)
            raise

    async def _forget_ack_request(self, request_id: str, seconds: float) -> None:
        await anyio.sleep(seconds)
        self._ack_requests.pop(request_id, None)

    def _ack_count(self, request_id: Any, count: Any) -> None:
        """A peer's count of the clients a broadcast with acks of this node reached."""
        remote = self._ack_requests.get(request_id) if isinstance(request_id, str) else None
        if remote is not None:
            remote.client_count(count if isinstance(count, int) else 0)

    def _ack_answer(self, request_id: Any, value: Any) -> None:
        """One remote client's answer to a broadcast with acks of this node."""
        remote = self._ack_requests.get(request_id) if isinstance(request_id, str) else None
        if remote is not None:
            remote.ack(value)

    async def _ask(
        self, kind: Any, build: Callable[[str], bytes], what: str, seconds: float | None = None
    ) -> list[Any]:
        """Publish a request to the other nodes and wait for each one's reply."""
        others = await self.bus.server_count(self.request_channel) - 1
        if others <= 0:
            return []
        request_id, pending = self.requests.open(others)
        self._request_kinds[request_id] = kind
        try:
            await self.bus.publish(self.request_channel, build(request_id))
            return await pending.wait(
                seconds if seconds is not None else self.requests_timeout, what
            )
        finally:
            self.requests.close(request_id)
            self._request_kinds.pop(request_id, None)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketDetails]:
        local = await super().fetch_sockets(opts)
        if opts.local:
            return local
        from realtime.socketio.broadcast import BroadcastOperator

        base = BroadcastOperator(self.namespace)  # type: ignore[arg-type]

        def sockets(replies: list[Any]) -> list[SocketDetails]:
            found: list[SocketDetails] = list(local)
            for reply in replies:  # each node's list of sockets
                for raw in reply if isinstance(reply, list) else ():
                    remote = RemoteSocket.parse(raw, base)
                    if remote is not None:
                        found.append(remote)
            return found

        build = partial(self._fetch_request, opts=opts)
        try:
            replies = await self._ask(self.FETCH_KIND, build, "fetchSockets response")
        except ClusterTimeoutError as exc:
            exc.responses = sockets(exc.responses)
            raise
        return sockets(replies)

    async def server_side_emit(self, event: str, args: Sequence[Any]) -> int:
        data = self._server_side_emit_request([event, *args], None)
        reached = await self.bus.publish(self.request_channel, data)
        if self.bus.spans_nodes:  # PUBLISH counts the receiving node's subscribers only
            reached = await self.bus.server_count(self.request_channel)
        return max(0, reached - 1)  # this server is subscribed too

    async def server_side_emit_with_ack(
        self, event: str, args: Sequence[Any], seconds: float | None
    ) -> list[Any]:
        build = partial(self._server_side_emit_request, [event, *args])
        return await self._ask(
            self.SERVER_SIDE_EMIT_KIND, build, "serverSideEmit response", seconds
        )

    # -- answering -------------------------------------------------------------------

    async def _run_server_side(self, data: Any, reply: Callable[[Any], None] | None) -> None:
        """A peer's server-side emit (``[event, *args]``); ``reply`` gets the handler's result."""
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            return
        try:
            result = await self.namespace.handle_server_side(data[0], data[1:])
        except Exception:
            logger.exception("error in server-side handler for %r", data[0])
            return
        if reply is not None:
            reply(result)

    def _answer_broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        count: Callable[[int], None],
        answer: Callable[[Any], None],
    ) -> None:
        """A peer's broadcast with acks: deliver here, report the count, then each answer."""
        packet = replace(packet, id=self.namespace.next_ack_id())

        def on_recipients(sids: Sequence[SocketId], /, *, complete: bool = True) -> None:
            count(len(sids))

        def on_ack(sid: SocketId, args: list[Any] | None) -> None:
            if args is not None:
                answer(ack_value(args))

        self.broadcast_with_ack_now(packet, opts, on_recipients, on_ack)
