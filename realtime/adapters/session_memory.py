"""The one-process adapter with connection state recovery: sessions and events kept in memory.

Offsets are a per-process prefix and a counter, so the offset of the i-th kept
event is found by arithmetic, not by search, and an offset from another
process (or an earlier run) never matches. Both stores are bounded: events by
age (``max_disconnection_duration``) and count (``max_stored_packets``),
sessions by age. They are pruned as they grow, without a timer.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from realtime.adapters.base import BroadcastOptions, LocalNamespace
from realtime.adapters.memory import InMemoryAdapter
from realtime.adapters.recovery import (
    RecoveryError,
    RecoveryFailure,
    RecoveryOptions,
    RestoredSession,
    SessionRecord,
    is_recoverable,
    should_include,
)

if TYPE_CHECKING:
    from realtime.socketio.packets import Packet


class _Kept(NamedTuple):
    number: int
    rooms: frozenset[str]
    except_rooms: frozenset[str]
    args: list[Any]  # event arguments, offset last
    at: float


class SessionAwareAdapter(InMemoryAdapter):
    """:class:`InMemoryAdapter` that keeps disconnected sessions and recent recoverable events.

    The default adapter of a server with ``connection_state_recovery`` on.
    Sessions live in this process only: they survive a client's lost
    connection, not the process (use the Redis Streams adapter for that).
    """

    supports_recovery = True

    def __init__(self, namespace: LocalNamespace, *, clock: Callable[[], float] = time.monotonic):
        super().__init__(namespace)
        self._clock = clock
        # Fixed for the server's life (RecoveryOptions is frozen): read once.
        options = namespace.recovery or RecoveryOptions()
        self._max_age = options.max_disconnection_duration
        self._max_count = options.max_stored_packets
        self._prefix = secrets.token_hex(4) + "-"
        # Offset 0 is "before the first event": what a socket connecting first replays from.
        self._next = 1
        self._events: deque[_Kept] = deque()
        # pid -> (record, saved at); in save order, so the oldest is first.
        self._sessions: dict[str, tuple[SessionRecord, float]] = {}

    def _offset(self, number: int) -> str:
        return f"{self._prefix}{number}"

    def _number(self, offset: str) -> int | None:
        if not offset.startswith(self._prefix):
            return None
        digits = offset[len(self._prefix) :]
        return int(digits) if digits.isdigit() else None

    # -- events -------------------------------------------------------------------

    async def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        self.broadcast_now(self.keep(packet, opts), opts)

    def stamp(self, packet: Packet, opts: BroadcastOptions) -> Packet:
        return self.keep(packet, opts)

    def keep(self, packet: Packet, opts: BroadcastOptions) -> Packet:
        """Give a recoverable packet its offset and keep it; others pass unchanged."""
        if self.namespace.recovery is None or not is_recoverable(packet, opts):
            return packet
        number = self._next
        self._next += 1
        args = [*packet.data, f"{self._prefix}{number}"]
        now = self._clock()
        self._events.append(_Kept(number, opts.rooms, opts.except_rooms, args, now))
        self._prune_events(now)
        return type(packet)(packet.type, packet.namespace, args, packet.id)

    def _prune_events(self, now: float) -> None:
        events = self._events
        oldest = now - self._max_age
        while events and (len(events) > self._max_count or events[0].at < oldest):
            events.popleft()

    def recovery_offset(self) -> str | None:
        # The last offset given; a client that brings it back replays what followed.
        return self._offset(self._next - 1)

    # -- sessions -----------------------------------------------------------------

    async def save_session(self, record: SessionRecord, *, connected: bool) -> None:
        now = self._clock()
        self._sessions.pop(record.pid, None)
        self._sessions[record.pid] = (record, now)
        self._prune_sessions(now)

    def _prune_sessions(self, now: float) -> None:
        oldest = now - self._max_age
        sessions = self._sessions
        while sessions:
            pid, (_, saved) = next(iter(sessions.items()))
            if saved >= oldest:
                break
            del sessions[pid]

    async def discard_session(self, pid: str) -> None:
        self._sessions.pop(pid, None)

    async def restore_session(
        self,
        pid: str,
        offset: str | None,
        attach: Callable[[RestoredSession], None],
    ) -> RestoredSession:
        now = self._clock()
        self._prune_sessions(now)
        self._prune_events(now)
        kept = self._sessions.pop(pid, None)
        if kept is None:
            raise RecoveryError(RecoveryFailure.UNKNOWN_SESSION)
        record = kept[0]
        start = offset if offset is not None else record.offset
        number = self._number(start) if start is not None else None
        events = self._events
        first = events[0].number if events else self._next
        # The offset must be one this process gave, and nothing after it may be gone.
        if number is None or number >= self._next or number + 1 < first:
            raise RecoveryError(RecoveryFailure.UNKNOWN_OFFSET, repr(start))
        restored = RestoredSession(record)
        rooms = record.rooms
        for index in range(number + 1 - first, len(events)):
            event = events[index]
            if should_include(rooms, event.rooms, event.except_rooms):
                restored.missed.append(event.args)
        attach(restored)
        self.join_now(record.sid, (record.sid, *record.rooms))
        return restored
