"""Connection state recovery, as adapters see it: session records, offsets, replay rules.

A server with recovery on gives each socket a private id (``pid``) and each
recoverable event an offset, appended as the event's last argument (so a
client records the last one it processed). A client that comes back within
``max_disconnection_duration`` with its pid and offset gets its socket id,
rooms and data back, and every recoverable event sent to it meanwhile.

The adapter owns what is kept (records, the log of recoverable events) and
decides the offsets; the namespace decides when a record is written. No I/O
here: only the records, the rules both sides share, and the reasons a
recovery can fail.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from realtime.exceptions import RealtimeError

if TYPE_CHECKING:
    from realtime.adapters.base import BroadcastOptions, SocketId
    from realtime.socketio.packets import Packet


@dataclass(frozen=True, slots=True)
class RecoveryOptions:
    """``Server(connection_state_recovery=RecoveryOptions(...))``, or ``True`` for these defaults.

    ``max_disconnection_duration`` (seconds): how long a session is kept for
    its client after the connection is lost; ``skip_middlewares``: a
    recovered socket skips the namespace middleware, as in the reference
    server; ``max_stored_packets``: how many recoverable events a one-process
    server keeps at most (the oldest go first; a client that missed more gets
    a new session), the Redis Streams adapter's ``max_len`` plays this part
    in a cluster.
    """

    max_disconnection_duration: float = 120.0
    skip_middlewares: bool = True
    max_stored_packets: int = 10_000

    def __post_init__(self) -> None:
        if self.max_disconnection_duration <= 0:
            raise ValueError("max_disconnection_duration must be positive")
        if self.max_stored_packets < 1:
            raise ValueError("max_stored_packets must be at least 1")


@dataclass(slots=True)
class SessionRecord:
    """What is kept of a socket so its client can take it up again.

    The fields of the reference record (``sid``, ``pid``, ``rooms``, ``data``)
    plus ``offset``: where replay starts for a client that brings no offset of
    its own (it had received no recoverable event), the position of the
    event log when the socket connected.
    """

    sid: SocketId
    pid: str
    rooms: list[str]
    data: dict[str, Any]
    offset: str | None = None


@dataclass(slots=True)
class RestoredSession:
    """A record taken back, with the event arguments (offset last) the client missed, in order."""

    record: SessionRecord
    missed: list[list[Any]] = field(default_factory=list)


class RecoveryFailure(enum.Enum):
    """Why a client that asked to recover got a new session instead (logged, and on the socket)."""

    #: Recovery is off on this server, or the adapter keeps no sessions.
    UNSUPPORTED = "unsupported"
    #: No session under that pid: never existed, expired, or taken by another connection.
    UNKNOWN_SESSION = "unknown session"
    #: The offset is not in the event log: malformed, or trimmed past (too much was missed).
    UNKNOWN_OFFSET = "unknown offset"
    #: The store could not be reached.
    STORE_UNAVAILABLE = "store unavailable"


class RecoveryError(RealtimeError):
    """A session could not be restored; :attr:`failure` says why."""

    def __init__(self, failure: RecoveryFailure, detail: str = "") -> None:
        super().__init__(f"{failure.value}: {detail}" if detail else failure.value)
        self.failure = failure


def is_recoverable(packet: Packet, opts: BroadcastOptions) -> bool:
    """Whether a broadcast gets an offset and is kept for replay (as in the reference).

    Events only; not with an ack id (the callback cannot move to another
    server), not volatile (the sender accepted losing it).
    """
    from realtime.socketio.packets import PacketType

    return packet.type is PacketType.EVENT and packet.id is None and not opts.volatile


def should_include(
    session_rooms: Iterable[str], rooms: Iterable[str], except_rooms: Iterable[str]
) -> bool:
    """Whether a kept broadcast to ``rooms`` minus ``except_rooms`` reached a session
    in ``session_rooms`` (as the reference decides it at replay)."""
    session = set(session_rooms)
    targets = set(rooms)
    included = not targets or not session.isdisjoint(targets)
    return included and session.isdisjoint(except_rooms)
