"""The one-process adapter with connection state recovery: sessions and events kept in memory."""

from __future__ import annotations

from realtime.adapters.memory import InMemoryAdapter


class SessionAwareAdapter(InMemoryAdapter):
    """:class:`InMemoryAdapter` that keeps disconnected sessions and recent recoverable events."""

    supports_recovery = True
