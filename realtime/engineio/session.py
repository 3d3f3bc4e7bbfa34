"""The pure state of one Engine.IO session: outbox, heartbeat deadlines, upgrade.

No awaits, sockets or clocks here: callers pass ``now`` and ask for the next
deadline, so heartbeat behaviour is tested with a fake clock and no sleeps.
The server's heartbeat task (:mod:`realtime.engineio.server`) compares
:meth:`SessionState.deadline` with the clock and calls :meth:`SessionState.on_timer`.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Iterable

from realtime.engineio.config import EngineConfig, Transport
from realtime.engineio.packets import PING, OutPacket

#: The clock every deadline is measured on. A plain monotonic clock, the same
#: under any event loop, and cheaper than asking the running backend each time.
now = time.monotonic


class CloseReason(enum.StrEnum):
    """Why a session ended; the names are the ones Socket.IO reports."""

    TRANSPORT_CLOSE = "transport close"
    PING_TIMEOUT = "ping timeout"
    PARSE_ERROR = "parse error"
    FORCED_CLOSE = "forced close"
    TRANSPORT_ERROR = "transport error"
    SERVER_SHUTDOWN = "server shutting down"


class TimerAction(enum.Enum):
    NOTHING = "nothing"
    PING_SENT = "ping sent"
    TIMED_OUT = "timed out"


class SessionState:
    """Everything about a session that does not touch the network.

    Heartbeat (spec, "Heartbeat"): a ping goes out ``ping_interval`` after the
    open or the last pong; if no pong comes within ``ping_timeout`` after it,
    the session times out.
    """

    __slots__ = (
        "_interval",
        "_max_buffer",
        "_timeout",
        "close_reason",
        "inbound_paused",
        "next_ping",
        "outbox",
        "outbox_bytes",
        "pong_deadline",
        "sid",
        "transport",
        "upgrading",
    )

    def __init__(self, sid: str, transport: Transport, config: EngineConfig, now: float) -> None:
        self.sid = sid
        self.transport: Transport = transport
        self._interval = config.ping_interval
        self._timeout = config.ping_timeout
        self._max_buffer = config.max_buffer_bytes
        self.outbox: deque[OutPacket] = deque()
        self.outbox_bytes = 0
        self.next_ping: float | None = now + self._interval
        self.pong_deadline: float | None = None
        #: True between the ``2probe`` on a new WebSocket and its ``5``: packets
        #: wait in the outbox for the WebSocket instead of going out on polling.
        self.upgrading = False
        #: Set once the session is closing; packets already queued still go out.
        self.close_reason: CloseReason | None = None
        #: The server stopped reading this client because its events are not
        #: taken yet (inbound backpressure): its pong may be waiting unread in
        #: the network buffers, so a missing pong is not held against it.
        self.inbound_paused = False

    # -- outbox ---------------------------------------------------------------

    def enqueue(self, packets: Iterable[OutPacket]) -> bool:
        """Queue packets in order; ``False`` when closing or over the buffer cap.

        On overflow nothing is queued, so the client never sees half a message.
        """
        if self.close_reason is not None:
            return False
        # A broadcast hands every recipient the same list: no copy per recipient.
        if not isinstance(packets, list | tuple):
            packets = list(packets)
        size = packets[0].size if len(packets) == 1 else sum(p.size for p in packets)
        if self.outbox_bytes + size > self._max_buffer:
            return False
        self.outbox.extend(packets)
        self.outbox_bytes += size
        return True

    def take(self) -> list[OutPacket]:
        """Remove and return everything queued for writing.

        Their bytes still count against ``max_buffer_bytes`` until the writer
        reports them with :meth:`written`: a packet handed to a transport that
        cannot write is still memory this client holds, so the cap is the real
        cap and not twice it.
        """
        packets = list(self.outbox)
        self.outbox.clear()
        return packets

    def written(self, size: int) -> None:
        """``size`` bytes taken by :meth:`take` have left (or been given up)."""
        self.outbox_bytes = max(0, self.outbox_bytes - size)

    def discard(self) -> None:
        """Drop everything queued or in flight (an abrupt close)."""
        self.outbox.clear()
        self.outbox_bytes = 0

    # -- heartbeat ------------------------------------------------------------

    def deadline(self) -> float:
        """When :meth:`on_timer` must next be called."""
        if self.pong_deadline is not None:
            return self.pong_deadline
        assert self.next_ping is not None
        return self.next_ping

    def on_timer(self, now: float) -> TimerAction:
        """Send a due ping (queued in the outbox) or report a missed pong."""
        if self.pong_deadline is not None:
            if now < self.pong_deadline:
                return TimerAction.NOTHING
            if not self.inbound_paused:
                return TimerAction.TIMED_OUT
            # The pong may sit unread behind packets the layer above has not taken
            # yet (backpressure, a slow handler under ordered dispatch). Wait on, and
            # ping again so the client's own heartbeat (which drops a server that
            # stops pinging) stays fed; each ping is answered once reading resumes.
            self.outbox.append(PING)
            self.outbox_bytes += PING.size
            self.pong_deadline = now + self._timeout
            return TimerAction.PING_SENT
        if self.next_ping is not None and now >= self.next_ping:
            # A ping is never refused for the buffer cap: it is 1 byte and the
            # heartbeat is what detects the stuck client in the first place.
            self.outbox.append(PING)
            self.outbox_bytes += PING.size
            # The deadline keeps to the schedule (ping due + timeout), as with
            # a precise timer, so a heartbeat checked a little late still ends
            # a silent session on time; but a ping sent very late (a stalled
            # loop) still leaves the client at least half the timeout.
            self.pong_deadline = max(self.next_ping + self._timeout, now + self._timeout / 2)
            self.next_ping = None
            return TimerAction.PING_SENT
        return TimerAction.NOTHING

    def resume_inbound(self, now: float) -> None:
        """Reading again after backpressure: give the unread pong time to arrive."""
        self.inbound_paused = False
        if self.pong_deadline is not None:
            self.pong_deadline = max(self.pong_deadline, now + self._timeout / 2)

    def on_pong(self, now: float) -> None:
        self.pong_deadline = None
        self.next_ping = now + self._interval
