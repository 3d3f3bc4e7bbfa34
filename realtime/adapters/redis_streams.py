"""A cluster over Redis Streams, on Node's ``@socket.io/redis-streams-adapter`` 0.3 wire,
with connection state recovery that survives a crashed node.

::

    sio = Server(
        adapter=RedisStreamsAdapter.factory("redis://127.0.0.1:6379"),
        connection_state_recovery=RecoveryOptions(max_disconnection_duration=120),
    )

What must reach every node in order (broadcasts, sockets join/leave, disconnect
sockets) is appended to a stream (``XADD MAXLEN ~ max_len``) that one reader per
stream follows (``XREAD BLOCK``, on its own connection: it blocks). Requests that
want answers (broadcast with acks, fetch sockets, server-side emits) and their
answers go over pub/sub, on the :class:`~realtime.adapters.redis.RedisLink` the
classic adapter uses (reconnect with backoff, health, fail-fast publishes).

Recovery: a stream entry's id is the offset appended to a recoverable event. The
reader delivers every broadcast of the stream, this node's own recoverable ones
included (not right after ``XADD``), so each node delivers in stream order and a
client's last offset means "everything before it arrived". The reader keeps the
last ``replay_window`` entries it processed in memory; a restore pages older ones
with ``XRANGE`` until it reaches them, then takes the rest from memory and joins
the socket to its rooms with no await in between: each missed event is replayed
or delivered live, exactly once. Sessions are written in Node's format
(``sio:session:<pid>``, base64 msgpack), so Node and Python nodes restore each
other's; a companion owner key stops a node from overwriting a session another
node has restored since.

While Redis is unreachable local delivery goes on (recoverable events then get
no offset), the reader and the link reconnect with backoff, and publishing raises
:class:`~realtime.exceptions.ClusterUnavailableError` at once.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any

import anyio
import coredis
from anyio.abc import TaskGroup

from realtime.adapters import redis_streams_wire as wire
from realtime.adapters.base import (
    BroadcastOptions,
    LocalNamespace,
)
from realtime.adapters.cluster import PeeringAdapter, backoff_delay, new_uid, socket_object
from realtime.adapters.memory import InMemoryAdapter
from realtime.adapters.recovery import (
    RecoveryError,
    RecoveryFailure,
    RestoredSession,
    SessionRecord,
    is_recoverable,
    should_include,
)
from realtime.adapters.redis import DEFAULT_URL, Dispatcher, RedisHealth, RedisLink, RedisOptions
from realtime.adapters.redis_streams_wire import MessageType
from realtime.adapters.redis_wire import options_from
from realtime.exceptions import ClusterUnavailableError, ProtocolError
from realtime.redis_topology import coredis_client, describe

if TYPE_CHECKING:
    from realtime.socketio.packets import Packet

logger = logging.getLogger("realtime.adapters.redis_streams")

Entry = tuple[tuple[int, int], str, Mapping[Any, Any]]

#: Writes a session unless another node owns it now (restored it since).
_SAVE_SESSION = """
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
return 1
"""

#: Takes a session (Node's GET+DEL) and its ownership, in one step.
_TAKE_SESSION = """
local value = redis.call('GET', KEYS[1])
if not value then return false end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return value
"""

#: The request each response answers.
_REQUEST_OF = {
    MessageType.FETCH_SOCKETS_RESPONSE: MessageType.FETCH_SOCKETS,
    MessageType.SERVER_SIDE_EMIT_RESPONSE: MessageType.SERVER_SIDE_EMIT,
}


@dataclass(frozen=True, slots=True)
class StreamsOptions:
    """Options of the Redis Streams adapter; Node's options under snake_case names.

    ``stream_name``, ``stream_count`` (namespaces spread over that many streams by
    hash), ``channel_prefix``, ``max_len`` (``XADD MAXLEN ~``: how far back a
    client can recover), ``read_count`` and ``block_time_in_ms`` (each ``XREAD``),
    ``session_key_prefix`` and ``only_plaintext`` (JSON even for binary) are
    Node's, with its defaults: every node of a cluster must agree on them.

    Ours: ``replay_window``, how many entries the reader keeps in memory for
    restores (older ones are paged from Redis, ``restore_page_size`` at a time);
    ``restore_timeout``, how long a restore waits for this node's reader to reach
    an offset another node gave; ``live_session_factor``, how many times
    ``max_disconnection_duration`` a session of a connected socket is kept
    (the namespace saves it again as it changes; a crashed node's sessions live
    that long). The rest as in :class:`~realtime.adapters.redis.RedisOptions`.
    """

    url: str = DEFAULT_URL
    stream_name: str = wire.DEFAULT_STREAM_NAME
    stream_count: int = 1
    channel_prefix: str = wire.DEFAULT_CHANNEL_PREFIX
    max_len: int = 10_000
    read_count: int = 100
    block_time_in_ms: int = 5_000
    session_key_prefix: str = wire.DEFAULT_SESSION_KEY_PREFIX
    only_plaintext: bool = False
    replay_window: int = 10_000
    restore_page_size: int = 1_000
    restore_timeout: float = 5.0
    live_session_factor: float = 2.0
    requests_timeout: float = 5.0
    publish_timeout: float = 2.0
    connect_timeout: float = 2.0
    backoff_base: float = 0.1
    backoff_max: float = 5.0
    startup_timeout: float = 5.0
    max_outbox: int = 10_000

    def __post_init__(self) -> None:
        for name in ("stream_count", "max_len", "read_count", "replay_window", "restore_page_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.block_time_in_ms < 0:
            raise ValueError("block_time_in_ms must not be negative")
        if self.live_session_factor < 1:
            raise ValueError("live_session_factor must be at least 1")

    def link_options(self) -> RedisOptions:
        return RedisOptions(
            url=self.url,
            key=self.channel_prefix,
            requests_timeout=self.requests_timeout,
            publish_timeout=self.publish_timeout,
            connect_timeout=self.connect_timeout,
            backoff_base=self.backoff_base,
            backoff_max=self.backoff_max,
            startup_timeout=self.startup_timeout,
            max_outbox=self.max_outbox,
            relay_sessions=False,
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class StreamReader:
    """Follows one stream on its own connection; hands each entry to its namespace's adapter.

    On start it appends a marker entry (no ``nsp``: every reader skips it) and
    reads from there, so its position is always a real entry id. It keeps the
    last ``replay_window`` entries it processed, contiguous, for restores.
    """

    def __init__(self, stream: str, options: StreamsOptions, uid: str) -> None:
        self.stream = stream
        self.options = options
        self.uid = uid
        self.adapters: dict[str, RedisStreamsAdapter] = {}
        self.ring: deque[Entry] = deque(maxlen=options.replay_window)
        self.last_id: str | None = None
        self.reading = False
        self.last_error: str | None = None
        self._advanced = anyio.Event()

    @property
    def last_key(self) -> tuple[int, int] | None:
        return self.ring[-1][0] if self.ring else None

    async def wait_advanced(self) -> None:
        await self._advanced.wait()

    async def run(self) -> None:
        options = self.options
        attempt = 0
        while True:
            try:
                async with coredis_client(
                    options.url,
                    connect_timeout=options.connect_timeout,
                    retry_policy=coredis.retry.NoRetryPolicy(),
                ) as client:
                    if self.last_id is None:
                        fields = {"uid": self.uid}
                        marker = await client.xadd(
                            self.stream,
                            fields,
                            trim_strategy=coredis.PureToken.MAXLEN,
                            trim_operator=coredis.PureToken.APPROXIMATELY,
                            threshold=options.max_len,
                        )
                        self.process([(_text(marker), fields)])
                    self.reading = True
                    attempt = 0
                    while True:
                        assert self.last_id is not None
                        reply = await client.xread(
                            {self.stream: self.last_id},
                            count=options.read_count,
                            block=options.block_time_in_ms,
                        )
                        for entries in (reply or {}).values():
                            self.process([(_text(e.identifier), e.field_values) for e in entries])
            except Exception as exc:
                if self.reading or self.last_error is None:
                    logger.warning(
                        "stream %s at %s unreadable: %s", self.stream, describe(options.url), exc
                    )
                self.reading = False
                self.last_error = f"{type(exc).__name__}: {exc}"
            await anyio.sleep(
                backoff_delay(attempt, base=options.backoff_base, maximum=options.backoff_max)
            )
            attempt += 1

    def process(self, entries: Sequence[tuple[str, Mapping[Any, Any]]]) -> None:
        """Keep and dispatch a batch in stream order, without yielding (see restores)."""
        for entry_id, fields in entries:
            self.ring.append((wire.parse_offset(entry_id), entry_id, fields))
            self.last_id = entry_id
            nsp = fields.get(b"nsp", fields.get("nsp"))
            adapter = self.adapters.get(_text(nsp)) if nsp else None
            if adapter is None:
                continue
            try:
                adapter.on_entry(entry_id, fields)
            except ProtocolError as exc:
                logger.debug("ignoring malformed entry %s: %s", entry_id, exc)
            except Exception:
                logger.exception("error handling stream entry %s", entry_id)
        self._advanced.set()
        self._advanced = anyio.Event()

    def index_after(self, key: tuple[int, int]) -> int:
        """Position in the ring of the first entry after ``key``."""
        return bisect.bisect_right(self.ring, key, key=lambda entry: entry[0])

    def holds(self, key: tuple[int, int]) -> bool:
        """Whether ``key`` is the id of an entry in the ring."""
        i = self.index_after(key)
        return i > 0 and self.ring[i - 1][0] == key

    def reaches_back_to(self, key: tuple[int, int]) -> bool:
        """Whether the ring holds every entry from ``key`` on (``key``: a stream entry id)."""
        return bool(self.ring) and self.ring[0][0] <= key


class RedisStreamsAdapterFactory:
    """Pass as ``Server(adapter=...)``: one link and one reader per stream, for the server's
    namespaces. Use one factory per server."""

    def __init__(self, options: StreamsOptions) -> None:
        self.options = options
        self.link = RedisLink(options.link_options())
        self.uid = new_uid(8)
        self.readers: dict[str, StreamReader] = {}
        self._tg: TaskGroup | None = None

    def __call__(self, namespace: LocalNamespace) -> RedisStreamsAdapter:
        return RedisStreamsAdapter(namespace, self)

    def reader(self, stream: str) -> StreamReader:
        """The reader of ``stream``, started with the server (or now, if it runs)."""
        reader = self.readers.get(stream)
        if reader is None:
            reader = self.readers[stream] = StreamReader(stream, self.options, self.uid)
            if self._tg is not None:
                self._tg.start_soon(reader.run)
        return reader

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the link and the readers; ``Server.lifespan`` enters this around everything else."""
        async with self.link.running(), anyio.create_task_group() as tg:
            self._tg = tg
            for reader in self.readers.values():
                tg.start_soon(reader.run)
            try:
                yield
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    @property
    def health(self) -> RedisHealth:
        """The link's health; ``connected`` only while every stream is read too."""
        link = self.link.health
        down = [r for r in self.readers.values() if not r.reading]
        if not down:
            return link
        return RedisHealth(
            False, link.subscribed, down[0].last_error or link.last_error, link.since
        )


