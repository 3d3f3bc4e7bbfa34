"""The immutable ``to()/except_()/volatile/local/timeout()`` chain that ends in the adapter.

Each step returns a new operator, so a partial chain can be kept and reused
(``room = sio.to("lobby")``). The terminal methods encode once and hand the
packet to the namespace's adapter, which shares the frames between recipients.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import anyio

from realtime.adapters.base import BroadcastOptions, SocketDetails, SocketId
from realtime.exceptions import AckTimeoutError, MissingTimeoutError, ReservedEventError
from realtime.socketio.handlers import ack_value
from realtime.socketio.packets import RESERVED_EVENTS, Packet, PacketType

if TYPE_CHECKING:
    from realtime.socketio.namespace import Namespace

Rooms = str | Iterable[str]


def room_set(rooms: Rooms) -> frozenset[str]:
    """``"a"`` or ``["a", "b"]`` as a set of room names (a string is one room, not letters)."""
    return frozenset((rooms,) if isinstance(rooms, str) else rooms)


def check_event(event: str) -> None:
    if not isinstance(event, str):
        raise TypeError(f"event name must be a string, not {type(event).__name__}")
    if event in RESERVED_EVENTS:
        raise ReservedEventError(f"{event!r} is a reserved event name")


@dataclass(frozen=True, slots=True)
class BroadcastOperator:
    """A selection of sockets in one namespace, and what to do with them."""

    namespace: Namespace
    opts: BroadcastOptions = BroadcastOptions()  # noqa: RUF009 - frozen, safe to share
    ack_timeout: float | None = None

    def to(self, rooms: Rooms) -> BroadcastOperator:
        """Also target sockets in ``rooms`` (the union of every ``to`` in the chain)."""
        return replace(self, opts=replace(self.opts, rooms=self.opts.rooms | room_set(rooms)))

    in_ = to

    def except_(self, rooms: Rooms) -> BroadcastOperator:
        """Leave out sockets in any of ``rooms``."""
        excluded = self.opts.except_rooms | room_set(rooms)
        return replace(self, opts=replace(self.opts, except_rooms=excluded))

    @property
    def volatile(self) -> BroadcastOperator:
        """Drop the packet for clients whose transport cannot take it right now."""
        return replace(self, opts=replace(self.opts, volatile=True))

    @property
    def local(self) -> BroadcastOperator:
        """Only this process's sockets, when the adapter spans several."""
        return replace(self, opts=replace(self.opts, local=True))

    def timeout(self, seconds: float) -> BroadcastOperator:
        """How long :meth:`emit_with_ack` waits for every recipient (and
        :meth:`server_side_emit_with_ack` for every server)."""
        return replace(self, ack_timeout=seconds, opts=replace(self.opts, timeout=seconds))

    async def emit(self, event: str, *args: Any) -> None:
        check_event(event)
        packet = Packet(PacketType.EVENT, self.namespace.name, [event, *args])
        await self.namespace.adapter.broadcast(packet, self.opts)

    async def send(self, *args: Any) -> None:
        await self.emit("message", *args)

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Emit and collect one answer per recipient, in arrival order.

        Needs :meth:`timeout` first, as in the reference server (a broadcast
        may reach a client that never answers): :class:`MissingTimeoutError`
        otherwise. Raises :class:`AckTimeoutError` when the timeout passes (or
        a recipient disconnects) before every recipient answered; it carries
        the answers that did arrive and the ids of the sockets that did not.
        """
        check_event(event)
        if self.ack_timeout is None:
            raise MissingTimeoutError(
                "a broadcast with acknowledgements needs .timeout(seconds) first"
            )
        ack_id = self.namespace.next_ack_id()
        packet = Packet(PacketType.EVENT, self.namespace.name, [event, *args], ack_id)
        recipients: set[SocketId] = set()
        answers: dict[SocketId, Any] = {}
        gone: set[SocketId] = set()
        reported = False
        done = anyio.Event()

        def check_done() -> None:
            if reported and len(answers) + len(gone) >= len(recipients):
                done.set()

        def on_recipients(sids: Sequence[SocketId], /, *, complete: bool = True) -> None:
            nonlocal reported
            recipients.update(sids)
            reported = reported or complete
            check_done()

        def on_ack(sid: SocketId, args: list[Any] | None) -> None:
            if args is None:
                gone.add(sid)
            else:
                answers[sid] = ack_value(args)
            check_done()

        try:
            await self.namespace.adapter.broadcast_with_ack(
                packet, self.opts, on_recipients, on_ack
            )
            with anyio.move_on_after(self.ack_timeout):
                await done.wait()
        finally:
            for sid in recipients:
                self.namespace.forget_ack(sid, ack_id)
        missing = sorted(recipients - answers.keys())
        if missing or not reported:
            if self.namespace.server.observer is not None:
                self.namespace.server.observer.ack_timeout(self.namespace.name)
            servers = "" if reported else " (some servers did not report their clients)"
            raise AckTimeoutError(
                f"{len(missing)} of {len(recipients)} clients did not acknowledge{servers}: "
                + ", ".join(missing),
                responses=list(answers.values()),
                missing=list(missing),
            )
        return list(answers.values())

    async def fetch_sockets(self) -> list[SocketDetails]:
        return await self.namespace.adapter.fetch_sockets(self.opts)

    async def sockets_join(self, rooms: Rooms) -> None:
        await self.namespace.adapter.add_sockets(self.opts, room_set(rooms))

    async def sockets_leave(self, rooms: Rooms) -> None:
        await self.namespace.adapter.del_sockets(self.opts, room_set(rooms))

    async def disconnect_sockets(self, close: bool = False) -> None:
        await self.namespace.adapter.disconnect_sockets(self.opts, close=close)

    async def server_side_emit(self, event: str, *args: Any) -> int:
        """Send ``event`` to this namespace's server-side handlers on the other servers
        (see :meth:`Namespace.on_server`); returns how many servers it reached."""
        check_event(event)
        return await self.namespace.adapter.server_side_emit(event, args)

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """As :meth:`server_side_emit`, and collect each other server's reply (its
        handler's return value). Waits ``timeout(seconds)`` if set, else the adapter's
        request timeout; :class:`~realtime.exceptions.ClusterTimeoutError` carries the
        replies that arrived when a server does not answer in time."""
        check_event(event)
        return await self.namespace.adapter.server_side_emit_with_ack(event, args, self.ack_timeout)

    async def all_rooms(self) -> frozenset[str]:
        """Every room on every server of the cluster."""
        return await self.namespace.adapter.all_rooms()
