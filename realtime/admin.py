"""Server side of the Socket.IO Admin UI (``@socket.io/admin-ui`` 0.5).

``instrument(sio, auth=...)`` adds the ``/admin`` namespace the UI connects to.
The server calls this module only through ``sio.monitor``, which is ``None``
until instrumented, so an uninstrumented server pays one attribute test per
connect and disconnect. Events in and out are watched with the sockets' own
``on_any``/``on_any_outgoing`` listeners (development mode only); room changes
and transport upgrades are found by comparing snapshots on each stats tick, so
``sockets_join`` from anywhere in a cluster is seen without hooks in adapters.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket as _host
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import anyio
import anyio.to_thread

from realtime.adapters.cluster import RemoteSocket
from realtime.adapters.memory import InMemoryAdapter
from realtime.exceptions import ConnectionRefusedError
from realtime.socketio.socket import Socket

if TYPE_CHECKING:
    from realtime.socketio.namespace import Namespace
    from realtime.socketio.server import Server

logger = logging.getLogger(__name__)

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


def now_iso() -> str:
    """A JavaScript ``Date`` as JSON.stringify writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def serialize_remote(socket: RemoteSocket, nsp: str) -> dict[str, Any]:
    """A socket of another node (from ``fetch_sockets``), in the same shape.

    Its client id and transport travel in ``data["_admin"]``, where its own
    node put them, as the reference server does.
    """
    hs = socket.handshake
    raw_headers = hs.get("headers")
    headers: dict[str, Any] = raw_headers if isinstance(raw_headers, dict) else {}
    raw_admin = socket.data.get("_admin")
    admin: dict[str, Any] = raw_admin if isinstance(raw_admin, dict) else {}
    address = headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or hs.get("address")
    return {
        "id": socket.id,
        "clientId": admin.get("clientId"),
        "transport": admin.get("transport"),
        "nsp": nsp,
        "data": {k: v for k, v in socket.data.items() if k != "_admin"},
        "handshake": {
            "address": address,
            "headers": headers,
            "query": hs.get("query"),
            "issued": hs.get("issued"),
            "secure": hs.get("secure"),
            "time": hs.get("time"),
            "url": hs.get("url"),
            "xdomain": hs.get("xdomain"),
        },
        "rooms": sorted(socket.rooms),
    }


def serialize(socket: Socket) -> dict[str, Any]:
    """A socket in the shape of the UI's ``SerializedSocket``."""
    hs = socket.handshake
    headers = dict(hs.headers.items())
    address = headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or hs.address
    return {
        "id": socket.id,
        "clientId": socket.connection.session.sid[:12],
        "transport": socket.transport,
        "nsp": socket.namespace.name,
        "data": {k: v for k, v in socket.data.items() if k != "_admin"},
        "handshake": {
            "address": address,
            "headers": headers,
            "query": hs.query,
            "issued": int(hs.time * 1000),
            "secure": hs.secure,
            "time": datetime.fromtimestamp(hs.time, UTC).strftime("%a %b %d %Y %H:%M:%S GMT+0000"),
            "url": hs.url,
            "xdomain": hs.xdomain,
        },
        "rooms": sorted(socket.rooms),
    }


@dataclass
class _Seen:
    """What the UI was last told about a socket, to report only changes."""

    transport: str
    rooms: frozenset[str]