class RedisStreamsAdapter(PeeringAdapter):
    """One namespace's rooms, with every operation spanning the cluster, and its sessions."""

    supports_recovery = True
    durable_sessions = True
    FETCH_KIND = MessageType.FETCH_SOCKETS
    SERVER_SIDE_EMIT_KIND = MessageType.SERVER_SIDE_EMIT

    @classmethod
    def factory(cls, url: str = DEFAULT_URL, **options: Any) -> RedisStreamsAdapterFactory:
        """A factory for ``Server(adapter=...)``; ``options`` as in :class:`StreamsOptions`."""
        return RedisStreamsAdapterFactory(StreamsOptions(url=url, **options))

    def __init__(self, namespace: LocalNamespace, factory: RedisStreamsAdapterFactory) -> None:
        options = factory.options
        super().__init__(
            namespace, factory.link, uid=new_uid(8), requests_timeout=options.requests_timeout
        )
        self.options = options
        self.link = factory.link
        self._factory = factory
        self.stream = wire.stream_name(namespace.name, options.stream_name, options.stream_count)
        self.reader = factory.reader(self.stream)
        self.channels = wire.Channels(options.channel_prefix, namespace.name)
        #: The owner token of each session this node may write (see ``save_session``).
        self._owner_tokens: dict[str, str] = {}

    @property
    def health(self) -> RedisHealth:
        """The factory's health: the link's, ``connected`` only while the streams are read too."""
        return self._factory.health

    def _subscriptions(self) -> dict[str, Dispatcher]:
        return {
            self.channels.public: self._on_pubsub,
            self.channels.private(self.uid): self._on_pubsub,
        }

    async def init(self) -> None:
        self.reader.adapters[self.namespace.name] = self
        await self.link.listen(self._subscriptions(), {})
        if self.reader.last_id is None:  # so that recovery_offset() is a real entry id
            with anyio.move_on_after(self.options.startup_timeout):
                while self.reader.last_id is None:
                    await self.reader.wait_advanced()

    async def close(self) -> None:
        if self.reader.adapters.get(self.namespace.name) is self:
            del self.reader.adapters[self.namespace.name]
        await self.link.unlisten(self._subscriptions(), ())

    # -- publishing ----------------------------------------------------------------

    async def _append(self, kind: MessageType, data: Any) -> str:
        """XADD one entry; its id. :class:`ClusterUnavailableError` when Redis is down."""
        fields = wire.encode_entry(
            self.uid, self.namespace.name, kind, data, only_plaintext=self.options.only_plaintext
        )
        entry_id = await self.link.run(
            "append to the stream",
            lambda client: client.xadd(
                self.stream,
                fields,
                trim_strategy=coredis.PureToken.MAXLEN,
                trim_operator=coredis.PureToken.APPROXIMATELY,
                threshold=self.options.max_len,
            ),
        )
        return _text(entry_id)

    @property
    def request_channel(self) -> str:
        return self.channels.public

    def _message(self, kind: MessageType, data: Any) -> bytes:
        return wire.encode_message(self.uid, self.namespace.name, kind, data)

    def _ack_request(
        self, request_id: str, packet: Packet, opts: BroadcastOptions, seconds: float
    ) -> bytes:
        data = wire.broadcast_with_ack_data(packet, request_id, opts, seconds)
        return self._message(MessageType.BROADCAST, data)

    def _fetch_request(self, request_id: str, opts: BroadcastOptions) -> bytes:
        return self._message(MessageType.FETCH_SOCKETS, wire.fetch_sockets_data(opts, request_id))

    def _server_side_emit_request(self, data: list[Any], request_id: str | None) -> bytes:
        body = wire.server_side_emit_data(data, request_id)
        return self._message(MessageType.SERVER_SIDE_EMIT, body)

    def _respond(self, requester: str | None, kind: MessageType, data: Any) -> None:
        if requester is None:
            return
        self.link.publish_soon(self.channels.private(requester), self._message(kind, data))

    # -- outgoing ------------------------------------------------------------------

    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        if opts.local:
            self.broadcast_now(packet, opts)
            return
        data = wire.broadcast_data(packet, opts)
        if self.namespace.recovery is None or not is_recoverable(packet, opts):
            self.broadcast_now(packet, opts)
            await self._append(MessageType.BROADCAST, data)
            return
        try:
            await self._append(MessageType.BROADCAST, data)
        except ClusterUnavailableError:
            self.broadcast_now(packet, opts)  # no offset: it cannot be replayed
            raise
        # Delivered here by the reader, in stream order with the other nodes' events.

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        await super().add_sockets(opts, rooms)
        if not opts.local:
            await self._append(MessageType.SOCKETS_JOIN, wire.sockets_join_data(opts, rooms))

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        await super().del_sockets(opts, rooms)
        if not opts.local:
            await self._append(MessageType.SOCKETS_LEAVE, wire.sockets_join_data(opts, rooms))

    async def disconnect_sockets(self, opts: BroadcastOptions, *, close: bool) -> None:
        if not opts.local:  # appended first: local handlers may take a while
            data = wire.disconnect_data(opts, close=close)
            await self._append(MessageType.DISCONNECT_SOCKETS, data)
        await super().disconnect_sockets(opts, close=close)

    # -- incoming: the stream ------------------------------------------------------

    def on_entry(self, entry_id: str, fields: Mapping[Any, Any]) -> None:
        """One entry of this namespace, in stream order (called by the reader)."""
        message = wire.decode_entry(fields)
        if message.nsp != self.namespace.name:
            return
        mine = message.uid == self.uid
        if message.type == MessageType.BROADCAST:
            broadcast = wire.decode_broadcast(message)
            if broadcast.request_id is not None:
                return  # acks travel over pub/sub; not expected here
            recover = self.namespace.recovery is not None and is_recoverable(
                broadcast.packet, broadcast.opts
            )
            if mine and not recover:
                return  # delivered when it was sent
            packet = broadcast.packet
            if recover:
                packet = replace(packet, data=[*packet.data, entry_id])
            self.broadcast_now(packet, broadcast.opts)
        elif mine:
            return
        elif message.type in (MessageType.SOCKETS_JOIN, MessageType.SOCKETS_LEAVE):
            data = message.data if isinstance(message.data, dict) else {}
            opts, _ = options_from(data.get("opts"))
            rooms = wire.room_list(data.get("rooms"))
            if message.type == MessageType.SOCKETS_JOIN:
                self.add_sockets_now(opts, rooms)
            else:
                self.del_sockets_now(opts, rooms)
        elif message.type == MessageType.DISCONNECT_SOCKETS:
            data = message.data if isinstance(message.data, dict) else {}
            opts, _ = options_from(data.get("opts"))
            self.link.start_soon(
                partial(
                    InMemoryAdapter.disconnect_sockets, self, opts, close=bool(data.get("close"))
                )
            )

    # -- incoming: pub/sub ---------------------------------------------------------

    def _on_pubsub(self, channel: str, raw: bytes) -> None:
        message = wire.decode_message(raw)
        if message.uid == self.uid or message.nsp != self.namespace.name:
            return
        data = message.data if isinstance(message.data, dict) else {}
        try:
            kind = MessageType(message.type)
        except ValueError:
            return  # a type of a newer version
        if kind == MessageType.BROADCAST and "requestId" in data:
            self._remote_broadcast_with_ack(message)
        elif kind == MessageType.FETCH_SOCKETS:
            opts, _ = options_from(data.get("opts"))
            found = [self.namespace.local_socket(sid) for sid in self._targets(opts)]
            sockets = [socket_object(s) for s in found if s is not None]  # type: ignore[arg-type]
            reply = wire.fetch_sockets_response_data(str(data.get("requestId")), sockets)
            self._respond(message.uid, MessageType.FETCH_SOCKETS_RESPONSE, reply)
        elif kind == MessageType.SERVER_SIDE_EMIT:
            self.link.start_soon(self._server_side, message.uid, data)
        elif kind == MessageType.BROADCAST_CLIENT_COUNT:
            self._ack_count(data.get("requestId"), data.get("clientCount"))
        elif kind == MessageType.BROADCAST_ACK:
            self._ack_answer(data.get("requestId"), data.get("packet"))
        elif kind == MessageType.FETCH_SOCKETS_RESPONSE:
            found_there = data.get("sockets")
            self._answer(data, kind, found_there if isinstance(found_there, list) else [])
        elif kind == MessageType.SERVER_SIDE_EMIT_RESPONSE:
            self._answer(data, kind, data.get("packet"))

    def _answer(self, data: dict[str, Any], kind: MessageType, value: Any) -> None:
        request_id = data.get("requestId")
        if isinstance(request_id, str) and self._request_kinds.get(request_id) == _REQUEST_OF[kind]:
            self.requests.answer(request_id, value)

    async def _server_side(self, requester: str | None, data: dict[str, Any]) -> None:
        request_id = data.get("requestId")

        def reply(result: Any) -> None:
            body = wire.server_side_emit_response_data(str(request_id), result)
            self._respond(requester, MessageType.SERVER_SIDE_EMIT_RESPONSE, body)

        await self._run_server_side(data.get("packet"), reply if request_id is not None else None)

    def _remote_broadcast_with_ack(self, message: wire.Message) -> None:
        broadcast = wire.decode_broadcast(message)
        request_id = str(broadcast.request_id)
        self._answer_broadcast_with_ack(
            broadcast.packet,
            broadcast.opts,
            lambda n: self._respond(
                message.uid,
                MessageType.BROADCAST_CLIENT_COUNT,
                wire.client_count_data(request_id, n),
            ),
            lambda value: self._respond(
                message.uid, MessageType.BROADCAST_ACK, wire.broadcast_ack_data(request_id, value)
            ),
        )

    # -- connection state recovery -------------------------------------------------

    def recovery_offset(self) -> str | None:
        return self.reader.last_id

    def _ttl_ms(self, *, connected: bool) -> int:
        recovery = self.namespace.recovery
        seconds = recovery.max_disconnection_duration if recovery is not None else 120.0
        if connected:
            seconds *= self.options.live_session_factor
        return max(1, math.ceil(seconds * 1000))

    async def save_session(self, record: SessionRecord, *, connected: bool) -> None:
        """SET the record in Node's format, with a TTL of ``max_disconnection_duration``
        (``live_session_factor`` times that while connected), unless another node
        has restored the session since: then this node's copy is stale and dropped."""
        prefix = self.options.session_key_prefix
        token = self._owner_tokens.setdefault(record.pid, f"{self.uid}:{new_uid(8)}")
        keys = [wire.session_key(prefix, record.pid), wire.owner_key(prefix, record.pid)]
        args = [wire.encode_session(record), self._ttl_ms(connected=connected), token]
        written = await self.link.run(
            "save session",
            lambda client: client.eval(_SAVE_SESSION, keys, args),  # type: ignore[arg-type]
        )
        if not connected or not written:
            self._owner_tokens.pop(record.pid, None)
        if not written:
            logger.debug("session %s was restored elsewhere: not saved", record.pid)

    async def discard_session(self, pid: str) -> None:
        prefix = self.options.session_key_prefix
        self._owner_tokens.pop(pid, None)
        keys = [wire.session_key(prefix, pid), wire.owner_key(prefix, pid)]
        await self.link.run("discard session", lambda client: client.delete(keys))

    async def restore_session(
        self,
        pid: str,
        offset: str | None,
        attach: Callable[[RestoredSession], None],
    ) -> RestoredSession:
        if offset is not None and not wire.OFFSET_RE.fullmatch(offset):
            raise RecoveryError(RecoveryFailure.UNKNOWN_OFFSET, f"malformed offset {offset!r}")
        prefix = self.options.session_key_prefix
        token = f"{self.uid}:{new_uid(8)}"
        keys = [wire.session_key(prefix, pid), wire.owner_key(prefix, pid)]
        try:
            raw = await self.link.run(
                "restore session",
                lambda client: client.eval(
                    _TAKE_SESSION,
                    keys,
                    [token, self._ttl_ms(connected=True)],
                ),
            )
        except ClusterUnavailableError as exc:
            raise RecoveryError(RecoveryFailure.STORE_UNAVAILABLE, str(exc)) from exc
        if raw is None:
            raise RecoveryError(RecoveryFailure.UNKNOWN_SESSION, pid)
        try:
            record = wire.decode_session(raw)  # type: ignore[arg-type]
        except ProtocolError as exc:
            raise RecoveryError(RecoveryFailure.UNKNOWN_SESSION, f"unreadable: {exc}") from exc
        start = offset or record.offset
        if start is None:
            raise RecoveryError(RecoveryFailure.UNKNOWN_OFFSET, "no offset")
        try:
            restored = await self._replay(record, start, attach)
        except ClusterUnavailableError as exc:
            raise RecoveryError(RecoveryFailure.STORE_UNAVAILABLE, str(exc)) from exc
        # Kept only for a session taken up (no await since attach: no save came first).
        self._owner_tokens[pid] = token
        return restored

    async def _replay(
        self, record: SessionRecord, start: str, attach: Callable[[RestoredSession], None]
    ) -> RestoredSession:
        """Collect what ``record`` missed after ``start``, then attach and join, as one step."""
        reader = self.reader
        key = wire.parse_offset(start)
        with anyio.move_on_after(self.options.restore_timeout):
            while reader.last_key is None or reader.last_key < key:
                await reader.wait_advanced()  # an offset another node's reader gave
        last = reader.last_key
        if last is None or last < key:
            failure = (
                RecoveryFailure.UNKNOWN_OFFSET
                if reader.reading
                else RecoveryFailure.STORE_UNAVAILABLE
            )
            raise RecoveryError(failure, f"{start} is not in the stream as read here")
        missed: list[list[Any]] = []
        if not reader.reaches_back_to(key):
            found = await self.link.run(
                "check offset", lambda client: client.xrange(self.stream, start, start, count=1)
            )
            if not found:
                raise RecoveryError(RecoveryFailure.UNKNOWN_OFFSET, f"{start} was trimmed")
            cursor = start
            # Each page may run into the ring, which moves while a page is awaited:
            # the check and the steps after it below happen with no await between.
            pages = self.options.max_len // self.options.restore_page_size + 10
            for _ in range(pages):
                page = await self.link.run("read missed events", partial(self._page, cursor))
                reached = not page
                for entry in page:
                    entry_id = _text(entry.identifier)
                    entry_key = wire.parse_offset(entry_id)
                    last_now = reader.last_key
                    if reader.reaches_back_to(entry_key) or (
                        last_now is not None and entry_key > last_now
                    ):
                        reached = True  # the ring (or live delivery) has the rest
                        break
                    self._collect(entry_id, entry.field_values, record.rooms, missed)
                    cursor = entry_id
                if reached:
                    key = wire.parse_offset(cursor)
                    break
            else:
                raise RecoveryError(RecoveryFailure.UNKNOWN_OFFSET, "too far behind")
        elif not reader.holds(key):
            raise RecoveryError(RecoveryFailure.UNKNOWN_OFFSET, f"{start} is not an entry")
        # From here on no await: the reader cannot slip an entry between replay and join.
        for _, entry_id, fields in islice(reader.ring, reader.index_after(key), None):
            self._collect(entry_id, fields, record.rooms, missed)
        restored = RestoredSession(record, missed)
        attach(restored)
        self.join_now(record.sid, (record.sid, *record.rooms))
        return restored

    async def _page(self, after: str, client: coredis.Redis[bytes]) -> tuple[Any, ...]:
        """The entries after ``after`` (exclusive, as Node computes it), one page."""
        page_size = self.options.restore_page_size
        return await client.xrange(self.stream, wire.next_offset(after), "+", count=page_size)

    def _collect(
        self, entry_id: str, fields: Mapping[Any, Any], rooms: list[str], missed: list[list[Any]]
    ) -> None:
        """Keep the entry's event if it is a recoverable broadcast of this namespace for them."""
        try:
            message = wire.decode_entry(fields)
            if message.nsp != self.namespace.name or message.type != MessageType.BROADCAST:
                return
            broadcast = wire.decode_broadcast(message)
        except ProtocolError:
            return
        if broadcast.request_id is not None or not is_recoverable(broadcast.packet, broadcast.opts):
            return
        opts = broadcast.opts
        if should_include(rooms, opts.rooms, opts.except_rooms):
            missed.append([*broadcast.packet.data, entry_id])
