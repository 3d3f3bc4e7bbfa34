"""What the Socket.IO layer reports to optional observers (Prometheus metrics, the Admin UI).

One interface for both layers: :class:`SocketObserver` extends the engine's
:class:`~realtime.engineio.observer.EngineObserver`, and ``Server.observe()``
sets the same object as ``Server.observer`` and ``EngineServer.observer``.
Both stay ``None`` until something observes, and each hook call sits behind
that check. Two observers at once (metrics and the Admin UI) are combined in
an :class:`ObserverGroup`. Nothing here imports an implementation (the Admin
UI and metrics modules import this, never the other way round).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from realtime.engineio.config import Transport
from realtime.engineio.observer import EngineObserver

if TYPE_CHECKING:
    from realtime.engineio.connection import EngineSession
    from realtime.engineio.packets import OutPacket
    from realtime.socketio.socket import Socket


class SocketObserver(EngineObserver):
    """Socket.IO events, plus the engine's; every hook does nothing unless overridden."""

    def started(self) -> None:
        """The server is running (its task group exists): periodic work may start."""

    def socket_connected(self, socket: Socket) -> None:
        """``socket`` is connected (its CONNECT reply is about to be queued)."""

    def socket_disconnected(self, socket: Socket, reason: str) -> None:
        """``socket`` is disconnected; it leaves its rooms right after this."""

    def room_joined(self, namespace: str, room: str, sid: str) -> None:
        """Socket ``sid`` of this node joined ``room`` (whoever asked, from wherever)."""

    def room_left(self, namespace: str, room: str, sid: str) -> None:
        """Socket ``sid`` of this node left ``room`` (disconnecting leaves them all)."""

    def event_in(self, namespace: str) -> None:
        """An EVENT packet arrived."""

    def events_out(self, namespace: str, count: int) -> None:
        """EVENT packets were queued for ``count`` sockets."""

    def handler_done(self, namespace: str, event: str, seconds: float) -> None:
        """A registered event handler returned (or raised) after ``seconds``."""

    def volatile_dropped(self) -> None:
        """A volatile packet found its socket's transport busy and was dropped."""

    def ack_timeout(self, namespace: str) -> None:
        """An ``emit_with_ack`` timed out."""

    def fan_out(self, namespace: str, recipients: int) -> None:
        """A broadcast reached ``recipients`` local sockets."""


class ObserverGroup(SocketObserver):
    """Several observers behind one: each hook is passed to every member, in order."""

    def __init__(self, members: Iterable[SocketObserver]) -> None:
        self.members: tuple[SocketObserver, ...] = tuple(members)

    def handshake(self, transport: Transport) -> None:
        for member in self.members:
            member.handshake(transport)

    def session_closed(self, session: EngineSession, reason: str) -> None:
        for member in self.members:
            member.session_closed(session, reason)

    def upgrade_started(self) -> None:
        for member in self.members:
            member.upgrade_started()

    def upgrade_finished(self, session: EngineSession, ok: bool) -> None:
        for member in self.members:
            member.upgrade_finished(session, ok)

    def bytes_in(self, transport: Transport, size: int) -> None:
        for member in self.members:
            member.bytes_in(transport, size)

    def bytes_out(self, transport: Transport, size: int) -> None:
        for member in self.members:
            member.bytes_out(transport, size)

    def message_in(self, data: str | bytes) -> None:
        for member in self.members:
            member.message_in(data)

    def packets_queued(self, packets: Sequence[OutPacket]) -> None:
        for member in self.members:
            member.packets_queued(packets)

    def buffer_full(self) -> None:
        for member in self.members:
            member.buffer_full()

    def sample(self, sessions: Iterable[EngineSession]) -> None:
        # The engine passes a live view: each member gets its own pass over it.
        for member in self.members:
            member.sample(sessions)

    def started(self) -> None:
        for member in self.members:
            member.started()

    def socket_connected(self, socket: Socket) -> None:
        for member in self.members:
            member.socket_connected(socket)

    def socket_disconnected(self, socket: Socket, reason: str) -> None:
        for member in self.members:
            member.socket_disconnected(socket, reason)

    def room_joined(self, namespace: str, room: str, sid: str) -> None:
        for member in self.members:
            member.room_joined(namespace, room, sid)

    def room_left(self, namespace: str, room: str, sid: str) -> None:
        for member in self.members:
            member.room_left(namespace, room, sid)

    def event_in(self, namespace: str) -> None:
        for member in self.members:
            member.event_in(namespace)

    def events_out(self, namespace: str, count: int) -> None:
        for member in self.members:
            member.events_out(namespace, count)

    def handler_done(self, namespace: str, event: str, seconds: float) -> None:
        for member in self.members:
            member.handler_done(namespace, event, seconds)

    def volatile_dropped(self) -> None:
        for member in self.members:
            member.volatile_dropped()

    def ack_timeout(self, namespace: str) -> None:
        for member in self.members:
            member.ack_timeout(namespace)

    def fan_out(self, namespace: str, recipients: int) -> None:
        for member in self.members:
            member.fan_out(namespace, recipients)


def combine(current: SocketObserver | None, added: SocketObserver) -> SocketObserver:
    """``current`` and ``added`` behind one observer (``added`` alone if there was none)."""
    if current is None:
        return added
    members = current.members if isinstance(current, ObserverGroup) else (current,)
    return ObserverGroup((*members, added))
