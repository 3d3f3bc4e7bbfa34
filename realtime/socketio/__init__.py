"""Socket.IO v5 on top of the Engine.IO layer: packets, namespaces, sockets, broadcast."""

from realtime.socketio.broadcast import BroadcastOperator
from realtime.socketio.handlers import NO_ACK
from realtime.socketio.namespace import Namespace, ParentNamespace
from realtime.socketio.packets import Decoder, DecoderLimits, Packet, PacketType
from realtime.socketio.reasons import DisconnectReason
from realtime.socketio.server import Server
from realtime.socketio.socket import Handshake, Socket

__all__ = [
    "NO_ACK",
    "BroadcastOperator",
    "Decoder",
    "DecoderLimits",
    "DisconnectReason",
    "Handshake",
    "Namespace",
    "Packet",
    "PacketType",
    "ParentNamespace",
    "Server",
    "Socket",
]
