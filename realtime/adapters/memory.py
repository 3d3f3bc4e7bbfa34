"""The default adapter: rooms in this process's memory, delivery to local sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from realtime.adapters.base import (
    Adapter,
    BroadcastOptions,
    LocalNamespace,
    RecipientsCallback,
    SocketDetails,
    SocketId,
    encode_frames,
)

if TYPE_CHECKING:
    from realtime.socketio.packets import Packet


class InMemoryAdapter(Adapter):
    """Rooms as two maps (room -> sockets, socket -> rooms), kept in step.

    Each change of a socket's rooms, whoever made it (the socket, a selector,
    a peer through a cluster adapter, a disconnection), is reported to the
    namespace's optional ``room_joined``/``room_left`` (see
    :class:`~realtime.adapters.base.LocalNamespace`), as the reference
    adapter's ``join-room``/``leave-room`` events: the Admin UI shows it at once.
    """

    def __init__(self, namespace: LocalNamespace) -> None:
        super().__init__(namespace)
        self._rooms: dict[str, set[SocketId]] = {}
        self._sids: dict[SocketId, set[str]] = {}
        # Optional in LocalNamespace: looked up once, not per change.
        self._report_join: Callable[[SocketId, str], None] | None = getattr(
            namespace, "room_joined", None
        )
        self._report_leave: Callable[[SocketId, str], None] | None = getattr(
            namespace, "room_left", None
        )

    async def add_all(self, sid: SocketId, rooms: Iterable[str]) -> None:
        self.join_now(sid, rooms)

    def join_now(self, sid: SocketId, rooms: Iterable[str]) -> None:
        """Join ``sid`` to ``rooms`` without yielding (a restored socket joins in the same
        step as its missed events are collected)."""
        joined = self._sids.setdefault(sid, set())
        for room in rooms:
            self._join_room(sid, joined, room)

    def _join_room(self, sid: SocketId, joined: set[str], room: str) -> None:
        members = self._rooms.get(room)
        if members is None:
            members = self._rooms[room] = set()
        elif sid in members:
            return
        members.add(sid)
        joined.add(room)
        if self._report_join is not None:
            self._report_join(sid, room)

    async def delete(self, sid: SocketId, room: str) -> None:
        self._sids.get(sid, set()).discard(room)
        self._leave_room(sid, room)

    async def delete_all(self, sid: SocketId) -> None:
        for room in self._sids.pop(sid, set()):
            self._leave_room(sid, room)

    def _leave_room(self, sid: SocketId, room: str) -> None:
        members = self._rooms.get(room)
        if members is None or sid not in members:
            return
        members.remove(sid)
        if not members:
            del self._rooms[room]  # an empty room does not linger
        if self._report_leave is not None:
            self._report_leave(sid, room)

    def socket_rooms(self, sid: SocketId) -> frozenset[str]:
        return frozenset(self._sids.get(sid, ()))

    def rooms(self) -> dict[str, frozenset[SocketId]]:
        return {room: frozenset(sids) for room, sids in self._rooms.items()}

    def _targets(self, opts: BroadcastOptions) -> Iterator[SocketId]:
        excluded: set[SocketId] = set()
        for room in opts.except_rooms:
            excluded.update(self._rooms.get(room, ()))
        if opts.rooms:
            seen: set[SocketId] = set()
            for room in opts.rooms:
                for sid in self._rooms.get(room, ()):
                    if sid not in seen and sid not in excluded:
                        seen.add(sid)
                        yield sid
        else:
            for sid in self._sids:
                if sid not in excluded:
                    yield sid

    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        self.broadcast_now(packet, opts)

    def broadcast_now(self, packet: Packet, opts: BroadcastOptions) -> None:
        """Deliver to the local targets without yielding, so that broadcasts
        a peer published in order are delivered in that order."""
        frames = encode_frames(packet)
        deliver = self.namespace.deliver
        # list(): delivery may close a socket whose buffer is full, editing the maps.
        delivered = 0
        for sid in list(self._targets(opts)):
            delivered += deliver(sid, frames, volatile=opts.volatile)
        self._fanned_out(delivered)

    async def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        on_recipients: RecipientsCallback,
        on_ack: Callable[[SocketId, list[Any] | None], None],
    ) -> None:
        self.broadcast_with_ack_now(packet, opts, on_recipients, on_ack)

    def broadcast_with_ack_now(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        on_recipients: RecipientsCallback,
        on_ack: Callable[[SocketId, list[Any] | None], None],
    ) -> None:
        assert packet.id is not None, "broadcast_with_ack needs a packet id"
        frames = encode_frames(packet)
        recipients: list[SocketId] = []
        namespace = self.namespace
        for sid in list(self._targets(opts)):
            # Registered first: a client may answer before deliver() returns.
            namespace.expect_ack(sid, packet.id, partial(on_ack, sid))
            if namespace.deliver(sid, frames, volatile=opts.volatile):
                recipients.append(sid)
            else:
                namespace.forget_ack(sid, packet.id)
        self._fanned_out(len(recipients))
        on_recipients(recipients)

    def _fanned_out(self, recipients: int) -> None:
        # Optional in LocalNamespace: a namespace that does not report is fine.
        report = getattr(self.namespace, "fanned_out", None)
        if report is not None:
            report(recipients)

    async def fetch_sockets(self, opts: BroadcastOptions) -> list[SocketDetails]:
        found = (self.namespace.local_socket(sid) for sid in self._targets(opts))
        return [socket for socket in found if socket is not None]

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        self.add_sockets_now(opts, rooms)

    def add_sockets_now(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        for sid in list(self._targets(opts)):
            self.join_now(sid, rooms)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        self.del_sockets_now(opts, rooms)

    def del_sockets_now(self, opts: BroadcastOptions, rooms: Iterable[str]) -> None:
        rooms = list(rooms)
        for sid in list(self._targets(opts)):
            for room in rooms:
                self._sids.get(sid, set()).discard(room)
                self._leave_room(sid, room)

    async def disconnect_sockets(self, opts: BroadcastOptions, *, close: bool) -> None:
        for sid in list(self._targets(opts)):
            await self.namespace.disconnect_socket(sid, close=close)

    async def server_side_emit(self, event: str, args: Sequence[Any]) -> int:
        """One process has no peers to reach."""
        return 0
