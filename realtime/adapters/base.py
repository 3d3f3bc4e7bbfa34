"""The adapter interface: rooms and broadcast delivery for one namespace.

An adapter decides *which* sockets a broadcast reaches and gets the frames to
them. It never sees the server: the namespace hands it a :class:`LocalNamespace`,
the delivery side of its own sockets. The in-memory adapter serves one process;
an adapter spanning processes (Redis) implements the same methods by delivering
locally and publishing the packet and options to its peers, which deliver to
theirs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NewType, Protocol

from realtime.engineio import OutPacket

if TYPE_CHECKING:
    from realtime.adapters.recovery import RecoveryOptions, RestoredSession, SessionRecord
    from realtime.socketio.packets import Packet

#: A Socket.IO socket id: one client in one namespace (not the Engine.IO sid).
SocketId = NewType("SocketId", str)

#: Called with the ack arguments, or ``None`` when the socket went away first.
AckCallback = Callable[[list[Any] | None], None]


class RecipientsCallback(Protocol):
    """Told who a broadcast with acks reached; ``complete``: no more will be reported."""

    def __call__(self, sids: Sequence[SocketId], /, *, complete: bool = True) -> None: ...


@dataclass(frozen=True, slots=True)
class BroadcastOptions:
    """Who a broadcast reaches: sockets in any of ``rooms`` (everyone when empty),
    minus sockets in any of ``except_rooms``.

    ``volatile`` drops the packet for a socket whose transport is not ready to
    write; ``local`` keeps a multi-process adapter from publishing to its peers;
    ``timeout`` (seconds) bounds a broadcast with acks (peers are told it too).
    """

    rooms: frozenset[str] = frozenset()
    except_rooms: frozenset[str] = frozenset()
    volatile: bool = False
    local: bool = False
    timeout: float | None = None


class SocketDetails(Protocol):
    """What ``fetch_sockets`` returns: a local socket, or a copy of a remote one."""

    @property
    def id(self) -> SocketId: ...

    @property
    def rooms(self) -> frozenset[str]: ...

    @property
    def data(self) -> dict[str, Any]: ...


class LocalNamespace(Protocol):
    """The delivery side of a namespace's own sockets, as an adapter sees it.

    A namespace may also take reports, which the in-memory adapter (and so
    every adapter built on it) makes when present: ``room_joined(sid, room)``
    and ``room_left(sid, room)`` for each change of a local socket's rooms,
    and ``fanned_out(recipients)`` after each local broadcast.
    """

    @property
    def name(self) -> str: ...

    @property
    def recovery(self) -> RecoveryOptions | None:
        """Connection state recovery's options, ``None`` when it is off."""
        ...

    def deliver(self, sid: SocketId, frames: Sequence[OutPacket], *, volatile: bool) -> bool:
        """Queue pre-encoded frames for one socket; ``False`` if it is gone or dropped them."""
        ...

    def expect_ack(self, sid: SocketId, ack_id: int, callback: AckCallback) -> None:
        """Route the socket's ACK with ``ack_id`` to ``callback``."""
        ...

    def forget_ack(self, sid: SocketId, ack_id: int) -> None:
        """Stop routing ``ack_id`` from socket ``sid`` (its delivery failed)."""
        ...

    def local_socket(self, sid: SocketId) -> SocketDetails | None: ...

    async def disconnect_socket(self, sid: SocketId, *, close: bool) -> None: ...

    def next_ack_id(self) -> int:
        """A fresh ack id for a broadcast with acks a peer asked this node to make."""
        ...

    async def handle_server_side(self, event: str, args: list[Any]) -> Any:
        """Run the server-side handler of ``event`` (from a peer); its result is the reply."""
        ...


def encode_frames(packet: Packet) -> list[OutPacket]:
    """Encode once into Engine.IO frames that every recipient shares."""
    # Imported here: the socketio package imports this module while it loads.
    from realtime.socketio.packets import encode

    return [OutPacket.message(part) for part in encode(packet)]


