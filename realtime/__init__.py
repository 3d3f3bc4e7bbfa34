"""realtime: a Socket.IO-compatible realtime layer (Engine.IO v4 / Socket.IO v5) on ASGI."""

from realtime.exceptions import (
    AckTimeoutError,
    BufferFullError,
    ConnectionRefusedError,
    EngineRequestError,
    NotRunningError,
    PacketDecodeError,
    PayloadTooLarge,
    ProtocolError,
    RealtimeError,
    ReservedEventError,
    SessionClosedError,
    SocketIOPacketError,
)

__all__ = [
    "AckTimeoutError",
    "BufferFullError",
    "ConnectionRefusedError",
    "EngineRequestError",
    "NotRunningError",
    "PacketDecodeError",
    "PayloadTooLarge",
    "ProtocolError",
    "RealtimeError",
    "ReservedEventError",
    "SessionClosedError",
    "SocketIOPacketError",
]
