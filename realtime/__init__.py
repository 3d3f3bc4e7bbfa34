"""realtime: a Socket.IO-compatible realtime layer (Engine.IO v4 / Socket.IO v5) on ASGI."""

from realtime.adapters import Adapter, BroadcastOptions, InMemoryAdapter
from realtime.exceptions import (
    AckTimeoutError,
    BufferFullError,
    ConnectionRefusedError,
    EngineRequestError,
    MissingTimeoutError,
    NotRunningError,
    PacketDecodeError,
    PayloadTooLarge,
    ProtocolError,
    RealtimeError,
    ReservedEventError,
    SessionClosedError,
    SocketIOPacketError,
)
from realtime.serving import run
from realtime.socketio import (
    NO_ACK,
    BroadcastOperator,
    DecoderLimits,
    DisconnectReason,
    Handshake,
    Namespace,
    ParentNamespace,
    Server,
    Socket,
)

__all__ = [
    "NO_ACK",
    "AckTimeoutError",
    "Adapter",
    "BroadcastOperator",
    "BroadcastOptions",
    "BufferFullError",
    "ConnectionRefusedError",
    "DecoderLimits",
    "DisconnectReason",
    "EngineRequestError",
    "Handshake",
    "InMemoryAdapter",
    "MissingTimeoutError",
    "Namespace",
    "NotRunningError",
    "PacketDecodeError",
    "ParentNamespace",
    "PayloadTooLarge",
    "ProtocolError",
    "RealtimeError",
    "ReservedEventError",
    "Server",
    "SessionClosedError",
    "Socket",
    "SocketIOPacketError",
    "run",
]