class Adapter(ABC):
    """Rooms and broadcast for one namespace. Subclass to span several processes."""

    def __init__(self, namespace: LocalNamespace) -> None:
        self.namespace = namespace

    async def init(self) -> None:  # noqa: B027 - an optional hook
        """Called when the server starts (subscribe to peers, and so on)."""

    async def close(self) -> None:  # noqa: B027 - an optional hook
        """Called when the server stops, or its namespace is cleaned up (see ``Server``)."""

    # -- rooms of local sockets -------------------------------------------------

    @abstractmethod
    async def add_all(self, sid: SocketId, rooms: Iterable[str]) -> None: ...

    @abstractmethod
    async def delete(self, sid: SocketId, room: str) -> None: ...

    @abstractmethod
    async def delete_all(self, sid: SocketId) -> None:
        """Forget a socket that left the namespace, with every room it was in."""

    @abstractmethod
    def socket_rooms(self, sid: SocketId) -> frozenset[str]: ...

    @abstractmethod
    def rooms(self) -> dict[str, frozenset[SocketId]]:
        """Every local room with its sockets (a socket's own id is a room too)."""

    # -- broadcast ---------------------------------------------------------------

    @abstractmethod
    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None: ...

    @abstractmethod
    async def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        on_recipients: RecipientsCallback,
        on_ack: Callable[[SocketId, list[Any] | None], None],
    ) -> None:
        """Broadcast ``packet`` (whose ``id`` is set) and report who got it and who answered.

        ``on_recipients`` may be called several times (once per process, the
        last with ``complete=True``) and names only the sockets the packet was
        queued for (remote ones by stand-in ids); a socket that did
        not take it (gone, volatile drop, buffer full) is neither counted nor
        left with a callback. Each recipient later answers through ``on_ack``
        (``None``: it went away).
        """

    # -- operations on the sockets a selector matches ----------------------------

    @abstractmethod
    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketDetails]: ...

    @abstractmethod
    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None: ...

    @abstractmethod
    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None: ...

    @abstractmethod
    async def disconnect_sockets(self, opts: BroadcastOptions, *, close: bool) -> None: ...

    @abstractmethod
    async def server_side_emit(self, event: str, args: Sequence[Any]) -> int:
        """Send an event to the other server processes; return how many were reached."""

    async def server_side_emit_with_ack(
        self, event: str, args: Sequence[Any], seconds: float | None
    ) -> list[Any]:
        """Send an event to the other server processes and collect one reply from each,
        waiting at most ``seconds`` (``None``: the adapter's own request timeout)."""
        return []

    async def all_rooms(self) -> frozenset[str]:
        """Every room of every process (this one only, for a single-process adapter)."""
        return frozenset(self.rooms())

    # -- connection state recovery (see realtime.adapters.recovery) --------------------

    #: Whether this adapter keeps sessions and recoverable events. With recovery
    #: on, its ``broadcast`` appends an offset (a string) to the arguments of every
    #: recoverable event (:func:`~realtime.adapters.recovery.is_recoverable`) and
    #: keeps the event for replay.
    supports_recovery: ClassVar[bool] = False
    #: Whether saved sessions outlive this process (a shared store): the namespace
    #: then saves each session as it changes, not only when it disconnects, so
    #: a crash loses nothing.
    durable_sessions: ClassVar[bool] = False

    def stamp(self, packet: Packet, opts: BroadcastOptions) -> Packet | None:
        """For an adapter that gives offsets without I/O: keep ``packet`` (sent to
        ``opts``'s one local socket) and return it with its offset, so the socket
        can write it itself; ``None``: send it with :meth:`broadcast`."""
        return None

    def recovery_offset(self) -> str | None:
        """The offset a socket connecting now replays from if its client brings none:
        every recoverable event delivered after this call is after it."""
        return None

    async def save_session(self, record: SessionRecord, *, connected: bool) -> None:
        """Keep ``record`` for ``max_disconnection_duration`` (longer while ``connected``:
        the namespace saves live sessions again before they would expire)."""
        raise NotImplementedError(f"{type(self).__name__} does not keep sessions")

    async def discard_session(self, pid: str) -> None:  # noqa: B027 - optional
        """Forget a session that will not be recovered (its client left on purpose)."""

    async def restore_session(
        self,
        pid: str,
        offset: str | None,
        attach: Callable[[RestoredSession], None],
    ) -> RestoredSession:
        """Take the session ``pid`` back, with what its client missed after ``offset``
        (``None``: after the record's own offset).

        Calls ``attach`` (which registers the socket) and joins the socket to its
        rooms in one step with no await between them and the collection of the
        missed events, so that every recoverable event is either in ``missed`` or
        delivered live, never both or neither. Raises
        :class:`~realtime.adapters.recovery.RecoveryError` with the reason when it cannot.
        """
        from realtime.adapters.recovery import RecoveryError, RecoveryFailure

        raise RecoveryError(RecoveryFailure.UNSUPPORTED, type(self).__name__)
