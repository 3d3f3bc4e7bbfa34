"""Emit into a cluster from a process that runs no server: a task queue worker, a script.

The emitter publishes to Redis what a server's Redis adapter publishes, in the
format of ``@socket.io/redis-emitter`` 5.x (see :mod:`realtime.emitter_wire`),
so it drives a cluster of our nodes, of Node nodes, or of both.

:class:`Emitter` blocks (redis-py's client), for sync code such as a Celery task;
:class:`AsyncEmitter` awaits (coredis, on anyio: asyncio and trio alike)::

    emitter = Emitter("redis://127.0.0.1:6379/0")  # or redis+sentinel://, redis+cluster://
    emitter.to("room-1").emit("news", {"id": 1})

    async with AsyncEmitter("redis://127.0.0.1:6379/0") as emitter:
        await emitter.of("/chat").except_("muted").emit("news", b"\\x00")

Chains (``of``, ``to``, ``in_``, ``except_``, ``volatile``, ``compress``) return
new emitters sharing one Redis client, so a partial chain can be kept.
Redis pub/sub has no replay: what is published while no node listens is lost,
and :meth:`Emitter.emit` returns how many nodes' subscriptions received it.
"""

from __future__ import annotations

import copy
import types
from typing import TYPE_CHECKING, Any, Self

import anyio

from realtime import emitter_wire as wire
from realtime.emitter_wire import DEFAULT_KEY, Publish, Selection
from realtime.exceptions import PublishError
from realtime.redis_topology import coredis_client, redis_py_client

if TYPE_CHECKING:
    from collections.abc import Iterable
    from contextlib import AbstractAsyncContextManager

    import coredis
    import redis

#: Where the emitters connect when given no URL.
DEFAULT_URL = "redis://127.0.0.1:6379/0"

#: Seconds one publish may take, connecting included, before :class:`PublishError`.
DEFAULT_TIMEOUT = 5.0


class _Chain:
    """The selection half shared by both emitters: key, namespace, rooms, flags."""

    __slots__ = ("_key", "_selection")

    def __init__(self, key: str, selection: Selection) -> None:
        self._key = key
        self._selection = selection

    def _with(self, selection: Selection) -> Self:
        clone = copy.copy(self)
        clone._selection = selection
        return clone

    def of(self, namespace: str) -> Self:
        """The same emitter for another namespace (``"chat"`` means ``"/chat"``)."""
        return self._with(Selection(wire.namespace_name(namespace)))

    def to(self, rooms: str | Iterable[str]) -> Self:
        """Also target sockets in ``rooms`` (the union of every ``to`` in the chain)."""
        return self._with(self._selection.to(rooms))

    in_ = to

    def except_(self, rooms: str | Iterable[str]) -> Self:
        """Leave out sockets in any of ``rooms``."""
        return self._with(self._selection.except_(rooms))

    @property
    def volatile(self) -> Self:
        """Let servers drop the event for clients not ready to receive it."""
        return self._with(self._selection.flag("volatile", True))

    def compress(self, value: bool) -> Self:
        """The per-message compression flag servers pass on to their transports."""
        return self._with(self._selection.flag("compress", value))

    @property
    def namespace(self) -> str:
        return self._selection.namespace


class _ClientBox:
    """The coredis client an :class:`AsyncEmitter` and its chained copies share."""

    __slots__ = ("client", "connect")

    def __init__(self, client: coredis.Redis[bytes] | None) -> None:
        self.client = client
        self.connect: AbstractAsyncContextManager[coredis.Redis[bytes]] | None = None


def _missing(extra_package: str) -> ImportError:
    return ImportError(
        f"the emitter needs {extra_package!r}: install realtime[redis] "
        f"(pip install 'realtime[redis]')"
    )


