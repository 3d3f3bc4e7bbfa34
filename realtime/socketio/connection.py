"""One Engine.IO session carrying sockets for any number of namespaces.

It decodes the session's messages, routes packets to sockets, and enforces the
connection rules of socket.io-protocol v5: the first packet must be CONNECT,
a malformed packet closes the session with "parse error". (A session that joins
no namespace within ``connect_timeout`` is closed by the server's sweep.)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from realtime.adapters.base import encode_frames
from realtime.engineio import CloseReason, EngineSession
from realtime.exceptions import SocketIOPacketError
from realtime.socketio.packets import Decoder, DecoderLimits, Packet, PacketType
from realtime.socketio.reasons import DisconnectReason
from realtime.socketio.socket import Socket

if TYPE_CHECKING:
    from realtime.socketio.server import Server

logger = logging.getLogger("realtime.socketio")

_T = TypeVar("_T")


class Connection:
    """The Socket.IO state of one engine session.

    CONNECT, EVENT and DISCONNECT packets run as jobs on the server's reused
    tasks, so a slow handler never stops this session's transport from being
    read (pongs, acks) or written. At most ``max_inflight_events`` of them run
    or wait at once; past that, :meth:`receive` waits, which stops the
    transport reading this client (TCP pushes back; a polling POST is answered
    only once its events are taken).
    """

    def __init__(
        self, server: Server, session: EngineSession, limits: DecoderLimits, max_inflight: int
    ) -> None:
        self.server = server
        self.session = session
        self.decoder = Decoder(limits)
        self.sockets: dict[str, Socket] = {}
        self.joined_once = False
        self._max_inflight = max_inflight
        self._inflight = 0
        self._room: anyio.Event | None = None

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
            await self._run(self._connect, packet)
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
        elif not socket.connected:
            # Its connect handler is still running: a client sends nothing to a
            # namespace before its CONNECT reply, so this one is ignored.
            logger.debug(
                "session %s: %s for connecting %s", self.session.sid, ptype.name, packet.namespace
            )
        elif ptype is PacketType.EVENT:
            await self._run(socket.handle_event, packet)
        elif ptype is PacketType.ACK:
            socket.handle_ack(packet)
        elif ptype is PacketType.DISCONNECT:
            await self._run(socket.closed, DisconnectReason.CLIENT_NAMESPACE_DISCONNECT)

    async def _connect(self, packet: Packet) -> None:
        await self.server.connect(self, packet.namespace, packet.data or {})
        if self.sockets:
            self.server.joined(self)

    async def _run(self, func: Callable[[_T], Awaitable[object]], arg: _T) -> None:
        """Run ``func(arg)`` as a job of this connection, once there is room for it."""
        if not self.server.async_handlers:
            # Ordered dispatch: the reader runs it, so this client's next packets
            # wait, its pong among them: the heartbeat must not count that against it.
            session = self.session
            session.pause_inbound()
            try:
                await func(arg)
            finally:
                session.resume_inbound()
            return
        if self._inflight >= self._max_inflight:
            self.session.pause_inbound()
            try:
                while self._inflight >= self._max_inflight and not self.session.closed:
                    self._room = self.server.engine.new_event()
                    await self._room.wait()
            finally:
                self._room = None
                self.session.resume_inbound()
            if self.session.closed:
                return
        self._inflight += 1
        self.server.engine.run_soon(self._job, func, arg)

    async def _job(self, func: Callable[[_T], Awaitable[object]], arg: _T) -> None:
        try:
            await func(arg)
        finally:
            self._inflight -= 1
            if self._room is not None:
                self._room.set()

    async def disconnect_all(self) -> None:
        """Server-side ``disconnect(close=True)``: leave every namespace, then close."""
        for socket in list(self.sockets.values()):
            await socket.disconnect()
        self.session.close(CloseReason.FORCED_CLOSE)

    async def closed(self, reason: CloseReason) -> None:
        """The session ended: every socket leaves, connecting ones included."""
        if self._room is not None:
            self._room.set()
        why = DisconnectReason.from_close(reason)
        for socket in list(self.sockets.values()):
            await socket.closed(why)
