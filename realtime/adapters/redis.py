"""A cluster of server processes over Redis pub/sub, on Node's ``@socket.io/redis-adapter`` wire.

::

    sio = Server(adapter=RedisAdapter.factory(url="redis://127.0.0.1:6379"))

The URL may also name a Sentinel-managed primary (``redis+sentinel://...``)
or a Redis Cluster (``redis+cluster://...``): see :mod:`realtime.redis_topology`.

One :class:`RedisLink` per server (one subscriber connection, a small pool
for publishing) serves every namespace; it runs in the server's lifespan,
reconnects and resubscribes by itself with backoff, and exposes its
:class:`RedisHealth`. Each namespace gets a :class:`RedisAdapter`: local
sockets live in memory as with the default adapter; broadcasts are delivered
locally, then published once (encoded once); requests to the other nodes
(fetch sockets, server-side emits, broadcasts with acks...) carry a request id
and wait for the number of nodes ``PUBSUB NUMSUB`` counts.

While Redis is unreachable local delivery goes on, publishing raises
:class:`~realtime.exceptions.ClusterUnavailableError` at once, and what would
have been published is lost: pub/sub keeps no history to replay.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import coredis
from anyio.abc import TaskGroup

from realtime.adapters import redis_wire as wire
from realtime.adapters.base import (
    BroadcastOptions,
    LocalNamespace,
    SocketId,
)
from realtime.adapters.cluster import (
    PeeringAdapter,
    backoff_delay,
    new_uid,
    socket_object,
)
from realtime.adapters.memory import InMemoryAdapter
from realtime.adapters.redis_wire import RequestType
from realtime.engineio.relay import SessionRelay
from realtime.exceptions import ClusterTimeoutError, ClusterUnavailableError, ProtocolError
from realtime.redis_topology import Kind, coredis_client, describe, parse

if TYPE_CHECKING:
    from realtime.socketio.packets import Packet

logger = logging.getLogger("realtime.adapters.redis")


DEFAULT_URL = "redis://127.0.0.1:6379"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Options of the Redis adapter; every bound has a default.

    ``key``: channel prefix (Node's ``key``, default ``socket.io``: nodes of one
    cluster must agree). ``requests_timeout``: how long a cluster request
    (fetch sockets, server-side emit with acks, all rooms) waits for every
    node (Node's ``requestsTimeout``). ``publish_timeout``: a publish or
    server count that takes longer fails with ClusterUnavailableError.
    ``connect_timeout``: per connection attempt. ``backoff_base`` /
    ``backoff_max``: reconnect delays (exponential, jittered).
    ``startup_timeout``: how long the server's start waits for the first
    subscription before going on degraded. ``max_outbox``: replies and acks
    queued for publishing (in order) while a publish is under way; past it
    they are dropped and logged. ``publish_on_specific_response_channel``:
    answer on the requester's own channel (Node's option of that name).
    ``relay_sessions``: tunnel a request for another node's Engine.IO session
    to that node (see :mod:`realtime.engineio.relay`), so polling needs no
    sticky sessions; off, such a request gets "Session ID unknown".
    """

    url: str = DEFAULT_URL
    key: str = wire.DEFAULT_KEY
    requests_timeout: float = 5.0
    publish_timeout: float = 2.0
    connect_timeout: float = 2.0
    backoff_base: float = 0.1
    backoff_max: float = 5.0
    startup_timeout: float = 5.0
    max_outbox: int = 10_000
    publish_on_specific_response_channel: bool = False
    relay_sessions: bool = True


@dataclass(frozen=True, slots=True)
class RedisHealth:
    """The link's state: ``connected`` and ``subscribed`` (every channel of every
    namespace), the last error seen (kept after recovery), and since when
    (``time.time()``) the state holds."""

    connected: bool
    subscribed: bool
    last_error: str | None
    since: float


Dispatcher = Callable[[str, bytes], None]


