"""realtime: a Socket.IO-compatible realtime layer (Engine.IO v4 / Socket.IO v5) on ASGI."""

from typing import TYPE_CHECKING, Any

from realtime.adapters import Adapter, BroadcastOptions, InMemoryAdapter
from realtime.adapters.recovery import RecoveryError, RecoveryFailure, RecoveryOptions
from realtime.adapters.session_memory import SessionAwareAdapter
from realtime.exceptions import (
    AckTimeoutError,
    BufferFullError,
    ConnectionRefusedError,
    EncodeError,
    EngineRequestError,
    MissingTimeoutError,
    NotRunningError,
    PacketDecodeError,
    PayloadTooLarge,
    ProtocolError,
    PublishError,
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

if TYPE_CHECKING:
    from realtime.emitter import AsyncEmitter, Emitter


def __getattr__(name: str) -> Any:
    """The emitters load on first use: they need the optional ``redis`` extra."""
    if name in {"Emitter", "AsyncEmitter"}:
        from realtime import emitter

        return getattr(emitter, name)
    raise AttributeError(f"module 'realtime' has no attribute {name!r}")


__all__ = [
    "NO_ACK",
    "AckTimeoutError",
    "Adapter",
    "AsyncEmitter",
    "BroadcastOperator",
    "BroadcastOptions",
    "BufferFullError",
    "ConnectionRefusedError",
    "DecoderLimits",
    "DisconnectReason",
    "Emitter",
    "EncodeError",
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
    "PublishError",
    "RealtimeError",
    "RecoveryError",
    "RecoveryFailure",
    "RecoveryOptions",
    "ReservedEventError",
    "Server",
    "SessionAwareAdapter",
    "SessionClosedError",
    "Socket",
    "SocketIOPacketError",
    "run",
]
