"""Server side of the Socket.IO Admin UI (``@socket.io/admin-ui`` 0.5).

``instrument(sio, auth=...)`` adds the ``/admin`` namespace the UI connects to
and a :class:`Monitor`, which observes the server through the same observer
interface as the Prometheus metrics (``realtime/socketio/observer.py``), so an
uninstrumented server pays one attribute test per hook. As in the reference
server, packets and bytes are counted per Engine.IO packet for the charts and
sent with the stats every ``stats_interval``; in development mode sockets
connecting and disconnecting, room changes (seen where the adapter makes them,
so a ``sockets_join`` from anywhere in a cluster is reported by the socket's
own node), transport upgrades, ``socket.data`` changes and events in and out
are sent as they happen.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket as _host
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from realtime.adapters.cluster import RemoteSocket
from realtime.adapters.memory import InMemoryAdapter
from realtime.adapters.session_memory import SessionAwareAdapter
from realtime.admin_wire import WatchedData, now_iso, serialize, serialize_remote
from realtime.engineio.config import Transport
from realtime.engineio.packets import OutPacket, message_size, utf8_size
from realtime.exceptions import ConnectionRefusedError
from realtime.socketio.observer import SocketObserver
from realtime.socketio.socket import Socket

if TYPE_CHECKING:
    from realtime.engineio.connection import EngineSession
    from realtime.socketio.namespace import Namespace
    from realtime.socketio.server import Server

logger = logging.getLogger(__name__)

#: Adapters that reach this process only: nobody elsewhere hears what the UI is sent.
_ONE_PROCESS = (InMemoryAdapter, SessionAwareAdapter)

Mode = Literal["development", "production"]

#: What the UI may do, by the names it uses (``Feature`` in its typed-events).
ACTIONS = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"]


class AdminConfigError(ValueError):
    """``instrument()`` got an ``auth`` it cannot use."""


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """Username and bcrypt hash (``$2a$``/``$2b$``/``$2y$``) the UI must present."""

    username: str
    password_hash: bytes

    @classmethod
    def parse(cls, auth: dict[str, Any]) -> BasicAuth:
        if auth.get("type") != "basic":
            raise AdminConfigError("auth must be False or {'type': 'basic', ...}")
        password = str(auth.get("password", ""))
        if not (password.startswith(("$2a$", "$2b$", "$2y$")) and len(password) == 60):
            raise AdminConfigError("the password field must be a valid bcrypt hash")
        return cls(str(auth.get("username", "")), password.encode())

    async def check(self, username: Any, password: Any) -> bool:
        if username != self.username or not isinstance(password, str):
            return False
        import bcrypt

        # bcrypt is slow on purpose: keep it off the event loop.
        return await anyio.to_thread.run_sync(bcrypt.checkpw, password.encode(), self.password_hash)


#: What waits in the monitor's queue: an event and its arguments (``None`` for
#: ``server_stats``, whose counts are taken when it is sent).
_Queued = tuple[str, tuple[Any, ...] | None]


@dataclass(eq=False)
class Monitor(SocketObserver):
    """The instrumentation of one server: what ``sio.monitor`` holds.

    It observes the server (see :mod:`realtime.socketio.observer`): packets and
    bytes for the charts, and in development mode sockets, rooms, transports
    and data, each sent to the UI as it happens. What it sends goes through
    one queue (at most ``max_queued`` waiting; past that, events are dropped
    with a warning) drained by one task, so that hooks never wait and the UI
    gets events in the order they happened.
    """

    server: Server
    admin: Namespace
    auth: BasicAuth | None
    mode: Mode
    read_only: bool
    server_id: str
    stats_interval: float
    max_sessions: int
    max_queued: int
    started_at: float = field(default_factory=time.monotonic)
    sessions: OrderedDict[str, None] = field(default_factory=OrderedDict)
    #: Aggregated counts not yet sent, by (second, type, subtype).
    events: dict[tuple[int, str, str | None], int] = field(default_factory=dict)
    #: Events dropped because the queue was full.
    dropped: int = 0
    _queue: MemoryObjectSendStream[_Queued] | None = None
    _overflowing: bool = False
    # A broadcast queues one packet for every recipient: its size is measured once.
    _last_packet: OutPacket | None = None
    _last_size: int | None = None

    @property
    def development(self) -> bool:
        return self.mode == "development"

    @property
    def running(self) -> bool:
        return self._queue is not None

    def features(self) -> list[str]:
        features = [] if self.read_only else list(ACTIONS)
        features.append("AGGREGATED_EVENTS")
        if self.development:
            features.append("ALL_EVENTS")
        return features

    # -- aggregated counts (the charts) ------------------------------------------------

    def count(self, kind: str, sub: str | None = None, n: int = 1) -> None:
        """An aggregated event (``rawConnection``, ``packetsOut``...) for the charts."""
        key = (int(time.time()), kind, sub)
        self.events[key] = self.events.get(key, 0) + n

    def handshake(self, transport: Transport) -> None:
        if not self.running:
            self.start()  # instrumented after the server started
        self.count("rawConnection")

    def session_closed(self, session: EngineSession, reason: str) -> None:
        self.count("rawDisconnection", reason)

    def message_in(self, data: str | bytes) -> None:
        # The reference counts packets with data: an empty text has none.
        if isinstance(data, str):
            if not data:
                return
            size = utf8_size(data)
        else:
            size = len(data)
        self.count("packetsIn")
        self.count("bytesIn", n=size)

    def packets_queued(self, packets: Sequence[OutPacket]) -> None:
        count = total = 0
        for packet in packets:
            if packet is self._last_packet:
                size = self._last_size
            else:
                size = message_size(packet)
                self._last_packet, self._last_size = packet, size
            if size is not None:
                count += 1
                total += size
        if count:
            self.count("packetsOut", n=count)
            self.count("bytesOut", n=total)

    # -- what the UI is told as it happens (development mode) ---------------------------

    def started(self) -> None:
        self.start()

    def socket_connected(self, socket: Socket) -> None:
        try:
            self._announce(socket)
        except Exception:  # never into the server's connect path
            logger.exception("Admin UI: could not report socket %s", socket.id)

    def _announce(self, socket: Socket) -> None:
        # What another node's Admin UI needs to list this socket (fetch_sockets
        # carries data, not the transport), as the reference server stores it.
        socket.data["_admin"] = {
            "clientId": socket.connection.session.sid[:12],
            "transport": socket.transport,
        }
        if not self.development:
            return
        nsp = socket.namespace
        name, sid = nsp.name, socket.id
        socket.data = WatchedData(socket.data, partial(self._data_changed, name, sid))
        if nsp is not self.admin:

            def received(event: str, *args: Any) -> None:
                self._push("event_received", name, sid, [event, *args], now_iso())

            def sent(event: str, *args: Any) -> None:
                self._push("event_sent", name, sid, [event, *args], now_iso())

            socket.on_any(received)
            socket.on_any_outgoing(sent)
        self._push("socket_connected", serialize(socket), now_iso())

    def socket_disconnected(self, socket: Socket, reason: str) -> None:
        if self.development:
            self._push("socket_disconnected", socket.namespace.name, socket.id, reason, now_iso())

    def room_joined(self, namespace: str, room: str, sid: str) -> None:
        if self.development:
            self._push("room_joined", namespace, room, sid, now_iso())

    def room_left(self, namespace: str, room: str, sid: str) -> None:
        if self.development:
            self._push("room_left", namespace, room, sid, now_iso())

    def upgrade_finished(self, session: EngineSession, ok: bool) -> None:
        connection = self.server.connections.get(session.sid) if ok else None
        if connection is None:
            return
        transport = session.transport
        for socket in list(connection.sockets.values()):
            admin = socket.data.get("_admin")
            if isinstance(admin, dict):
                admin["transport"] = transport
            if self.development and socket.connected:
                update = {"id": socket.id, "nsp": socket.namespace.name, "transport": transport}
                self._push("socket_updated", update)

    def _data_changed(self, nsp: str, sid: str, data: dict[str, Any]) -> None:
        shown = {k: v for k, v in data.items() if k != "_admin"}
        self._push("socket_updated", {"id": sid, "nsp": nsp, "data": shown})

    # -- the queue to the UI ------------------------------------------------------------

    def _push(self, event: str, *args: Any) -> None:
        """Queue ``event`` for every UI; never waits, never raises into the server."""
        self._put((event, args))

    def _put(self, item: _Queued) -> None:
        queue = self._queue
        if queue is None or not self.has_audience():
            return
        try:
            queue.send_nowait(item)
        except anyio.WouldBlock:
            event = item[0]
            self.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                logger.warning(
                    "Admin UI: %d events waiting to be sent (max_queued): dropping %s and "
                    "what follows until the queue drains",
                    self.max_queued,
                    event,
                )

    def start(self) -> None:
        """Start the queue and the stats tick (the server calls this when it starts; a
        late ``instrument()`` starts them on the first handshake)."""
        if self.running or not self.server.engine.running:
            return
        send, receive = anyio.create_memory_object_stream[_Queued](self.max_queued)
        self._queue = send
        self.server.engine.start_soon(self._run, send, receive)

    async def _run(
        self, send: MemoryObjectSendStream[_Queued], receive: MemoryObjectReceiveStream[_Queued]
    ) -> None:
        try:
            async with anyio.create_task_group() as tg, receive:
                tg.start_soon(self._tick)
                async for event, args in receive:
                    if args is None:
                        args = (self.stats(),)
                    await self._emit(event, *args)
                    if self._overflowing and not receive.statistics().current_buffer_used:
                        self._overflowing = False
        finally:
            if self._queue is send:
                self._queue = None
            send.close()

    async def _emit(self, event: str, *args: Any) -> None:
        """To every UI; a failure (a cluster adapter down) is logged, not raised."""
        try:
            await self.admin.emit(event, *args)
        except Exception:
            logger.exception("could not send %s to the Admin UI", event)

    async def _tick(self) -> None:
        while True:
            await anyio.sleep(self.stats_interval)
            if not self.has_audience():
                self.events = {}  # nobody to chart them for: keep memory flat
                continue
            # The counts are taken when it is sent: nothing queued falls in between.
            self._put(("server_stats", None))

    def has_audience(self) -> bool:
        """A UI may be listening: one is connected here, or on another node of a cluster
        (whose adapter forwards what this node emits)."""
        return bool(self.admin.sockets) or type(self.admin.adapter) not in _ONE_PROCESS

    # -- the /admin namespace -----------------------------------------------------

    async def middleware(self, socket: Socket) -> None:
        if self.auth is None:
            return
        auth = socket.handshake.auth
        session = auth.get("sessionId")
        if isinstance(session, str) and session in self.sessions:
            return
        if await self.auth.check(auth.get("username"), auth.get("password")):
            return
        raise ConnectionRefusedError("invalid credentials")

    async def on_connect(self, socket: Socket, auth: dict[str, Any]) -> None:
        if self.auth is not None and auth.get("sessionId") not in self.sessions:
            session = secrets.token_hex(8)
            self.sessions[session] = None
            while len(self.sessions) > self.max_sessions:
                self.sessions.popitem(last=False)
            await socket.emit("session", session)
        if not self.read_only:
            self._register_actions(socket)
        await socket.emit("config", {"supportedFeatures": self.features()})
        if self.development:
            await socket.emit("all_sockets", await self.all_sockets())
        await socket.emit("server_stats", self.stats())
        self.start()

    async def all_sockets(self) -> list[dict[str, Any]]:
        """Every socket of every node (``fetch_sockets`` spans the cluster)."""
        found: list[dict[str, Any]] = []
        for ns in self.namespaces():
            for member in await ns.fetch_sockets():
                if isinstance(member, RemoteSocket):
                    found.append(serialize_remote(member, ns.name))
                elif isinstance(member, Socket):
                    found.append(serialize(member))
        return found

    def namespaces(self) -> list[Namespace]:
        return list(self.server.namespaces.values())

    def _register_actions(self, socket: Socket) -> None:
        server = self.server

        def target(nsp: str, rooms: Any) -> Any:
            namespace = server.of(str(nsp))
            return namespace.to(rooms) if rooms else namespace

        async def emit(nsp: str, rooms: Any, event: str, *args: Any) -> None:
            await target(nsp, rooms).emit(str(event), *args)

        async def join(nsp: str, room: str, rooms: Any = None) -> None:
            await target(nsp, rooms).sockets_join(str(room))

        async def leave(nsp: str, room: str, rooms: Any = None) -> None:
            await target(nsp, rooms).sockets_leave(str(room))

        async def disconnect(nsp: str, close: Any = False, rooms: Any = None) -> None:
            await target(nsp, rooms).disconnect_sockets(bool(close))

        socket.on("emit", emit)
        socket.on("join", join)
        socket.on("leave", leave)
        socket.on("_disconnect", disconnect)

    def stats(self) -> dict[str, Any]:
        """The ``server_stats`` payload; takes (and clears) the aggregated counts."""
        sessions = self.server.engine.sessions.values()
        events: list[dict[str, Any]] = []
        for (ts, kind, sub), n in self.events.items():
            event: dict[str, Any] = {"timestamp": ts * 1000, "type": kind, "count": n}
            if sub is not None:
                event["subType"] = sub
            events.append(event)
        self.events = {}
        return {
            "serverId": self.server_id,
            "hostname": _host.gethostname(),
            "pid": os.getpid(),
            "uptime": time.monotonic() - self.started_at,
            "clientsCount": len(self.server.engine.sessions),
            "pollingClientsCount": sum(1 for s in sessions if s.transport == "polling"),
            "aggregatedEvents": events,
            "namespaces": [
                {"name": ns.name, "socketsCount": len(ns.sockets)} for ns in self.namespaces()
            ],
        }


def instrument(
    server: Server,
    *,
    auth: dict[str, Any] | Literal[False],
    mode: Mode = "development",
    read_only: bool = False,
    namespace: str = "/admin",
    server_id: str | None = None,
    stats_interval: float = 2.0,
    max_sessions: int = 1000,
    max_queued: int = 10_000,
) -> Monitor:
    """Serve the Admin UI's ``namespace`` on ``server``; returns the monitor.

    ``auth`` is ``{"type": "basic", "username": ..., "password": <bcrypt hash>}``
    or ``False`` (explicitly none). ``mode="development"`` sends every socket,
    room change, transport upgrade, data change and event as it happens (costly
    on a busy server); ``"production"`` sends only the stats, every
    ``stats_interval`` seconds. ``read_only`` hides and refuses the UI's actions
    (emit, join, leave, disconnect). ``server_id`` names this node in a cluster
    (default: hostname#pid). ``max_sessions`` bounds the remembered login
    sessions (oldest forgotten first); ``max_queued`` the events waiting to be
    sent to the UI (past it they are dropped, with a warning).
    """
    if auth is not False:
        if not isinstance(auth, dict):
            raise AdminConfigError("auth must be False or {'type': 'basic', ...}")
        basic: BasicAuth | None = BasicAuth.parse(auth)
    else:
        basic = None
    if mode not in ("development", "production"):
        raise AdminConfigError("mode must be 'development' or 'production'")
    if not stats_interval > 0 or max_sessions < 1 or max_queued < 1:
        raise AdminConfigError(
            "stats_interval must be positive, max_sessions and max_queued at least 1"
        )
    admin = server.of(namespace)
    monitor = Monitor(
        server=server,
        admin=admin,
        auth=basic,
        mode=mode,
        read_only=read_only,
        server_id=server_id or f"{_host.gethostname()}#{os.getpid()}",
        stats_interval=stats_interval,
        max_sessions=max_sessions,
        max_queued=max_queued,
    )
    admin.use(monitor.middleware)
    admin.on("connect", monitor.on_connect)
    server.monitor = monitor
    server.observe(monitor)
    if server.engine.running:
        monitor.start()
    return monitor
