"""Engine.IO v4: one session over WebSocket or HTTP long-polling, with upgrade."""

from realtime.engineio.config import EngineConfig, Transport
from realtime.engineio.connection import EngineHandler, EngineSession, RequestInfo
from realtime.engineio.packets import OutPacket, Packet, PacketType
from realtime.engineio.server import EngineServer
from realtime.engineio.session import CloseReason

__all__ = [
    "CloseReason",
    "EngineConfig",
    "EngineHandler",
    "EngineServer",
    "EngineSession",
    "OutPacket",
    "Packet",
    "PacketType",
    "RequestInfo",
    "Transport",
]