@dataclass
class Monitor:
    """The instrumentation of one server: what ``sio.monitor`` holds."""

    server: Server
    admin: Namespace
    auth: BasicAuth | None
    mode: Mode
    read_only: bool
    server_id: str
    stats_interval: float
    max_sessions: int
    started: float = field(default_factory=time.monotonic)
    sessions: OrderedDict[str, None] = field(default_factory=OrderedDict)
    events: dict[tuple[int, str, str | None], int] = field(default_factory=dict)
    seen: dict[tuple[str, str], _Seen] = field(default_factory=dict)
    ticking: bool = False

    @property
    def development(self) -> bool:
        return self.mode == "development"

    def features(self) -> list[str]:
        features = [] if self.read_only else list(ACTIONS)
        features.append("AGGREGATED_EVENTS")
        if self.development:
            features.append("ALL_EVENTS")
        return features

    # -- hooks the server calls ---------------------------------------------------

    def count(self, kind: str, sub: str | None = None, n: int = 1) -> None:
        """An aggregated event (``rawConnection``, ``rawDisconnection``...) for the charts."""
        if not self.ticking:
            self.start()
        key = (int(time.time()), kind, sub)
        self.events[key] = self.events.get(key, 0) + n

    async def socket_connected(self, socket: Socket) -> None:
        # What another node's Admin UI needs to list this socket (fetch_sockets
        # carries data, not the transport), as the reference server stores it.
        socket.data["_admin"] = {
            "clientId": socket.connection.session.sid[:12],
            "transport": socket.transport,
        }
        if not self.development:
            return
        nsp = socket.namespace
        self.seen[(nsp.name, socket.id)] = _Seen(socket.transport, socket.rooms)
        if nsp is not self.admin:

            async def received(event: str, *args: Any) -> None:
                await self._emit("event_received", nsp.name, socket.id, [event, *args], now_iso())

            async def sent(event: str, *args: Any) -> None:
                await self._emit("event_sent", nsp.name, socket.id, [event, *args], now_iso())

            socket.on_any(received)
            socket.on_any_outgoing(sent)
        await self._emit("socket_connected", serialize(socket), now_iso())

    async def socket_disconnected(self, socket: Socket, reason: str) -> None:
        if not self.development or self.seen.pop((socket.namespace.name, socket.id), None) is None:
            return
        nsp = socket.namespace.name
        await self._emit("socket_disconnected", nsp, socket.id, str(reason), now_iso())

    # -- the /admin namespace -----------------------------------------------------

    async def _emit(self, event: str, *args: Any) -> None:
        """To every UI; a failure (a cluster adapter down) is logged, never raised into
        the server's connect and disconnect paths, which call this."""
        if not self.has_audience():
            return
        try:
            await self.admin.emit(event, *args)
        except Exception:
            logger.exception("could not send %s to the Admin UI", event)

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
        if not self.ticking:
            self.start()

    def has_audience(self) -> bool:
        """A UI may be listening: one is connected here, or on another node of a cluster
        (whose adapter forwards what this node emits)."""
        return bool(self.admin.sockets) or type(self.admin.adapter) is not InMemoryAdapter

    def start(self) -> None:
        """Start the stats tick (the server does when it starts; a late ``instrument()``
        starts it on the first connection)."""
        if self.server.engine.running and not self.ticking:
            self.ticking = True
            self.server.engine.start_soon(self._tick)

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
            "uptime": time.monotonic() - self.started,
            "clientsCount": len(self.server.engine.sessions),
            "pollingClientsCount": sum(1 for s in sessions if s.transport == "polling"),
            "aggregatedEvents": events,
            "namespaces": [
                {"name": ns.name, "socketsCount": len(ns.sockets)} for ns in self.namespaces()
            ],
        }

    async def _tick(self) -> None:
        while True:
            await anyio.sleep(self.stats_interval)
            if not self.has_audience():
                self.events = {}  # nobody to chart them for: keep memory flat
                continue
            await self._emit("server_stats", self.stats())
            if self.development:
                await self._report_changes()

    async def _report_changes(self) -> None:
        """Room and transport changes since the last tick, as the UI's events."""
        for ns in self.namespaces():
            for socket in list(ns.sockets.values()):
                seen = self.seen.get((ns.name, socket.id))
                if seen is None:
                    continue
                rooms, transport = socket.rooms, socket.transport
                for room in sorted(rooms - seen.rooms):
                    await self._emit("room_joined", ns.name, room, socket.id, now_iso())
                for room in sorted(seen.rooms - rooms):
                    await self._emit("room_left", ns.name, room, socket.id, now_iso())
                if transport != seen.transport:
                    update = {"id": socket.id, "nsp": ns.name, "transport": transport}
                    await self._emit("socket_updated", update)
                seen.rooms, seen.transport = rooms, transport


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
) -> Monitor:
    """Serve the Admin UI's ``namespace`` on ``server``; returns the monitor.

    ``auth`` is ``{"type": "basic", "username": ..., "password": <bcrypt hash>}``
    or ``False`` (explicitly none). ``mode="development"`` streams every socket,
    room change and event (costly on a busy server); ``"production"`` sends only
    the periodic stats. ``read_only`` hides and refuses the UI's actions (emit,
    join, leave, disconnect). ``server_id`` names this node in a cluster
    (default: hostname#pid). ``max_sessions`` bounds the remembered login
    sessions (oldest forgotten first).
    """
    if auth is not False:
        if not isinstance(auth, dict):
            raise AdminConfigError("auth must be False or {'type': 'basic', ...}")
        basic: BasicAuth | None = BasicAuth.parse(auth)
    else:
        basic = None
    if mode not in ("development", "production"):
        raise AdminConfigError("mode must be 'development' or 'production'")
    if not stats_interval > 0 or max_sessions < 1:
        raise AdminConfigError("stats_interval must be positive, max_sessions at least 1")
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
    )
    admin.use(monitor.middleware)
    admin.on("connect", monitor.on_connect)
    server.monitor = monitor
    return monitor
