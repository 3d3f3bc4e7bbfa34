"""WebSocket transport: a direct WebSocket session, and the probe-then-upgrade from polling.

Spec, "WebSocket" and "Upgrade": one packet per frame; binary frames carry a
message's raw bytes. An upgrade is ``2probe`` -> ``3probe`` -> ``5`` on the new
socket, and no packet may be lost, duplicated or reordered across it: packets
queued while the upgrade is under way wait in the session's outbox and leave on
the WebSocket, in order, once ``5`` arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from starlette.types import Message, Receive, Send

from realtime.engineio.connection import EngineHandler, EngineSession, send_within
from realtime.engineio.packets import PONG_PROBE, PacketType, decode_frame
from realtime.engineio.session import CloseReason
from realtime.engineio.session import now as clock
from realtime.exceptions import PacketDecodeError

if TYPE_CHECKING:
    from realtime.engineio.server import EngineServer

logger = logging.getLogger("realtime.engineio")

CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_RESTART = 1012


#: Modules whose WebSocket ``send`` waits only on asyncio futures (the
#: protocol's ``writable`` event) and keeps no per-task state, so a send one
#: task began may be finished by another (see ``EngineSession._write_through``).
RESUMABLE_SENDS = frozenset(
    {
        "uvicorn.protocols.websockets.websockets_sansio_impl",
        "uvicorn.protocols.websockets.wsproto_impl",
    }
)


def resumable(send: Send) -> bool:
    """Whether ``send`` is one of :data:`RESUMABLE_SENDS`' (a subclass's own is not)."""
    owner = getattr(send, "__self__", None)
    if owner is None or getattr(send, "__name__", None) != "send":
        return False
    method = getattr(type(owner), "send", None)
    return getattr(method, "__module__", None) in RESUMABLE_SENDS


def frame_of(message: Message) -> str | bytes | None:
    text: str | None = message.get("text")
    if text is not None:
        return text
    data: bytes | None = message.get("bytes")
    return data


def too_large(frame: str | bytes, limit: int) -> bool:
    size = len(frame)
    if size > limit:
        return True
    if isinstance(frame, str) and size * 4 > limit:
        # A character may take up to 4 bytes: count exactly only when it matters.
        return len(frame.encode("utf-8")) > limit
    return False


async def run_session(
    server: EngineServer,
    session: EngineSession,
    handler: EngineHandler,
    receive: Receive,
    send: Send,
) -> None:
    """Carry an open session over this WebSocket until either side closes it.

    The writer runs in the server's task group rather than in a task group of
    this connection's own (cheaper to connect); this call, which owns ``send``,
    still returns only after the writer is done with it. However this call
    ends, cancellation included, the session ends with it, exactly once.
    """
    session.ws_send = send
    session.write_through = resumable(send)
    reading = anyio.CancelScope()
    done = server.new_event()
    try:
        server.start_soon(_write, session, send, reading, done)
        with reading:
            await _read(session, handler, receive)
        await done.wait()
    finally:
        with anyio.CancelScope(shield=True):
            if not done.is_set():
                # Cancelled from outside (the ASGI server gave up on the
                # connection): the writer must not outlive its ``send``.
                session.abort(CloseReason.TRANSPORT_CLOSE)
                reading.cancel()
                await done.wait()
            await session.finish()


async def _read(session: EngineSession, handler: EngineHandler, receive: Receive) -> None:
    limit = session.config.max_payload
    step = session.config.packets_per_checkpoint
    observer = session.observer
    count = 0
    while not session.closed:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            # 1012 (service restart) is what the ASGI server sends its
            # WebSockets when it shuts down, before the lifespan ends.
            code = message.get("code")
            reason = (
                CloseReason.SERVER_SHUTDOWN
                if code == CLOSE_RESTART
                else CloseReason.TRANSPORT_CLOSE
            )
            session.abort(reason)
            return
        frame = frame_of(message)
        if frame is None:
            continue
        if observer is not None:
            observer.bytes_in("websocket", len(frame))
        if too_large(frame, limit):
            logger.info("session %s: WebSocket message over max_payload, closing", session.sid)
            session.close_code = CLOSE_TOO_BIG
            session.abort(CloseReason.TRANSPORT_ERROR)
            return
        try:
            packet = decode_frame(frame)
        except PacketDecodeError as exc:
            logger.info("session %s: bad packet (%s), closing", session.sid, exc)
            session.abort(CloseReason.PARSE_ERROR)
            return
        ptype = packet.type
        if ptype is PacketType.MESSAGE:
            if observer is not None:
                observer.message_in(packet.data)
            # May wait while the layer above is full (inbound backpressure):
            # this WebSocket is then not read, and TCP pushes back on the client.
            if session.held is None:
                await handler.on_message(session, packet.data)
            else:
                session.hold(handler, packet.data)
        elif ptype is PacketType.PONG:
            session.state.on_pong(clock())
        elif ptype is PacketType.CLOSE:
            session.abort(CloseReason.TRANSPORT_CLOSE)
        elif ptype is PacketType.OPEN:
            logger.info("session %s: client sent OPEN, closing", session.sid)
            session.abort(CloseReason.PARSE_ERROR)
        elif ptype is PacketType.PING:
            # Engine.IO v4 heartbeats go server -> client only; the reference
            # server closes on "invalid heartbeat direction" with this reason.
            logger.info("session %s: client sent PING, closing", session.sid)
            session.abort(CloseReason.TRANSPORT_ERROR)
        # UPGRADE and NOOP carry nothing for an open session.
        count += 1
        if count % step == 0:
            # A client sending faster than we handle never starves the others:
            # ASGI servers hand over buffered frames without yielding.
            await anyio.lowlevel.checkpoint()


async def _write(
    session: EngineSession, send: Send, reading: anyio.CancelScope, done: anyio.Event
) -> None:
    """Send what others queue, then close.

    Writes made by a sending task itself (:meth:`EngineSession.send_now`) and
    this loop never overlap. Once the session closes gracefully, what is left
    gets ``close_timeout`` to go out: a client that stopped reading cannot
    keep the connection, or this task, forever.
    """
    state = session.state
    try:
        # The common case: a wake-up, a write. The first write (the OPEN packet)
        # is stepped like a handler's reply (see write_outbox); from a second
        # one on, the writes are awaited inside one cancel scope for the rest
        # of the session, which an abrupt close cancels while a write waits.
        # A cancel scope costs as much as a dozen stepped writes, and a session
        # whose handlers write their own replies never needs it.
        wrote = False
        while state.close_reason is None:
            if session.has_output and not session.writing:
                if wrote:
                    break
                await session.write_outbox()
                wrote = True
            else:
                await session.new_wakeup().wait()
        if state.close_reason is None:
            with anyio.CancelScope() as scope:
                while state.close_reason is None:
                    if session.has_output and not session.writing:
                        await session.write_outbox(scope)
                    else:
                        await session.new_wakeup().wait()
        # Closing: what is left gets close_timeout to go out (no timeout scope
        # when nothing is left, the usual case).
        if session.has_output or session.writing:
            with anyio.move_on_after(session.config.close_timeout):
                while session.has_output or session.writing:
                    if session.writing:
                        await session.new_wakeup().wait()
                    else:
                        await session.write_outbox()
        session.stop_writing()
        close = {"type": "websocket.close", "code": session.close_code}
        await send_within(send, close, session.config.close_timeout)
    except Exception as exc:  # the peer is gone; uvicorn raises its own error types
        logger.debug("session %s: write failed: %r", session.sid, exc)
        session.abort(CloseReason.TRANSPORT_ERROR)
    finally:
        reading.cancel()
        done.set()


#: Sends a moving session's state to the node its WebSocket reached.
HandOver = Callable[[dict[str, Any]], Awaitable[None]]


async def _moved(server: EngineServer, session: EngineSession, hand_over: HandOver) -> bool:
    """Move the session to the node holding its WebSocket, if nothing ties it here."""
    held = session.take_held()
    if held is None:
        return False
    await hand_over(server.export_session(session, held))
    # Its life goes on over there: here it ends without the layer above having
    # seen a message of it (it only knew that a session opened).
    session.abort(CloseReason.TRANSPORT_CLOSE)
    logger.debug("session %s moved to the node holding its WebSocket", session.sid)
    return True


async def run_upgrade(
    server: EngineServer,
    session: EngineSession,
    handler: EngineHandler,
    receive: Receive,
    send: Send,
    hand_over: HandOver | None = None,
) -> None:
    """Probe a polling session's new WebSocket, then move the session onto it.

    ``hand_over`` is given when the WebSocket was relayed from another node:
    a session the layer above has not seen a message of yet then moves to
    that node, where its WebSocket is, instead of being relayed for its life.
    """
    session.probing = True
    if server.observer is not None:
        server.observer.upgrade_started()
    try:
        await _upgrade(server, session, handler, receive, send, hand_over)
    finally:
        session.probing = False
        if session.state.upgrading:
            # Cancelled between 2probe and 5 (the ASGI server dropped this
            # task): the session stays on polling, and what the upgrade held
            # back goes out there instead of waiting for a WebSocket forever.
            session.state.upgrading = False
            session.release_poll = False
            session.wake()


async def _upgrade(
    server: EngineServer,
    session: EngineSession,
    handler: EngineHandler,
    receive: Receive,
    send: Send,
    hand_over: HandOver | None,
) -> None:
    await send({"type": "websocket.accept"})
    upgraded = False
    message: Message = {"type": "websocket.timeout"}
    with anyio.move_on_after(session.config.upgrade_timeout):
        message = await receive()
        if message["type"] == "websocket.receive" and frame_of(message) == "2probe":
            if not session.closed:
                # From here on, packets wait for the WebSocket and a GET is held.
                session.state.upgrading = True
                session.release_poll = session.poll_pending
                session.wake()
            await send({"type": "websocket.send", "text": PONG_PROBE.ws})
            message = await receive()
            upgraded = message["type"] == "websocket.receive" and frame_of(message) == "5"
    if not upgraded or session.closed:
        if not session.closed:
            # Stay on polling; packets held back for the upgrade go out there.
            session.state.upgrading = False
            session.release_poll = False
            session.wake()
        logger.debug("session %s: upgrade abandoned", session.sid)
        if server.observer is not None:
            server.observer.upgrade_finished(session, False)
        if message["type"] != "websocket.disconnect":
            await send({"type": "websocket.close", "code": CLOSE_NORMAL})
        return
    if hand_over is not None and await _moved(server, session, hand_over):
        return
    # Whatever was held for a move goes to the layer above before any frame.
    await session.release_held(handler)
    state = session.state
    state.upgrading = False
    state.transport = "websocket"
    if server.observer is not None:
        server.observer.upgrade_finished(session, True)
    session.release_poll = False
    session.wake()  # a GET held during the upgrade is refused, like any later one
    await run_session(server, session, handler, receive, send)
