"""One Engine.IO session carrying sockets for any number of namespaces.

It decodes the session's messages, routes packets to sockets, and enforces the
connection rules of socket.io-protocol v5: the first packet must be CONNECT,
a malformed packet closes the session with "parse error". (A session that joins
no namespace within ``connect_timeout`` is closed by the server's sweep.)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from realtime.adapters.base import encode_frames
from realtime.engineio import CloseReason, EngineSession
from realtime.exceptions import SocketIOPacketError
from realtime.socketio.packets import Decoder, DecoderLimits, Packet, PacketType
from realtime.socketio.reasons import DisconnectReason
from realtime.socketio.socket import Socket

if TYPE_CHECKING:
    from realtime.socketio.server import Server

logger = logging.getLogger("realtime.socketio")


class Connection:
    """The Socket.IO state of one engine session."""

    def __init__(self, server: Server, session: EngineSession, limits: DecoderLimits) -> None:
        self.server = server
        self.session = session
        self.decoder = Decoder(limits)
        self.sockets: dict[str, Socket] = {}
        self.joined_once = False

    def __repr__(self) -> str:
        return f"<Connection {self.session.sid} namespaces={list(self.sockets)}>"

    def send(self, packet: Packet) -> bool:
        return self.session.send_packets(encode_frames(packet))

    def forget(self, socket: Socket) -> None:
        if self.sockets.get(socket.namespace.name) is socket:
            del self.sockets[socket.namespace.name]

    async def receive(self, message: str | bytes) -> None:
        if self.session.closed:
            return
        try:
            packet = self.decoder.feed(message)
        except SocketIOPacketError as exc:
            logger.info("session %s: parse error: %s", self.session.sid, exc)
            self.session.close(CloseReason.PARSE_ERROR)
            return
        if packet is not None:
            await self.dispatch(packet)

    async def dispatch(self, packet: Packet) -> None:
        socket = self.sockets.get(packet.namespace)
        ptype = packet.type
        if ptype is PacketType.CONNECT:
            if socket is not None:
                # The reference server treats a second CONNECT as a broken client.
                self.session.close(CloseReason.PARSE_ERROR)
                return
            self.joined_once = True
            await self.server.connect(self, packet.namespace, packet.data or {})
            if self.sockets:
                self.server.joined(self)
        elif ptype is PacketType.CONNECT_ERROR or not self.joined_once:
            # Only a server sends CONNECT_ERROR, and the first packet must be CONNECT.
            self.session.close(CloseReason.PARSE_ERROR)
        elif socket is None:
            # As the reference server (client.ts ``ondecoded``): an EVENT or ACK
            # for a namespace this client is not in closes the connection. A
            # DISCONNECT for one is what the client wants already: ignored.
            if ptype is not PacketType.DISCONNECT:
                logger.info(
                    "session %s: %s for a namespace it has not joined, closing",
                    self.session.sid,
                    ptype.name,
                )
                self.session.close(CloseReason.PARSE_ERROR)
        elif ptype is PacketType.EVENT:
            if self.server.async_handlers:
                self.server.engine.run_soon(self._run_event, socket, packet)
            else:
                await socket.handle_event(packet)
        elif ptype is PacketType.ACK:
            socket.handle_ack(packet)
        elif ptype is PacketType.DISCONNECT:
            await socket.closed(DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)

    async def _run_event(self, socket: Socket, packet: Packet) -> None:
        # Holding the session lets the handler's replies go out when it returns,
        # written by this task, instead of waking the WebSocket's writer per packet.
        self.session.hold()
        try:
            await socket.handle_event(packet)
        finally:
            await self.session.release()

    async def disconnect_all(self) -> None:
        """Server-side ``disconnect(close=True)``: leave every namespace, then close."""
        for socket in list(self.sockets.values()):
            await socket.disconnect()
        self.session.close(CloseReason.FORCED_CLOSE)

    async def closed(self, reason: CloseReason) -> None:
        why = DisconnectReason.from_close(reason)
        for socket in list(self.sockets.values()):
            await socket.closed(why)
