"""One client in one namespace: emit, acks, rooms, handlers, and how it ends."""

from __future__ import annotations

import copy
import enum
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from starlette.datastructures import Headers

from realtime.adapters.base import AckCallback, BroadcastOptions, SocketId, encode_frames
from realtime.adapters.recovery import RecoveryFailure, SessionRecord
from realtime.engineio import OutPacket
from realtime.exceptions import AckTimeoutError, SessionClosedError
from realtime.socketio.broadcast import BroadcastOperator, Rooms, check_event, room_set
from realtime.socketio.handlers import NO_ACK, Handler, ack_args, ack_value, call
from realtime.socketio.packets import Packet, PacketType
from realtime.socketio.reasons import DisconnectReason

if TYPE_CHECKING:
    from realtime.socketio.connection import Connection
    from realtime.socketio.namespace import Namespace

logger = logging.getLogger("realtime.socketio")

H = TypeVar("H", bound=Handler)


@dataclass(frozen=True, slots=True)
class Handshake:
    """The request that opened the connection, plus the ``auth`` of this namespace's CONNECT."""

    headers: Headers
    query: dict[str, str]
    auth: dict[str, Any]
    address: str | None
    time: float
    url: str
    secure: bool

    @property
    def xdomain(self) -> bool:
        return "origin" in self.headers


class SocketState(enum.Enum):
    """Where a socket is in its life; it only moves down this list.

    CONNECTING: middleware passed, the connect handler runs; the socket is in
    the namespace and its rooms, and what it is sent waits for the CONNECT reply.
    CONNECTED: the client has its CONNECT reply.
    DISCONNECTING: the ``disconnecting`` handlers run, rooms still set.
    DISCONNECTED: out of the namespace and every room, no ack pending.
    """

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"


#: The states in which what is sent to the socket goes to its client. Tested by
#: identity: hashing an enum member (``in`` a set) runs ``Enum.__hash__`` in Python,
#: once per recipient of every broadcast.
_CONNECTED = SocketState.CONNECTED
_DISCONNECTING = SocketState.DISCONNECTING


#: Disconnections after which the session is kept for the client to recover: the
#: connection was lost, not left (the reference server's list).
RECOVERABLE_REASONS = frozenset(
    {
        DisconnectReason.TRANSPORT_ERROR,
        DisconnectReason.TRANSPORT_CLOSE,
        DisconnectReason.FORCED_CLOSE,
        DisconnectReason.PING_TIMEOUT,
        DisconnectReason.SERVER_SHUTTING_DOWN,
    }
)


def new_socket_id() -> SocketId:
    # 20 URL-safe characters, the length of the reference server's ids.
    return SocketId(secrets.token_urlsafe(15))


