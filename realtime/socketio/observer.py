"""What the Socket.IO layer reports to an optional observer (metrics, say).

``Server.observer`` is ``None`` unless metrics are turned on; each hook sits
behind that check. Nothing here imports an implementation: it is handed down.
"""

from __future__ import annotations

from typing import Protocol


class SocketObserver(Protocol):
    def socket_connected(self, namespace: str, transport: str) -> None: ...

    def socket_disconnected(self, namespace: str, transport: str, reason: str) -> None: ...

    def event_in(self, namespace: str) -> None: ...

    def events_out(self, namespace: str, count: int) -> None: ...

    def handler_done(self, namespace: str, event: str, seconds: float) -> None:
        """A registered event handler returned (or raised) after ``seconds``."""

    def volatile_dropped(self) -> None: ...

    def ack_timeout(self, namespace: str) -> None: ...

    def fan_out(self, namespace: str, recipients: int) -> None:
        """A broadcast reached ``recipients`` local sockets."""
