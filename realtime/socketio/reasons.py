"""Why a socket left its namespace, with the names Socket.IO gives them."""

from __future__ import annotations

import enum

from realtime.engineio import CloseReason


class DisconnectReason(enum.StrEnum):
    CLIENT_NAMESPACE_DISCONNECT = "client namespace disconnect"
    SERVER_NAMESPACE_DISCONNECT = "server namespace disconnect"
    TRANSPORT_CLOSE = "transport close"
    TRANSPORT_ERROR = "transport error"
    PING_TIMEOUT = "ping timeout"
    PARSE_ERROR = "parse error"
    FORCED_CLOSE = "forced close"
    SERVER_SHUTTING_DOWN = "server shutting down"

    @classmethod
    def from_close(cls, reason: CloseReason) -> DisconnectReason:
        """The engine's close reasons carry the same strings as Socket.IO's."""
        try:
            return cls(reason.value)
        except ValueError:
            return cls.TRANSPORT_CLOSE