class Socket:
    """A client connected to one namespace.

    Handlers registered with :meth:`on` apply to this socket only and take the
    event arguments; they take precedence over the namespace's handlers, which
    get the socket first. A handler's return value is the acknowledgement
    (return :data:`NO_ACK` to send none).
    """

    def __init__(
        self,
        namespace: Namespace,
        connection: Connection,
        auth: dict[str, Any],
        *,
        restored: SessionRecord | None = None,
    ) -> None:
        request = connection.session.request
        self.id = restored.sid if restored is not None else new_socket_id()
        self.namespace = namespace
        self.connection = connection
        self.handshake = Handshake(
            headers=request.headers,
            query=request.query,
            auth=auth,
            address=request.client[0] if request.client else None,
            time=request.time,
            url=request.url,
            secure=request.secure,
        )
        self.data: dict[str, Any] = restored.data if restored is not None else {}
        #: With connection state recovery on: the private id the client brings back
        #: to recover this socket (sent in the CONNECT reply only); ``None`` when off.
        self.pid: str | None = None
        #: Whether this socket took up a session its client had lost (rooms, data and
        #: missed events restored), as ``socket.recovered`` in the reference server.
        self.recovered = restored is not None
        #: Why the client's request to recover was refused, when it was.
        self.recovery_failure: RecoveryFailure | None = None
        # Where replay starts if the client brings no offset (see SessionRecord.offset).
        self._offset: str | None = None
        self._save_pending = False
        self._saved_data: Any = None
        self._own_room: BroadcastOptions | None = None
        if restored is not None:
            self.pid = restored.pid
            self._offset = restored.offset
        elif namespace.server.recovery is not None:
            self.pid = new_socket_id()
        self.state = SocketState.CONNECTING
        #: Why the socket was disconnected, once it is.
        self.disconnect_reason: DisconnectReason | None = None
        #: ``disconnect(close)`` was called by the connect handler: done once connected.
        self.disconnect_requested: bool | None = None
        # Frames sent while the connect handler runs wait here, so the CONNECT
        # reply goes first (the client drops events for a namespace it has not joined).
        self._pending: list[OutPacket] | None = []
        self._acks: dict[int, AckCallback] = {}
        self._handlers: dict[str, Handler] = {}
        self._any: list[Handler] = []
        self._any_outgoing: list[Handler] = []

    def __repr__(self) -> str:
        return f"<Socket {self.id} {self.namespace.name} {self.state.value}>"

    @property
    def connected(self) -> bool:
        state = self.state
        return state is _CONNECTED or state is _DISCONNECTING

    @property
    def rooms(self) -> frozenset[str]:
        return self.namespace.adapter.socket_rooms(self.id)

    @property
    def transport(self) -> str:
        return self.connection.session.transport

    # -- sending ------------------------------------------------------------------

    async def emit(self, event: str, *args: Any) -> None:
        """Send an event to this client (bytes anywhere in ``args`` travel as binary).

        With connection state recovery on, it goes through the adapter as a
        broadcast to the socket's own room, as in the reference server: it gets an
        offset and is kept, so a client that lost its connection gets it on return.
        """
        check_event(event)
        await self._notify_outgoing(event, args)
        packet = Packet(PacketType.EVENT, self.namespace.name, [event, *args])
        # A socket still in its middleware is in no room yet: its frames wait in it.
        if self.pid is not None and (
            self._pending is None or self.namespace.sockets.get(self.id) is self
        ):
            own_room = self._own_room
            if own_room is None:
                own_room = self._own_room = BroadcastOptions(rooms=frozenset({self.id}))
            adapter = self.namespace.adapter
            stamped = adapter.stamp(packet, own_room) if self.connected else None
            if stamped is None:
                await adapter.broadcast(packet, own_room)
                return
            packet = stamped  # kept with its offset; written the direct way below
        await self._emit(packet)

    async def send(self, *args: Any) -> None:
        await self.emit("message", *args)

    async def emit_with_ack(
        self,
        event: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109 - the Socket.IO API's name for it
    ) -> Any:
        """Emit and wait for the client's acknowledgement.

        Returns ``None``, the single argument, or a tuple of them. Raises
        :class:`AckTimeoutError` after ``timeout`` seconds, and
        :class:`SessionClosedError` at once if the socket is already gone, or
        when the client disconnects first.
        """
        check_event(event)
        if self.state is SocketState.DISCONNECTED:
            raise SessionClosedError(f"socket {self.id} is disconnected")
        ack_id = self.namespace.next_ack_id()
        answer: list[list[Any] | None] = []
        arrived = anyio.Event()

        def on_ack(args: list[Any] | None) -> None:
            answer.append(args)
            arrived.set()

        self._acks[ack_id] = on_ack
        try:
            await self._notify_outgoing(event, args)
            packet = Packet(PacketType.EVENT, self.namespace.name, [event, *args], ack_id)
            if not await self._emit(packet):
                raise SessionClosedError(f"socket {self.id} is disconnected")
            with anyio.move_on_after(timeout):
                await arrived.wait()
        finally:
            self._acks.pop(ack_id, None)
        if not answer:
            if self.namespace.server.observer is not None:
                self.namespace.server.observer.ack_timeout(self.namespace.name)
            raise AckTimeoutError(f"socket {self.id} did not acknowledge {event!r} in {timeout}s")
        if answer[0] is None:
            raise SessionClosedError(f"socket {self.id} disconnected before acknowledging")
        return ack_value(answer[0])

    @property
    def broadcast(self) -> BroadcastOperator:
        """Every socket of the namespace but this one."""
        return BroadcastOperator(
            self.namespace, BroadcastOptions(except_rooms=frozenset({self.id}))
        )

    def to(self, rooms: Rooms) -> BroadcastOperator:
        """Sockets in ``rooms``, this one excluded."""
        return self.broadcast.to(rooms)

    in_ = to

    def except_(self, rooms: Rooms) -> BroadcastOperator:
        return self.broadcast.except_(rooms)

    @property
    def volatile(self) -> BroadcastOperator:
        """This socket alone, dropping what its transport cannot take at once."""
        return BroadcastOperator(
            self.namespace, BroadcastOptions(rooms=frozenset({self.id}))
        ).volatile

    def _send(self, packet: Packet) -> bool:
        return self.write(encode_frames(packet))

    async def _emit(self, packet: Packet) -> bool:
        """Send one packet to this client now; ``False`` if it is gone.

        Written by the calling task when nothing else is writing (see
        :meth:`EngineSession.send_now`), else queued for the transport.
        """
        frames = encode_frames(packet)
        if self._pending is not None:
            self._pending.extend(frames)
            return True
        state = self.state
        if state is not _CONNECTED and state is not _DISCONNECTING:
            return False
        sent = await self.connection.session.send_now(frames)
        observer = self.namespace.server.observer
        if sent and observer is not None and packet.type is PacketType.EVENT:
            observer.events_out(self.namespace.name, 1)
        return sent

    def write(self, frames: Sequence[OutPacket], *, volatile: bool = False) -> bool:
        """Queue encoded frames; ``False`` if dropped (closed, volatile and not writable, full)."""
        if self._pending is not None:
            self._pending.extend(frames)
            return True
        state = self.state
        if state is not _CONNECTED and state is not _DISCONNECTING:
            return False
        session = self.connection.session
        if volatile and not session.writable:
            if self.namespace.server.observer is not None:
                self.namespace.server.observer.volatile_dropped()
            return False
        return session.send_packets(frames)

    async def _notify_outgoing(self, event: str, args: Sequence[Any]) -> None:
        for listener in list(self._any_outgoing):
            await self._guarded(event, listener, event, *args)

    # -- rooms --------------------------------------------------------------------

    async def join(self, rooms: Rooms) -> None:
        await self.namespace.adapter.add_all(self.id, room_set(rooms))

    async def leave(self, room: str) -> None:
        await self.namespace.adapter.delete(self.id, room)

    # -- connection state recovery ----------------------------------------------------

    def session_record(self) -> SessionRecord:
        """What is kept of this socket for its client to recover (a snapshot)."""
        assert self.pid is not None, "connection state recovery is off"
        return SessionRecord(
            sid=self.id,
            pid=self.pid,
            rooms=sorted(self.rooms),
            data=copy.deepcopy(self.data),
            offset=self._offset,
        )

    def session_changed(self) -> None:
        """Rooms or data changed: with a store that outlives the process, save again
        soon (one save in flight per socket; the latest state wins)."""
        if (
            self._save_pending
            or self.pid is None
            or not self.namespace.adapter.durable_sessions
            or self.state is not _CONNECTED
        ):
            return
        self._save_pending = True
        self.namespace.server.engine.start_soon(self.save_session)

    async def save_session(self) -> None:
        """Write this connected socket's record to the adapter's store (errors are logged)."""
        self._save_pending = False
        if self.state is not _CONNECTED or self.pid is None:
            return
        record = self.session_record()
        self._saved_data = record.data
        try:
            await self.namespace.adapter.save_session(record, connected=True)
        except Exception as exc:
            logger.warning("socket %s: session not saved: %s", self.id, exc)

    def connected_at(self, offset: str | None) -> None:
        """Replay starts at ``offset`` for a client that brings none: the event log's
        position when the socket joined its rooms (or the client's last offset)."""
        self._offset = offset

    async def end_session(self, reason: DisconnectReason) -> None:
        """Keep the session for its client to recover, or forget it (it left on purpose)."""
        if self.pid is None:
            return
        adapter = self.namespace.adapter
        try:
            if reason in RECOVERABLE_REASONS:
                await adapter.save_session(self.session_record(), connected=False)
            else:
                await adapter.discard_session(self.pid)
        except Exception as exc:
            logger.warning("socket %s: session not kept: %s", self.id, exc)

    # -- handlers -----------------------------------------------------------------

    def on(self, event: str, handler: H) -> H:
        """Handle ``event`` from this client: ``handler(*args)``, its result is the ack."""
        self._handlers[event] = handler
        return handler

    def off(self, event: str) -> None:
        self._handlers.pop(event, None)

    def on_any(self, listener: Callable[..., Any]) -> None:
        """Call ``listener(event, *args)`` for every event from this client, before its handler."""
        self._any.append(listener)

    def off_any(self, listener: Callable[..., Any]) -> None:
        self._any.remove(listener)

    def on_any_outgoing(self, listener: Callable[..., Any]) -> None:
        """Call ``listener(event, *args)`` for every event emitted to this client alone."""
        self._any_outgoing.append(listener)

    def off_any_outgoing(self, listener: Callable[..., Any]) -> None:
        self._any_outgoing.remove(listener)

    # -- disconnect ---------------------------------------------------------------

    async def disconnect(self, close: bool = False) -> None:
        """Leave the namespace; with ``close``, end the whole connection (every namespace).

        Called from the connect handler, it takes effect right after the
        client gets its CONNECT reply.
        """
        if self.state is SocketState.CONNECTING:
            self.disconnect_requested = close or bool(self.disconnect_requested)
            return
        if close:
            await self.connection.disconnect_all()
            return
        if self.state is not SocketState.CONNECTED:
            return
        self._send(Packet(PacketType.DISCONNECT, self.namespace.name))
        await self.closed(DisconnectReason.SERVER_NAMESPACE_DISCONNECT)

    async def hand_over(self) -> None:
        """The client takes this session up over another connection: tell the old one
        (a DISCONNECT, should it still be there) and keep the session for the new."""
        if self.state is not SocketState.CONNECTED:
            return
        self._send(Packet(PacketType.DISCONNECT, self.namespace.name))
        await self.closed(DisconnectReason.TRANSPORT_CLOSE)

    async def closed(self, reason: DisconnectReason) -> None:
        """Run ``disconnecting`` (rooms still set), clean up, then ``disconnect``. Once.

        A socket whose connect handler is still running leaves the namespace
        and its rooms at once (so it collects nothing more); its disconnect
        handlers run when the connect handler returns (see
        :meth:`Namespace.connect`), so every successful connect is paired with
        a disconnect.
        """
        if self.state is SocketState.CONNECTING:
            self.state = SocketState.DISCONNECTED
            self.disconnect_reason = reason
            self._pending = None
            await self._leave()
            return
        if self.state is not SocketState.CONNECTED:
            return
        self.state = SocketState.DISCONNECTING
        self.disconnect_reason = reason
        try:
            await self._lifecycle("disconnecting", reason)
        finally:
            self.state = SocketState.DISCONNECTED
            # Before it leaves its rooms: the Admin UI hears of the disconnection
            # first, then of each room left, as from the reference server.
            if self.namespace.server.observer is not None:
                self.namespace.server.observer.socket_disconnected(self, reason.value)
            with anyio.CancelScope(shield=True):
                await self.end_session(reason)
                await self._leave()
        await self._lifecycle("disconnect", reason)

    async def _leave(self) -> None:
        """Out of the namespace, its rooms and the connection; pending acks fail."""
        await self.namespace.remove(self)
        self.connection.forget(self)
        acks, self._acks = self._acks, {}
        for callback in acks.values():
            callback(None)

    async def run_disconnect_handlers(self) -> None:
        """For a socket that was disconnected while its connect handler ran."""
        reason = self.disconnect_reason or DisconnectReason.TRANSPORT_CLOSE
        await self._lifecycle("disconnecting", reason)
        await self._lifecycle("disconnect", reason)

    async def _lifecycle(self, event: str, reason: DisconnectReason) -> None:
        handler = self._handlers.get(event)
        if handler is not None:
            await self._guarded(event, handler, reason)
        handler = self.namespace.handlers.get(event)
        if handler is not None:
            await self._guarded(event, handler, self, reason)

    # -- incoming -----------------------------------------------------------------

    async def handle_event(self, packet: Packet) -> None:
        """Run the handler for an EVENT packet; answer its ack id with the result."""
        event, *args = packet.data
        observer = self.namespace.server.observer
        if observer is not None:
            observer.event_in(self.namespace.name)
            started = time.perf_counter()
        for listener in list(self._any):
            await self._guarded(event, listener, event, *args)
        handler = self._handlers.get(event)
        if handler is not None:
            ok, result = await self._guarded_result(event, handler, *args)
        else:
            handler = self.namespace.handlers.get(event)
            if handler is None:
                logger.debug("no handler for %r in %s", event, self.namespace.name)
                return
            ok, result = await self._guarded_result(event, handler, self, *args)
        if observer is not None:
            observer.handler_done(self.namespace.name, event, time.perf_counter() - started)
        if (
            self.pid is not None
            and self.namespace.adapter.durable_sessions
            and not self._save_pending
            and self.data != self._saved_data
        ):
            self.session_changed()
        if ok and packet.id is not None and result is not NO_ACK:
            ack = Packet(PacketType.ACK, self.namespace.name, ack_args(result), packet.id)
            await self._emit(ack)

    def handle_ack(self, packet: Packet) -> None:
        assert packet.id is not None
        callback = self._acks.pop(packet.id, None)
        if callback is None:
            logger.debug("socket %s: ack %s for nothing awaited", self.id, packet.id)
            return
        callback(packet.data)

    def expect_ack(self, ack_id: int, callback: AckCallback) -> None:
        self._acks[ack_id] = callback

    def forget_ack(self, ack_id: int) -> None:
        self._acks.pop(ack_id, None)

    def accept(self) -> list[OutPacket]:
        """Mark connected; return what was sent during the connect handler."""
        pending, self._pending = self._pending or [], None
        self.state = SocketState.CONNECTED
        if self.namespace.server.observer is not None:
            self.namespace.server.observer.socket_connected(self)
        return pending

    async def refuse(self) -> None:
        """The connect handler refused (or failed): leave without disconnect handlers."""
        self.state = SocketState.DISCONNECTED
        self._pending = None
        await self._leave()

    async def _guarded(self, event: str, handler: Callable[..., Any], *args: Any) -> None:
        await self._guarded_result(event, handler, *args)

    async def _guarded_result(
        self, event: str, handler: Callable[..., Any], *args: Any
    ) -> tuple[bool, Any]:
        """An exception in application code is logged; the connection lives on."""
        try:
            return True, await call(handler, *args)
        except Exception:
            logger.exception(
                "error in handler for %r (namespace %s, socket %s)",
                event,
                self.namespace.name,
                self.id,
            )
            return False, None
