"""What the engine reports to an optional observer (metrics, say).

The engine holds ``observer: EngineObserver | None``; every hook is behind a
``None`` check, so an unobserved server pays one attribute test per event.
The engine never imports what implements it: observers are handed down.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from realtime.engineio.config import Transport

if TYPE_CHECKING:
    from realtime.engineio.connection import EngineSession


class EngineObserver(Protocol):
    def handshake(self, transport: Transport) -> None:
        """A session opened on ``transport``."""

    def upgrade_started(self) -> None:
        """A WebSocket opened to upgrade a polling session."""

    def upgrade_finished(self, session: EngineSession, ok: bool) -> None:
        """The upgrade completed (the session is on WebSocket now) or was abandoned."""

    def bytes_in(self, transport: Transport, size: int) -> None: ...

    def bytes_out(self, transport: Transport, size: int) -> None: ...

    def buffer_full(self) -> None:
        """A session went over ``max_buffer_bytes``: what it was sent is dropped."""

    def sample(self, sessions: Iterable[EngineSession]) -> None:
        """Called on each heartbeat tick, to sample gauges such as outbox sizes."""
