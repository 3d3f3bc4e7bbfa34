"""A namespace: its handlers, connect middleware, sockets, adapter, and broadcast entry points."""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

import anyio

from realtime.adapters.base import (
    AckCallback,
    Adapter,
    SocketDetails,
    SocketId,
    encode_frames,
)
from realtime.adapters.recovery import RecoveryError, RecoveryFailure, RestoredSession
from realtime.engineio import OutPacket
from realtime.exceptions import ConnectionRefusedError
from realtime.socketio.broadcast import BroadcastOperator, Rooms
from realtime.socketio.handlers import Handler, Middleware, call
from realtime.socketio.packets import Packet, PacketType, encode
from realtime.socketio.reasons import DisconnectReason
from realtime.socketio.socket import Socket, SocketState

if TYPE_CHECKING:
    from realtime.adapters.recovery import RecoveryOptions
    from realtime.socketio.connection import Connection
    from realtime.socketio.server import Server

logger = logging.getLogger("realtime.socketio")

H = TypeVar("H", bound=Handler)

#: Decides whether a dynamic namespace exists: ``(name, auth) -> bool``, sync or async.
NamespaceMatcher = Callable[[str, dict[str, Any]], bool | Awaitable[bool]]


class HandlerRegistry:
    """``on``/``off``/``use``, shared by a namespace and a dynamic-namespace parent."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}
        self.middleware: list[Middleware] = []

    @overload
    def on(self, event: str) -> Callable[[H], H]: ...

    @overload
    def on(self, event: str, handler: H) -> H: ...

    def on(self, event: str, handler: H | None = None) -> H | Callable[[H], H]:
        """Register a handler, directly or as a decorator.

        ``connect`` handlers get ``(socket, auth)`` and may refuse by raising
        :class:`ConnectionRefusedError` or returning ``False``;
        ``disconnecting``/``disconnect`` get ``(socket, reason)``; any other
        event gets ``(socket, *args)`` and its return value is the ack.
        """

        def register(func: H) -> H:
            self.handlers[event] = func
            return func

        return register(handler) if handler is not None else register

    def off(self, event: str) -> None:
        self.handlers.pop(event, None)

    def use(self, middleware: Middleware) -> Middleware:
        """Run ``middleware(socket)`` first; raise ConnectionRefusedError to refuse."""
        self.middleware.append(middleware)
        return middleware


class Namespace(HandlerRegistry):
    """The sockets connected to one namespace name, and what they can do."""

    def __init__(self, server: Server, name: str, parent: ParentNamespace | None = None) -> None:
        super().__init__()
        self.server = server
        self._name = name
        self.parent = parent
        if parent is not None:
            # Children of a dynamic namespace share the parent's handlers and middleware.
            self.handlers = parent.handlers
            self.middleware = parent.middleware
        self.sockets: dict[SocketId, Socket] = {}
        #: Handlers of events other servers send (``server_side_emit``), by event.
        self.server_handlers: dict[str, Handler] = {}
        self.adapter: Adapter = server.adapter_factory(self)
        if server.recovery is not None and not self.adapter.supports_recovery:
            raise ValueError(
                f"{type(self.adapter).__name__} keeps no sessions: connection state recovery "
                "needs SessionAwareAdapter (one process) or the Redis Streams adapter"
            )
        self._ack_ids = itertools.count()

    @property
    def name(self) -> str:
        return self._name

    @property
    def recovery(self) -> RecoveryOptions | None:
        return self.server.recovery

    def __repr__(self) -> str:
        return f"<Namespace {self._name} sockets={len(self.sockets)}>"

    # -- broadcast entry points ---------------------------------------------------

    @property
    def _all(self) -> BroadcastOperator:
        return BroadcastOperator(self)

    def to(self, rooms: Rooms) -> BroadcastOperator:
        return self._all.to(rooms)

    in_ = to

    def except_(self, rooms: Rooms) -> BroadcastOperator:
        return self._all.except_(rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        return self._all.volatile

    @property
    def local(self) -> BroadcastOperator:
        return self._all.local

    def timeout(self, seconds: float) -> BroadcastOperator:
        return self._all.timeout(seconds)

    async def emit(self, event: str, *args: Any) -> None:
        await self._all.emit(event, *args)

    async def send(self, *args: Any) -> None:
        await self._all.send(*args)

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        return await self._all.emit_with_ack(event, *args)

    async def fetch_sockets(self) -> list[SocketDetails]:
        return await self._all.fetch_sockets()

    async def sockets_join(self, rooms: Rooms) -> None:
        await self._all.sockets_join(rooms)

    async def sockets_leave(self, rooms: Rooms) -> None:
        await self._all.sockets_leave(rooms)

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self._all.disconnect_sockets(close)

    async def server_side_emit(self, event: str, *args: Any) -> int:
        """Send an event to this namespace on the other server processes (see :meth:`on_server`)."""
        return await self._all.server_side_emit(event, *args)

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Send an event to the other servers and collect their handlers' replies."""
        return await self._all.server_side_emit_with_ack(event, *args)

    async def all_rooms(self) -> frozenset[str]:
        return await self._all.all_rooms()

    # -- events from other servers ------------------------------------------------

    @overload
    def on_server(self, event: str) -> Callable[[H], H]: ...

    @overload
    def on_server(self, event: str, handler: H) -> H: ...

    def on_server(self, event: str, handler: H | None = None) -> H | Callable[[H], H]:
        """Handle ``event`` sent by another server with ``server_side_emit``.

        The handler gets the event's arguments (no socket); when the sender
        asked for replies, its return value is this server's reply.
        """

        def register(func: H) -> H:
            self.server_handlers[event] = func
            return func

        return register(handler) if handler is not None else register

    def off_server(self, event: str) -> None:
        self.server_handlers.pop(event, None)

    async def handle_server_side(self, event: str, args: list[Any]) -> Any:
        handler = self.server_handlers.get(event)
        if handler is None:
            logger.debug("no server-side handler for %r in %s", event, self._name)
            return None
        return await call(handler, *args)

    # -- the adapter's view (LocalNamespace) ----------------------------------------

    def next_ack_id(self) -> int:
        # One counter per namespace, for single and broadcast emits alike, so an
        # ack id never means two things to the same socket.
        return next(self._ack_ids)

    def deliver(self, sid: SocketId, frames: Sequence[OutPacket], *, volatile: bool) -> bool:
        socket = self.sockets.get(sid)
        return socket is not None and socket.write(frames, volatile=volatile)

    def fanned_out(self, recipients: int) -> None:
        """The adapter delivered a broadcast to ``recipients`` local sockets."""
        if self.server.observer is not None:
            self.server.observer.fan_out(self._name, recipients)
            self.server.observer.events_out(self._name, recipients)

    def room_joined(self, sid: SocketId, room: str) -> None:
        """The adapter added local socket ``sid`` to ``room`` (it was not in it)."""
        if self.server.observer is not None:
            self.server.observer.room_joined(self._name, room, sid)
        if self.server.recovery is not None:
            self._rooms_changed(sid)

    def room_left(self, sid: SocketId, room: str) -> None:
        """The adapter removed local socket ``sid`` from ``room``."""
        if self.server.observer is not None:
            self.server.observer.room_left(self._name, room, sid)
        if self.server.recovery is not None:
            self._rooms_changed(sid)

    def _rooms_changed(self, sid: SocketId) -> None:
        socket = self.sockets.get(sid)
        if socket is not None:
            socket.session_changed()

    def expect_ack(self, sid: SocketId, ack_id: int, callback: AckCallback) -> None:
        socket = self.sockets.get(sid)
        if socket is None:
            callback(None)
        else:
            socket.expect_ack(ack_id, callback)

    def forget_ack(self, sid: SocketId, ack_id: int) -> None:
        """Stop routing ``ack_id`` from socket ``sid`` (a failed delivery, a timeout)."""
        socket = self.sockets.get(sid)
        if socket is not None:
            socket.forget_ack(ack_id)

    def local_socket(self, sid: SocketId) -> Socket | None:
        return self.sockets.get(sid)

    async def disconnect_socket(self, sid: SocketId, *, close: bool) -> None:
        socket = self.sockets.get(sid)
        if socket is not None:
            await socket.disconnect(close)

    # -- connection lifecycle -----------------------------------------------------

    async def connect(self, connection: Connection, auth: dict[str, Any]) -> Socket | None:
        """Run middleware and the connect handler; answer CONNECT or CONNECT_ERROR.

        However this ends (refused, the session gone meanwhile, cancelled),
        the socket is left in no namespace and no room unless it connected.
        With connection state recovery on, a CONNECT carrying a ``pid`` takes up
        its lost session (see :meth:`_recover`) or, failing that, starts anew.
        """
        socket: Socket | None = None
        failure: RecoveryFailure | None = None
        recovery = self.server.recovery
        if recovery is not None and isinstance(auth.get("pid"), str):
            socket, failure = await self._recover(connection, auth)
        if socket is None:
            socket = Socket(self, connection, auth)
            socket.recovery_failure = failure
        if not (socket.recovered and recovery is not None and recovery.skip_middlewares):
            try:
                for middleware in self.middleware:
                    await call(middleware, socket)
            except ConnectionRefusedError as exc:
                await self._drop(socket)
                self._refuse(connection, exc)
                return None
            except Exception:
                logger.exception("error in middleware of %s (socket %s)", self._name, socket.id)
                await self._drop(socket)
                self._refuse(connection, ConnectionRefusedError("Internal server error"))
                return None
        if connection.session.closed:
            if socket.recovered:
                # Taken from the store for a connection that is gone: put it back.
                await socket.end_session(DisconnectReason.TRANSPORT_CLOSE)
            await self._drop(socket)
            return None
        try:
            if not socket.recovered:
                # In the namespace (and its own room) during the connect handler, so
                # the handler can join rooms and be reached; its frames wait in the
                # socket. The offset is read in the same step as the join (add_all does
                # not yield): every recoverable event after it reaches the socket.
                self.sockets[socket.id] = socket
                connection.sockets[self._name] = socket
                if socket.pid is not None:
                    socket.connected_at(self.adapter.recovery_offset())
                await self.adapter.add_all(socket.id, (socket.id,))
            refusal = await self._run_connect_handler(socket, auth)
        except BaseException:
            # Cancelled (shutdown, the connection's task): leave nothing behind.
            with anyio.CancelScope(shield=True):
                await socket.refuse()
            raise
        if refusal is not None:
            await socket.refuse()
            self._refuse(connection, refusal)
            return None
        if socket.state is SocketState.DISCONNECTED:
            # The session ended while the handler ran: the socket has already
            # left; pair the successful connect with its disconnect.
            await socket.run_disconnect_handlers()
            return None
        answer: dict[str, Any] = {"sid": socket.id}
        if socket.pid is not None:
            answer["pid"] = socket.pid
        reply = Packet(PacketType.CONNECT, self._name, answer)
        frames = [OutPacket.message(part) for part in encode(reply)]
        await connection.session.send_now([*frames, *socket.accept()])
        if socket.pid is not None and self.adapter.durable_sessions:
            await socket.save_session()
        if socket.disconnect_requested is not None:
            await socket.disconnect(socket.disconnect_requested)
        return socket

    async def _recover(
        self, connection: Connection, auth: dict[str, Any]
    ) -> tuple[Socket | None, RecoveryFailure | None]:
        """Take up the session ``auth["pid"]`` from ``auth["offset"]`` (or, without
        one, from where the session started: a client that had received nothing).

        A socket of this process still holding the session (its connection lost
        but not yet noticed) is closed first, so its record is the latest and its
        cleanup cannot take the recovered socket's rooms (they share the id).
        """
        pid: str = auth["pid"]
        offset = auth.get("offset")
        for old in list(self.sockets.values()):
            if old.pid == pid:
                await old.hand_over()
        recovered: list[Socket] = []

        def attach(restored: RestoredSession) -> None:
            socket = Socket(self, connection, auth, restored=restored.record)
            if isinstance(offset, str):
                # The client's own offset is newer than the record's: replay from it
                # should this connection be lost before any event reaches it.
                socket.connected_at(offset)
            self.sockets[socket.id] = socket
            connection.sockets[self._name] = socket
            for args in restored.missed:
                socket.write(encode_frames(Packet(PacketType.EVENT, self._name, args)))
            recovered.append(socket)

        try:
            await self.adapter.restore_session(
                pid, offset if isinstance(offset, str) else None, attach
            )
        except RecoveryError as exc:
            logger.info("connection state not recovered in %s: %s", self._name, exc)
            return None, exc.failure
        except Exception as exc:
            logger.warning("connection state not recovered in %s: %s", self._name, exc)
            return None, RecoveryFailure.STORE_UNAVAILABLE
        return recovered[0], None

    @staticmethod
    async def _drop(socket: Socket) -> None:
        """A recovered socket is in the namespace and its rooms before middleware ran."""
        if socket.recovered:
            await socket.refuse()

    async def _run_connect_handler(
        self, socket: Socket, auth: dict[str, Any]
    ) -> ConnectionRefusedError | None:
        handler = self.handlers.get("connect")
        if handler is None:
            return None
        try:
            if await call(handler, socket, auth) is False:
                return ConnectionRefusedError("Connection rejected by server")
        except ConnectionRefusedError as exc:
            return exc
        except Exception:
            logger.exception("error in connect handler of %s (socket %s)", self._name, socket.id)
            return ConnectionRefusedError("Internal server error")
        return None

    def _refuse(self, connection: Connection, exc: ConnectionRefusedError) -> None:
        data: dict[str, Any] = {"message": exc.message}
        if exc.data is not None:
            data["data"] = exc.data
        connection.send(Packet(PacketType.CONNECT_ERROR, self._name, data))

    async def remove(self, socket: Socket) -> None:
        if self.sockets.get(socket.id) is socket:
            del self.sockets[socket.id]
        await self.adapter.delete_all(socket.id)
        if self.parent is not None:
            await self.parent.cleanup(self)