class Emitter(_Chain):
    """Blocking emitter on redis-py's client.

    ``timeout`` bounds each connect and each reply; a failed publish is retried
    once on a fresh connection (a Redis restart leaves stale pooled ones), then
    raises :class:`PublishError`. Pass ``client`` to reuse a ``redis.Redis``
    you own (it must not decode responses); :meth:`close` then leaves it open.
    """

    __slots__ = ("_client", "_owns_client")

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        key: str = DEFAULT_KEY,
        timeout: float = DEFAULT_TIMEOUT,
        client: redis.Redis | None = None,
    ) -> None:
        super().__init__(key, Selection())
        self._owns_client = client is None
        if client is None:
            try:
                from redis.backoff import NoBackoff
                from redis.retry import Retry
            except ImportError:
                raise _missing("redis") from None
            client = redis_py_client(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),
            )
        self._client = client

    def _publish(self, message: Publish) -> int:
        import redis as redis_py

        try:
            received = self._client.publish(message.channel, message.payload)
        except (redis_py.RedisError, OSError) as exc:
            raise PublishError(f"publish to {message.channel!r} failed: {exc}") from exc
        return received

    def emit(self, event: str, *args: Any) -> int:
        """Send ``event`` with ``args`` to every selected client of the cluster.

        Returns the number of subscriptions (about one per server node) that
        received it: 0 means no node was listening, and the event is lost. On
        a Redis Cluster only the subscriptions of the node that took the
        publish are counted (the others receive it all the same).
        """
        return self._publish(wire.broadcast(self._key, self._selection, event, args))

    def send(self, *args: Any) -> int:
        return self.emit("message", *args)

    def sockets_join(self, rooms: str | Iterable[str]) -> None:
        """Make every selected socket of the cluster join ``rooms``."""
        self._publish(wire.sockets_join(self._key, self._selection, rooms))

    def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        """Make every selected socket of the cluster leave ``rooms``."""
        self._publish(wire.sockets_leave(self._key, self._selection, rooms))

    def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every selected socket; ``close`` also closes its connection."""
        self._publish(wire.disconnect_sockets(self._key, self._selection, close))

    def server_side_emit(self, event: str, *args: Any) -> None:
        """Call the server-side ``event`` listeners of every node (no acknowledgements)."""
        self._publish(wire.server_side_emit(self._key, self._selection, event, args))

    def close(self) -> None:
        """Close the Redis connections, unless the client was passed in."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


class AsyncEmitter(_Chain):
    """Awaiting emitter on coredis, which runs on anyio (asyncio and trio).

    Use it as ``async with AsyncEmitter(url) as emitter:``: coredis opens its
    connection pool there. ``timeout`` bounds each publish, connecting
    included; past it, or when Redis is unreachable, :class:`PublishError`.
    Pass ``client`` to reuse a ``coredis.Redis`` you already entered (it must
    not decode responses); the emitter then neither opens nor closes it.
    """

    __slots__ = ("_box", "_owns_client", "_timeout")

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        key: str = DEFAULT_KEY,
        timeout: float = DEFAULT_TIMEOUT,
        client: coredis.Redis[bytes] | None = None,
    ) -> None:
        super().__init__(key, Selection())
        self._timeout = timeout
        self._owns_client = client is None
        self._box = _ClientBox(client)  # shared by chained copies, filled on entry
        if client is None:
            try:
                from coredis.exceptions import ConnectionError as RedisConnectionError
                from coredis.retry import ConstantRetryPolicy
            except ImportError:
                raise _missing("coredis") from None
            self._box.connect = coredis_client(
                url,
                connect_timeout=timeout,
                stream_timeout=timeout,
                retry_policy=ConstantRetryPolicy((RedisConnectionError,), 1, delay=0),
            )

    async def _publish(self, message: Publish) -> int:
        import coredis as coredis_

        client = self._box.client
        if client is None:
            raise PublishError("the emitter is not entered: use 'async with AsyncEmitter(...)'")
        try:
            with anyio.fail_after(self._timeout):
                return await client.publish(message.channel, message.payload)
        except (coredis_.exceptions.RedisError, OSError, TimeoutError) as exc:
            raise PublishError(f"publish to {message.channel!r} failed: {exc!r}") from exc

    async def emit(self, event: str, *args: Any) -> int:
        """Send ``event`` with ``args`` to every selected client of the cluster.

        Returns the number of subscriptions (about one per server node) that
        received it: 0 means no node was listening, and the event is lost. On
        a Redis Cluster only the subscriptions of the node that took the
        publish are counted (the others receive it all the same).
        """
        return await self._publish(wire.broadcast(self._key, self._selection, event, args))

    async def send(self, *args: Any) -> int:
        return await self.emit("message", *args)

    async def sockets_join(self, rooms: str | Iterable[str]) -> None:
        """Make every selected socket of the cluster join ``rooms``."""
        await self._publish(wire.sockets_join(self._key, self._selection, rooms))

    async def sockets_leave(self, rooms: str | Iterable[str]) -> None:
        """Make every selected socket of the cluster leave ``rooms``."""
        await self._publish(wire.sockets_leave(self._key, self._selection, rooms))

    async def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect every selected socket; ``close`` also closes its connection."""
        await self._publish(wire.disconnect_sockets(self._key, self._selection, close))

    async def server_side_emit(self, event: str, *args: Any) -> None:
        """Call the server-side ``event`` listeners of every node (no acknowledgements)."""
        await self._publish(wire.server_side_emit(self._key, self._selection, event, args))

    async def __aenter__(self) -> Self:
        connect = self._box.connect
        if self._owns_client and connect is not None:
            self._box.client = await connect.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        connect = self._box.connect
        if self._owns_client and connect is not None:
            self._box.client = None
            await connect.__aexit__(exc_type, exc, tb)
