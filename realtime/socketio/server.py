"""The Socket.IO server: namespaces, the engine underneath, and the ASGI entry points."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import anyio
from starlette.types import ASGIApp

from realtime.adapters.base import Adapter, LocalNamespace, SocketDetails
from realtime.adapters.memory import InMemoryAdapter
from realtime.adapters.recovery import RecoveryOptions
from realtime.adapters.session_memory import SessionAwareAdapter
from realtime.engineio import CloseReason, EngineConfig, EngineServer, EngineSession
from realtime.engineio.config import AllowRequest, Transport
from realtime.socketio.broadcast import BroadcastOperator, Rooms
from realtime.socketio.connection import Connection
from realtime.socketio.handlers import Handler, Middleware
from realtime.socketio.namespace import Namespace, NamespaceMatcher, ParentNamespace
from realtime.socketio.observer import SocketObserver, combine
from realtime.socketio.packets import MAIN_NAMESPACE, DecoderLimits, Packet, PacketType

if TYPE_CHECKING:
    from realtime.admin import Monitor

logger = logging.getLogger("realtime.socketio")

H = TypeVar("H", bound=Handler)

AdapterFactory = Callable[[LocalNamespace], Adapter]


class Server:
    """A Socket.IO v5 server over Engine.IO v4, served as an ASGI app.

    Calls on the server itself (``on``, ``use``, ``emit``, ``to``...) act on the
    main namespace ``"/"``, as in the reference server; use :meth:`of` for others.

    ``connect_timeout`` (seconds, must be positive: a ``ValueError`` otherwise,
    since the protocol requires the sweep) closes connections that join no
    namespace in time; ``cleanup_empty_child_namespaces`` removes a dynamic
    namespace's child (and closes its adapter) when its last socket leaves, as
    the reference server's option of that name does, so that clients cannot
    leave one namespace behind per name they tried; ``async_handlers`` runs
    each event handler as if in its own task (so a handler may await an ack
    from the same client), and ``max_inflight_events`` bounds how many events
    (connects and disconnects included) of one client run or wait at once:
    past it the server stops reading that client until one finishes;
    ``limits`` bounds what a client may send. The rest configures
    the engine (see :class:`EngineConfig`), or pass a whole ``engine_config``.
    """

    def __init__(
        self,
        *,
        path: str = "/socket.io",
        cors_origins: Sequence[str] | Literal["*"] | None = None,
        cors_credentials: bool = False,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_payload: int = 1_000_000,
        transports: Sequence[Transport] = ("polling", "websocket"),
        allow_request: AllowRequest | None = None,
        connect_timeout: float = 45.0,
        cleanup_empty_child_namespaces: bool = False,
        async_handlers: bool = True,
        max_inflight_events: int = 64,
        limits: DecoderLimits | None = None,
        adapter: AdapterFactory | None = None,
        connection_state_recovery: RecoveryOptions | bool = False,
        engine_config: EngineConfig | None = None,
    ) -> None:
        if not connect_timeout > 0:  # NaN too
            raise ValueError("connect_timeout must be positive")
        config = engine_config or EngineConfig(
            path=path,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_payload=max_payload,
            transports=transports,
            cors_origins=cors_origins,
            cors_credentials=cors_credentials,
            allow_request=allow_request,
        )
        self.engine = EngineServer(self, config)
        self.connect_timeout = connect_timeout
        self.cleanup_empty_child_namespaces = cleanup_empty_child_namespaces
        self.async_handlers = async_handlers
        if max_inflight_events < 1:
            raise ValueError("max_inflight_events must be at least 1")
        self.max_inflight_events = max_inflight_events
        self.limits = limits or DecoderLimits()
        #: Connection state recovery's options; ``None``: off (the default, as in
        #: the reference server). ``True`` takes the defaults of :class:`RecoveryOptions`.
        self.recovery: RecoveryOptions | None = (
            RecoveryOptions()
            if connection_state_recovery is True
            else connection_state_recovery or None
        )
        if adapter is None:
            adapter = SessionAwareAdapter if self.recovery is not None else InMemoryAdapter
        self.adapter_factory = adapter
        self.namespaces: dict[str, Namespace] = {}
        self.parent_namespaces: list[ParentNamespace] = []
        self.connections: dict[str, Connection] = {}
        #: Engine sessions that have not joined a namespace yet, with their deadline.
        self._unjoined: dict[str, float] = {}
        self._started = False
        #: The Admin UI's instrumentation, once :meth:`instrument` made it.
        self.monitor: Monitor | None = None
        #: Told about sockets, rooms, events, packets and drops when set (metrics, the
        #: Admin UI: see :meth:`observe`); ``None`` costs one attribute test per hook.
        self.observer: SocketObserver | None = None
        self.main = self.of(MAIN_NAMESPACE)

    def observe(self, observer: SocketObserver) -> None:
        """Report to ``observer`` from now on, as well as to any observer already set.

        The server and its engine share it (see :mod:`realtime.socketio.observer`).
        Observe before serving: a session open already may not report every hook.
        """
        self.observer = combine(self.observer, observer)
        self.engine.observer = self.observer

    def instrument(self, **options: Any) -> Monitor:
        """Serve the Socket.IO Admin UI's namespace: see :func:`realtime.admin.instrument`."""
        from realtime.admin import instrument

        return instrument(self, **options)

    # -- namespaces ---------------------------------------------------------------

    @overload
    def of(self, name: str) -> Namespace: ...

    @overload
    def of(self, name: re.Pattern[str] | NamespaceMatcher) -> ParentNamespace: ...

    def of(self, name: str | re.Pattern[str] | NamespaceMatcher) -> Namespace | ParentNamespace:
        """The namespace ``name`` (created on first use), or a dynamic namespace parent
        for a regex (matched in full) or a ``(name, auth) -> bool`` callable."""
        if isinstance(name, str):
            if not name.startswith("/"):
                name = "/" + name
            namespace = self.namespaces.get(name)
            if namespace is None:
                namespace = self.namespaces[name] = Namespace(self, name)
            return namespace
        parent = ParentNamespace(self, name)
        self.parent_namespaces.append(parent)
        return parent

    # -- the main namespace, for short ------------------------------------------------

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...

    @overload
    def on(self, event: str, handler: H) -> H: ...

    def on(self, event: str, handler: H | None = None) -> H | Callable[[H], H]:
        """Register a handler on the main namespace (see :meth:`Namespace.on`)."""
        if handler is None:
            return self.main.on(event)
        return self.main.on(event, handler)

    def off(self, event: str) -> None:
        self.main.off(event)

    def use(self, middleware: Middleware) -> Middleware:
        """Connect middleware of the main namespace (as ``io.use`` in the reference server)."""
        return self.main.use(middleware)

    def to(self, rooms: Rooms) -> BroadcastOperator:
        return self.main.to(rooms)

    in_ = to

    def except_(self, rooms: Rooms) -> BroadcastOperator:
        return self.main.except_(rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self.main.volatile

    @property
    def local(self) -> BroadcastOperator:
        return self.main.local

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self.main.timeout(seconds)

    async def emit(self, event: str, *args: Any) -> None:
        await self.main.emit(event, *args)

    async def send(self, *args: Any) -> None:
        await self.main.send(*args)

    async def fetch_sockets(self) -> list[SocketDetails]:
        return await self.main.fetch_sockets()

    async def sockets_join(self, rooms: Rooms) -> None:
        await self.main.sockets_join(rooms)

    async def sockets_leave(self, rooms: Rooms) -> None:
        await self.main.sockets_leave(rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self.main.disconnect_sockets(close)

    @overload
    def on_server(self, event: str) -> Callable[[H], H]: ...

    @overload
    def on_server(self, event: str, handler: H) -> H: ...

    def on_server(self, event: str, handler: H | None = None) -> H | Callable[[H], H]:
        """Handle an event other servers send (see :meth:`Namespace.on_server`)."""
        if handler is None:
            return self.main.on_server(event)
        return self.main.on_server(event, handler)

    async def server_side_emit(self, event: str, *args: Any) -> int:
        return await self.main.server_side_emit(event, *args)

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        return await self.main.server_side_emit_with_ack(event, *args)

    def instrument_metrics(self, **options: Any) -> Any:
        """Turn on Prometheus metrics (needs ``prometheus-client``: the ``metrics`` extra).

        Returns the :class:`realtime.metrics.Metrics`; ``options`` go to it.
        Imported here, so that a server without metrics never loads it.
        """
        from realtime.metrics import Metrics

        return Metrics(**options).instrument(self)

    # -- running ------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run the server: enter this from the host app's lifespan when mounting it.

        On exit every client is disconnected with "server shutting down".
        """
        # A multi-process adapter's factory may own a connection shared by every
        # namespace (one Redis link per server): it runs around everything else.
        backend = getattr(self.adapter_factory, "lifespan", None)
        # A factory whose bus can carry connections between nodes hands the engine
        # a session relay: any node then serves any session (no sticky sessions).
        session_relay = getattr(self.adapter_factory, "session_relay", None)
        if session_relay is not None and self.engine.relay is None:
            self.engine.relay = session_relay()
        async with backend() if backend is not None else nullcontext():
            for namespace in list(self.namespaces.values()):
                await namespace.adapter.init()
            self._started = True
            try:
                async with self.engine.lifespan():
                    self.engine.start_soon(self._close_unjoined)
                    if self.recovery is not None:
                        self.engine.start_soon(self._refresh_sessions, self.recovery)
                    if self.observer is not None:
                        self.observer.started()
                    yield
            finally:
                self._started = False
                with anyio.CancelScope(shield=True):
                    for namespace in list(self.namespaces.values()):
                        await namespace.adapter.close()

    def asgi_app(self, other_app: ASGIApp | None = None, path: str | None = None) -> ASGIApp:
        """An ASGI app serving Socket.IO at ``path`` and ``other_app`` everywhere else.

        Its lifespan runs this server and forwards to ``other_app``'s lifespan.
        """
        from realtime.socketio.asgi import SocketIOApp

        if path is not None:
            engine_path = path.rstrip("/") + "/"
            if engine_path != self.engine.config.path:
                if self.engine.running:
                    raise RuntimeError("cannot change the path of a running server")
                self.engine.config = replace(self.engine.config, path=engine_path)
        return SocketIOApp(self, other_app)

    # -- the engine's handler -----------------------------------------------------

    async def on_connect(self, session: EngineSession) -> None:
        connection = Connection(self, session, self.limits, self.max_inflight_events)
        self.connections[session.sid] = connection
        self._unjoined[session.sid] = time.monotonic() + self.connect_timeout

    def joined(self, connection: Connection) -> None:
        self._unjoined.pop(connection.session.sid, None)

    async def _close_unjoined(self) -> None:
        """Spec: a server that gets no CONNECT in time MUST close the connection.

        One sweep, ten times per ``connect_timeout``, instead of a timer task
        per connection: connecting costs no task spawn and no cancellation.
        """
        while True:
            await anyio.sleep(self.connect_timeout / 10)
            now = time.monotonic()
            expired = [sid for sid, deadline in self._unjoined.items() if deadline <= now]
            for sid in expired:
                del self._unjoined[sid]
                connection = self.connections.get(sid)
                if connection is not None and not connection.sockets:
                    logger.debug("session %s joined no namespace in time", sid)
                    connection.session.close(CloseReason.FORCED_CLOSE)

    async def on_message(self, session: EngineSession, data: str | bytes) -> None:
        connection = self.connections.get(session.sid)
        if connection is not None:
            await connection.receive(data)

    async def on_disconnect(self, session: EngineSession, reason: CloseReason) -> None:
        self._unjoined.pop(session.sid, None)
        connection = self.connections.pop(session.sid, None)
        if connection is not None:
            await connection.closed(reason)

    async def _refresh_sessions(self, recovery: RecoveryOptions) -> None:
        """Save every live session again twice per ``max_disconnection_duration``, where
        sessions outlive the process: a record in the store never expires while its
        socket is connected, so a node that crashes leaves every session recoverable."""
        while True:
            await anyio.sleep(recovery.max_disconnection_duration / 2)
            for namespace in list(self.namespaces.values()):
                if not namespace.adapter.durable_sessions:
                    continue
                for socket in list(namespace.sockets.values()):
                    await socket.save_session()

    async def connect(self, connection: Connection, name: str, auth: dict[str, Any]) -> None:
        if connection.session.closed:
            return  # ended while this CONNECT waited its turn
        namespace = await self._resolve(name, auth)
        if namespace is None:
            connection.send(
                Packet(PacketType.CONNECT_ERROR, name, {"message": "Invalid namespace"})
            )
            return
        if namespace.parent is None:
            await namespace.connect(connection, auth)
            return
        # _resolve held the dynamic child: it is not cleaned up while this connect runs.
        try:
            await namespace.connect(connection, auth)
        finally:
            await namespace.parent.release(namespace)

    async def _resolve(self, name: str, auth: dict[str, Any]) -> Namespace | None:
        """The namespace ``name``, created from the first matching parent if needed.

        A dynamic child comes back held (see :meth:`ParentNamespace.hold`), taken
        before any await so that a cleanup cannot slip in between.
        """
        namespace = self.namespaces.get(name)
        if namespace is None:
            for parent in self.parent_namespaces:
                if not await parent.matches(name, auth):
                    continue
                # Another connect may have created it while the matcher ran: use
                # that one, or the sockets it holds would be orphaned.
                namespace = self.namespaces.get(name)
                if namespace is not None:
                    break
                child = parent.create_child(name)
                self.namespaces[name] = child
                parent.hold(child)
                if self._started:
                    try:
                        await child.adapter.init()
                    except BaseException:
                        await parent.release(child)
                        raise
                return child
        if namespace is not None and namespace.parent is not None:
            namespace.parent.hold(namespace)
        return namespace
