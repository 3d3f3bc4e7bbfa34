"""What the engine reports to an optional observer (Prometheus metrics, the Admin UI).

The engine holds ``observer: EngineObserver | None``; every hook call sits
behind a ``None`` check, so an unobserved server pays one attribute test per
event. The engine never imports what implements it: observers are handed down
(the Socket.IO layer's :class:`~realtime.socketio.observer.SocketObserver`
extends this one, and the server sets the same object on its engine).

Every hook does nothing here: an observer overrides the ones it needs, and a
hook added later costs the others nothing to support.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from realtime.engineio.config import Transport

if TYPE_CHECKING:
    from realtime.engineio.connection import EngineSession
    from realtime.engineio.packets import OutPacket


class EngineObserver:
    """Engine events; hooks run on the event loop and must not block or raise."""

    def handshake(self, transport: Transport) -> None:
        """A session opened on ``transport``."""

    def session_closed(self, session: EngineSession, reason: str) -> None:
        """A session ended, for ``reason`` (``"transport close"``, ``"ping timeout"``...)."""

    def upgrade_started(self) -> None:
        """A WebSocket opened to upgrade a polling session."""

    def upgrade_finished(self, session: EngineSession, ok: bool) -> None:
        """The upgrade completed (the session is on WebSocket now) or was abandoned."""

    def bytes_in(self, transport: Transport, size: int) -> None:
        """What a WebSocket frame or a polling body carried in."""

    def bytes_out(self, transport: Transport, size: int) -> None:
        """What WebSocket frames or a polling response carried out."""

    def message_in(self, data: str | bytes) -> None:
        """A message packet arrived (text without its type character, or binary)."""

    def packets_queued(self, packets: Sequence[OutPacket]) -> None:
        """Packets were queued for one session (a broadcast reports once per recipient).

        Only what the layer above sends: heartbeats and the open packet are not
        reported, as the reference engine creates them before anyone listens or
        with no data.
        """

    def buffer_full(self) -> None:
        """A session went over ``max_buffer_bytes``: what it was sent is dropped."""

    def sample(self, sessions: Iterable[EngineSession]) -> None:
        """Called on each heartbeat tick, to sample gauges such as outbox sizes."""