class RedisLink:
    """One server's connection to Redis, shared by its namespaces' adapters."""

    def __init__(self, options: RedisOptions) -> None:
        self.options = options
        #: A Redis Cluster: replies to PUBLISH count one node's subscribers only.
        self.spans_nodes = parse(options.url).kind is Kind.CLUSTER
        #: Whether PUBLISH's reply counts every subscriber (what a relay asks).
        self.counts_receivers = not self.spans_nodes
        self.health = RedisHealth(False, False, None, time.time())
        self._client: coredis.Redis[bytes] | None = None
        self._pubsub: Any = None
        self._channels: dict[str, Dispatcher] = {}
        self._patterns: dict[str, Dispatcher] = {}
        self._tg: TaskGroup | None = None
        self._subscribed = anyio.Event()
        self._wanted = anyio.Event()
        self._outbox_send, self._outbox_receive = anyio.create_memory_object_stream[
            tuple[str, bytes]
        ](options.max_outbox)
        self.dropped = 0

    # -- running -------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        connect = coredis_client(
            self.options.url,
            connect_timeout=self.options.connect_timeout,
            retry_policy=coredis.retry.NoRetryPolicy(),
        )
        async with connect as client, anyio.create_task_group() as tg:
            self._client = client
            self._tg = tg
            tg.start_soon(self._drain_outbox)
            tg.start_soon(self._supervise)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                self._tg = None
                self._client = None

    def start_soon(self, func: Callable[..., Any], *args: Any) -> None:
        if self._tg is not None:
            self._tg.start_soon(func, *args)

    def _set_health(self, *, connected: bool, subscribed: bool, error: str | None) -> None:
        old = self.health
        changed = (old.connected, old.subscribed) != (connected, subscribed)
        self.health = RedisHealth(
            connected,
            subscribed,
            error if error is not None else old.last_error,
            time.time() if changed else old.since,
        )
        if changed:
            if subscribed:
                logger.info("Redis link up at %s: subscribed", describe(self.options.url))
            elif old.connected:
                logger.warning("Redis link down at %s: %s", describe(self.options.url), error)

    async def _supervise(self) -> None:
        attempt = 0
        assert self._client is not None
        await self._wanted.wait()  # nothing to listen to before a namespace registers
        while True:
            try:
                async with self._client.pubsub(
                    retry_policy=None, ignore_subscribe_messages=True
                ) as pubsub:
                    self._pubsub = pubsub
                    if self._channels:
                        await pubsub.subscribe(*self._channels)
                    if self._patterns:
                        await pubsub.psubscribe(*self._patterns)
                    self._set_health(connected=True, subscribed=True, error=None)
                    self._subscribed.set()
                    attempt = 0
                    while True:  # a lost connection fails the pubsub's own tasks
                        message = await pubsub.get_message()
                        if message is not None:
                            self._dispatch(message)
            except Exception as exc:
                self._pubsub = None
                self._set_health(connected=False, subscribed=False, error=_describe(exc))
            delay = backoff_delay(
                attempt, base=self.options.backoff_base, maximum=self.options.backoff_max
            )
            await anyio.sleep(delay)
            attempt += 1

    def _dispatch(self, message: Any) -> None:
        channel = _text(message.get("channel"))
        data = message.get("data")
        if not isinstance(data, bytes):
            return
        pattern = message.get("pattern")
        handler = self._patterns.get(_text(pattern)) if pattern else self._channels.get(channel)
        if handler is None:
            return
        try:
            handler(channel, data)
        except ProtocolError as exc:
            logger.debug("ignoring malformed message on %s: %s", channel, exc)
        except Exception:
            logger.exception("error handling a message on %s", channel)

    # -- subscriptions --------------------------------------------------------------

    async def listen(
        self, channels: dict[str, Dispatcher], patterns: dict[str, Dispatcher]
    ) -> None:
        """Subscribe now if connected, and on every reconnect.

        The first time, waits up to ``startup_timeout`` for the link to come up,
        so that a server that starts with Redis up is in the cluster at once.
        """
        self._channels.update(channels)
        self._patterns.update(patterns)
        self._wanted.set()
        pubsub = self._pubsub
        if pubsub is None:
            if not self._subscribed.is_set():
                with anyio.move_on_after(self.options.startup_timeout):
                    await self._subscribed.wait()
                if not self.health.subscribed:
                    logger.warning(
                        "Redis at %s not reachable yet (%s): serving local clients, retrying",
                        describe(self.options.url),
                        self.health.last_error,
                    )
            return
        try:
            with anyio.fail_after(self.options.publish_timeout):
                await pubsub.subscribe(*channels)
                await pubsub.psubscribe(*patterns)
        except Exception as exc:  # the supervisor reconnects and subscribes them all
            logger.debug("subscribe failed (%s); done on reconnect", _describe(exc))

    async def unlisten(self, channels: Iterable[str], patterns: Iterable[str]) -> None:
        channels, patterns = list(channels), list(patterns)
        for channel in channels:
            self._channels.pop(channel, None)
        for pattern in patterns:
            self._patterns.pop(pattern, None)
        pubsub = self._pubsub
        if pubsub is None:
            return
        try:
            with anyio.fail_after(self.options.publish_timeout):
                await pubsub.unsubscribe(*channels)
                await pubsub.punsubscribe(*patterns)
        except Exception as exc:
            logger.debug("unsubscribe failed: %s", _describe(exc))

    # -- publishing -----------------------------------------------------------------

    def _live_client(self) -> coredis.Redis[bytes]:
        client = self._client
        if client is None or not self.health.connected:
            raise ClusterUnavailableError(
                f"Redis is unreachable ({self.health.last_error}): not published"
            )
        return client

    async def run(self, what: str, command: Callable[[coredis.Redis[bytes]], Awaitable[T]]) -> T:
        """One command on the shared client, failing fast: :class:`ClusterUnavailableError`
        when Redis is down or does not answer within ``publish_timeout``."""
        client = self._live_client()
        try:
            with anyio.fail_after(self.options.publish_timeout):
                return await command(client)
        except (TimeoutError, coredis.exceptions.RedisError, OSError) as exc:
            raise ClusterUnavailableError(f"{what} failed: {_describe(exc)}") from exc

    async def publish(self, channel: str, data: bytes) -> int:
        """PUBLISH, failing fast: :class:`ClusterUnavailableError` when Redis is down."""
        return await self.run("publish to Redis", lambda client: client.publish(channel, data))

    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> list[int]:
        """PUBLISH each of ``items`` in order, in one pipeline; the receiver counts.

        One round trip and one write for many messages: the session relay sends
        all its tunnels' frames this way (several times the rate of single
        publishes). On a Redis Cluster the publishes go one by one.
        """
        if self.spans_nodes or len(items) == 1:
            return [await self.publish(channel, data) for channel, data in items]
        client = self._live_client()
        try:
            with anyio.fail_after(self.options.publish_timeout):
                async with client.pipeline(transaction=False) as pipe:
                    replies = [pipe.publish(channel, data) for channel, data in items]
                return [int(await reply) for reply in replies]
        except (TimeoutError, coredis.exceptions.RedisError, OSError) as exc:
            raise ClusterUnavailableError(f"publish to Redis failed: {_describe(exc)}") from exc

    def publish_soon(self, channel: str, data: bytes) -> None:
        """Queue a publish from synchronous code; sent in order by one task."""
        try:
            self._outbox_send.send_nowait((channel, data))
        except anyio.WouldBlock:
            self.dropped += 1
            logger.warning("Redis outbox full: a reply on %s was dropped", channel)

    async def _drain_outbox(self) -> None:
        async for channel, data in self._outbox_receive:
            try:
                await self.publish(channel, data)
            except ClusterUnavailableError as exc:
                self.dropped += 1
                logger.debug("reply on %s lost: %s", channel, exc)

    async def server_count(self, channel: str) -> int:
        """How many servers listen on ``channel`` (``PUBSUB NUMSUB``)."""
        counts = await self.run("server count", lambda client: client.pubsub_numsub(channel))
        return int(next(iter(counts.values()), 0))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException) -> str:
    """One line for an error, unwrapping the exception groups task groups raise."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


class RedisAdapterFactory:
    """Pass as ``Server(adapter=...)``: one :class:`RedisLink` for the server's namespaces.

    Use one factory per server.
    """

    def __init__(self, options: RedisOptions) -> None:
        self.options = options
        #: A Redis Cluster: replies to PUBLISH count one node's subscribers only.
        self.spans_nodes = parse(options.url).kind is Kind.CLUSTER
        self.link = RedisLink(options)

    def __call__(self, namespace: LocalNamespace) -> RedisAdapter:
        return RedisAdapter(namespace, self.link)

    def lifespan(self) -> Any:
        """Run the link; ``Server.lifespan`` enters this around everything else."""
        return self.link.running()

    def session_relay(self) -> SessionRelay | None:
        """The server's engine tunnels other nodes' sessions to them over this link."""
        if not self.options.relay_sessions:
            return None
        return SessionRelay(self.link, self.options.key)

    @property
    def health(self) -> RedisHealth:
        return self.link.health


class RedisAdapter(PeeringAdapter):
    """One namespace's rooms, with every operation spanning the cluster."""

    FETCH_KIND = RequestType.REMOTE_FETCH
    SERVER_SIDE_EMIT_KIND = RequestType.SERVER_SIDE_EMIT

    @classmethod
    def factory(cls, url: str = DEFAULT_URL, **options: Any) -> RedisAdapterFactory:
        """A factory for ``Server(adapter=...)``; ``options`` as in :class:`RedisOptions`."""
        return RedisAdapterFactory(RedisOptions(url=url, **options))

    def __init__(self, namespace: LocalNamespace, link: RedisLink) -> None:
        options = link.options
        super().__init__(namespace, link, uid=new_uid(), requests_timeout=options.requests_timeout)
        self.link = link
        self.channels = wire.Channels(options.key, namespace.name)

    @property
    def health(self) -> RedisHealth:
        return self.link.health

    def _subscriptions(self) -> tuple[dict[str, Dispatcher], dict[str, Dispatcher]]:
        ch = self.channels
        channels: dict[str, Dispatcher] = {
            ch.request: self._on_request,
            ch.response: self._on_response,
            ch.specific_response(self.uid): self._on_response,
        }
        return channels, {ch.pattern: self._on_broadcast}

    async def init(self) -> None:
        await self.link.listen(*self._subscriptions())

    async def close(self) -> None:
        channels, patterns = self._subscriptions()
        await self.link.unlisten(channels, patterns)

    # -- outgoing ------------------------------------------------------------------

    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        await super().broadcast(packet, opts)
        if not opts.local:
            data = wire.encode_broadcast(self.uid, packet, opts)
            await self.link.publish(wire.broadcast_channel(self.channels, opts), data)

    @property
    def request_channel(self) -> str:
        return self.channels.request

    def _ack_request(
        self, request_id: str, packet: Packet, opts: BroadcastOptions, seconds: float
    ) -> bytes:
        return wire.broadcast_ack_request(self.uid, request_id, packet, opts, seconds)

    def _fetch_request(self, request_id: str, opts: BroadcastOptions) -> bytes:
        return wire.fetch_request(self.uid, request_id, opts)

    def _server_side_emit_request(self, data: list[Any], request_id: str | None) -> bytes:
        return wire.server_side_emit_request(self.uid, data, request_id)

    async def all_rooms(self) -> frozenset[str]:
        local = set(self.rooms())

        def rooms(replies: list[Any]) -> frozenset[str]:
            for reply in replies:
                if isinstance(reply, dict) and isinstance(reply.get("rooms"), list):
                    local.update(str(room) for room in reply["rooms"])
            return frozenset(local)

        try:
            replies = await self._ask(
                RequestType.ALL_ROOMS,
                partial(wire.all_rooms_request, self.uid),
                "allRooms response",
            )
        except ClusterTimeoutError as exc:
            exc.responses = sorted(rooms(exc.responses))
            raise
        return rooms(replies)

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        await super().add_sockets(opts, rooms)
        if not opts.local:
            data = wire.join_request(self.uid, opts, rooms, leave=False)
            await self.link.publish(self.channels.request, data)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        await super().del_sockets(opts, rooms)
        if not opts.local:
            data = wire.join_request(self.uid, opts, rooms, leave=True)
            await self.link.publish(self.channels.request, data)

    async def disconnect_sockets(self, opts: BroadcastOptions, *, close: bool) -> None:
        if not opts.local:  # published first: local handlers may take a while
            data = wire.disconnect_request(self.uid, opts, close=close)
            await self.link.publish(self.channels.request, data)
        await super().disconnect_sockets(opts, close=close)

    # -- incoming ------------------------------------------------------------------

    def _on_broadcast(self, channel: str, data: bytes) -> None:
        room = self.channels.room_of(channel)
        if room is None or (room and room not in self._rooms):
            return  # a room with no local socket: not even decoded
        message = wire.decode_broadcast(data)
        if message.uid == self.uid or message.packet.namespace != self.namespace.name:
            return
        self.broadcast_now(message.packet, message.opts)

    def _reply(self, request: dict[str, Any], data: bytes) -> None:
        channel = self.channels.response
        uid = request.get("uid")
        if self.link.options.publish_on_specific_response_channel and isinstance(uid, str):
            channel = self.channels.specific_response(uid)
        self.link.publish_soon(channel, data)

    def _on_request(self, channel: str, data: bytes) -> None:
        request = wire.decode(data)
        if not isinstance(request, dict):
            return
        kind = request.get("type")
        request_id = request.get("requestId")
        mine = request_id in self.requests or request.get("uid") == self.uid
        if kind == RequestType.SOCKETS and not mine:
            rooms = wire._rooms(request.get("rooms"))
            sids = self._targets(BroadcastOptions(rooms=rooms))
            self._reply(request, wire.sockets_response(str(request_id), list(sids)))
        elif kind == RequestType.ALL_ROOMS and not mine:
            self._reply(request, wire.rooms_response(str(request_id), list(self._rooms)))
        elif kind in (RequestType.REMOTE_JOIN, RequestType.REMOTE_LEAVE) and not mine:
            self._remote_join(request, leave=kind == RequestType.REMOTE_LEAVE)
        elif kind == RequestType.REMOTE_DISCONNECT and not mine:
            self.link.start_soon(self._remote_disconnect, request)
        elif kind == RequestType.REMOTE_FETCH and not mine:
            opts, _ = wire.options_from(request.get("opts"))
            found = [self.namespace.local_socket(sid) for sid in self._targets(opts)]
            sockets = [socket_object(s) for s in found if s is not None]  # type: ignore[arg-type]
            self._reply(request, wire.fetch_response(str(request_id), sockets))
        elif kind == RequestType.SERVER_SIDE_EMIT and request.get("uid") != self.uid:
            self.link.start_soon(self._server_side, request)
        elif kind == RequestType.BROADCAST and request_id not in self._ack_requests:
            self._remote_broadcast_with_ack(request)

    def _remote_join(self, request: dict[str, Any], *, leave: bool) -> None:
        """Applied at once, in arrival order: a join then a broadcast to the room work."""
        rooms = request.get("rooms")
        if "opts" in request:
            opts, _ = wire.options_from(request["opts"])
            names = [str(r) for r in rooms] if isinstance(rooms, list) else []
        else:  # the legacy one-socket form
            sid = SocketId(str(request.get("sid")))
            if self.namespace.local_socket(sid) is None:
                return
            opts, names = BroadcastOptions(rooms=frozenset({sid})), [str(request.get("room"))]
        if leave:
            self.del_sockets_now(opts, names)
        else:
            self.add_sockets_now(opts, names)
        if "opts" not in request:
            self._reply(request, wire.to_json({"requestId": request.get("requestId")}))

    async def _remote_disconnect(self, request: dict[str, Any]) -> None:
        close = bool(request.get("close"))
        if "opts" in request:
            opts, _ = wire.options_from(request["opts"])
            await InMemoryAdapter.disconnect_sockets(self, opts, close=close)
            return
        sid = SocketId(str(request.get("sid")))
        if self.namespace.local_socket(sid) is None:
            return
        await self.namespace.disconnect_socket(sid, close=close)
        self._reply(request, wire.to_json({"requestId": request.get("requestId")}))

    async def _server_side(self, request: dict[str, Any]) -> None:
        request_id = request.get("requestId")

        def reply(result: Any) -> None:
            # Node replies on the shared channel whatever the option says.
            data = wire.server_side_emit_response(str(request_id), result)
            self.link.publish_soon(self.channels.response, data)

        await self._run_server_side(request.get("data"), reply if request_id is not None else None)

    def _remote_broadcast_with_ack(self, request: dict[str, Any]) -> None:
        request_id = str(request.get("requestId"))
        packet = wire.packet_from(request.get("packet"))
        if packet.namespace != self.namespace.name:
            return
        opts, _ = wire.options_from(request.get("opts"))
        self._answer_broadcast_with_ack(
            packet,
            opts,
            lambda n: self._reply(request, wire.client_count_response(request_id, n)),
            lambda value: self._reply(request, wire.broadcast_ack_response(request_id, value)),
        )

    def _on_response(self, channel: str, data: bytes) -> None:
        response = wire.decode(data)
        if not isinstance(response, dict):
            return
        request_id = response.get("requestId")
        if not isinstance(request_id, str):
            return
        if request_id in self._ack_requests:
            if response.get("type") == RequestType.BROADCAST_CLIENT_COUNT:
                self._ack_count(request_id, response.get("clientCount"))
            elif response.get("type") == RequestType.BROADCAST_ACK:
                self._ack_answer(request_id, response.get("packet"))
            return
        kind = self._request_kinds.get(request_id)
        if kind is RequestType.SERVER_SIDE_EMIT:
            self.requests.answer(request_id, response.get("data"))
        elif kind is RequestType.REMOTE_FETCH:
            sockets = response.get("sockets")
            self.requests.answer(request_id, sockets if isinstance(sockets, list) else [])
        elif kind is not None:
            self.requests.answer(request_id, response)