class ParentNamespace(HandlerRegistry):
    """Dynamic namespaces: every name the matcher accepts becomes a child namespace.

    Handlers and middleware registered here apply to every child.
    """

    def __init__(self, server: Server, matcher: re.Pattern[str] | NamespaceMatcher) -> None:
        super().__init__()
        self.server = server
        self.matcher = matcher
        self.children: dict[str, Namespace] = {}
        #: Connects in progress per child: a held child is never cleaned up.
        self._holds: dict[Namespace, int] = {}

    async def matches(self, name: str, auth: dict[str, Any]) -> bool:
        if isinstance(self.matcher, re.Pattern):
            return self.matcher.fullmatch(name) is not None
        return bool(await call(self.matcher, name, auth))

    def create_child(self, name: str) -> Namespace:
        child = Namespace(self.server, name, parent=self)
        self.children[name] = child
        return child

    def hold(self, child: Namespace) -> None:
        """Keep ``child`` while a connect to it runs (its socket is not in it yet)."""
        self._holds[child] = self._holds.get(child, 0) + 1

    async def release(self, child: Namespace) -> None:
        """End a :meth:`hold`; an empty child may then be cleaned up."""
        count = self._holds.pop(child) - 1
        if count:
            self._holds[child] = count
        await self.cleanup(child)

    async def cleanup(self, child: Namespace) -> None:
        """With ``cleanup_empty_child_namespaces``, drop ``child`` once nothing is in it.

        As the reference server does: gone from the server and from this parent,
        its adapter closed. A later connect to the name creates a fresh child.
        """
        if (
            not self.server.cleanup_empty_child_namespaces
            or child.sockets
            or child in self._holds
            or self.children.get(child.name) is not child
        ):
            return
        del self.children[child.name]
        if self.server.namespaces.get(child.name) is child:
            del self.server.namespaces[child.name]
        logger.debug("closing empty child namespace %s", child.name)
        with anyio.CancelScope(shield=True):
            await child.adapter.close()

    async def emit(self, event: str, *args: Any) -> None:
        """Emit to every socket of every child namespace."""
        for child in list(self.children.values()):
            await child.emit(event, *args)
