"""HTTP long-polling: the GET that waits for packets and the POST that delivers them.

Spec, "HTTP long-polling": at most one GET and one POST per session at a time;
a second one is answered 400 and the session is closed.
"""

from __future__ import annotations

import logging

import anyio
from starlette.types import Receive, Send

from realtime.engineio.connection import GRACEFUL, EngineHandler, EngineSession, RelayedPoll
from realtime.engineio.packets import CLOSE, NOOP, PacketType, decode_payload, encode_payload
from realtime.engineio.responses import Headers, send_error, send_text
from realtime.engineio.session import CloseReason
from realtime.engineio.session import now as clock
from realtime.exceptions import EngineRequestError, PacketDecodeError, PayloadTooLarge

logger = logging.getLogger("realtime.engineio")

#: Set in the ``http.disconnect`` of a relayed GET whose relaying node died.
LOST_WITH_NODE = "realtime.lost_with_node"

#: Longest a GET arriving during an upgrade is held before NOOP releases it.
UPGRADE_HOLD = 0.1


async def handle_get(
    session: EngineSession,
    receive: Receive,
    send: Send,
    headers: Headers,
    relayed: RelayedPoll | None = None,
) -> None:
    """Answer a long-poll; ``relayed`` is given for a GET another node relayed here."""
    if session.poll_pending and not await _pending_poll_lost(session):
        # A second concurrent GET: the first one gets CLOSE, this one 400.
        session.abort(CloseReason.TRANSPORT_ERROR)
        await send_error(send, EngineRequestError(EngineRequestError.BAD_REQUEST), headers)
        return
    if session.poll_unconfirmed is not None and not await _last_answer_delivered(session):
        await send_error(send, EngineRequestError(EngineRequestError.BAD_REQUEST), headers)
        return
    session.poll_pending = True
    session.poll_relayed = relayed
    try:
        body = await _wait_for_packets(session, receive)
    finally:
        session.poll_pending = False
        session.poll_relayed = None
    if isinstance(body, tuple):
        payload, size = body
        try:
            await send_text(send, payload, headers)
            if session.observer is not None:
                session.observer.bytes_out("polling", len(payload))
            # Written to the relaying node: the next GET first makes sure it
            # passed the answer on (see _last_answer_delivered).
            session.poll_unconfirmed = relayed
        finally:
            # The packets count against max_buffer_bytes until written.
            session.state.written(size)
    elif body is not None:
        await send_error(send, body, headers)


async def _last_answer_delivered(session: EngineSession) -> bool:
    """Whether the last relayed answer reached the client (``True`` if none was relayed).

    A balancer retries a GET whose upstream died before answering. If that
    upstream was a node relaying the GET, the owner may already have written
    packets into it: serving the retry as if nothing happened would lose them
    silently. So when the relaying node died before passing the answer on,
    the session ends ("transport error") and the client reconnects, knowing.
    """
    relayed = session.poll_unconfirmed
    if relayed is None:
        return True
    session.poll_unconfirmed = None
    if await relayed.delivered():
        return True
    logger.info("session %s: a relayed answer died with its node, closing", session.sid)
    session.abort(CloseReason.TRANSPORT_ERROR)
    return False


async def _pending_poll_lost(session: EngineSession) -> bool:
    """Whether the pending GET came through a node that has since died.

    A balancer retries a GET whose upstream died before answering, on another
    node; the owner then sees a second GET while the first still looks pending.
    If the first one's node is gone, that GET is released (nothing was taken
    for it) and the new one is served: the client never saw anything amiss.
    """
    relayed = session.poll_relayed
    if relayed is None or not await relayed.lost():
        return False
    for _ in range(100):  # the released GET returns at its next step
        if not session.poll_pending:
            return True
        await anyio.sleep(0.01)
    return not session.poll_pending


async def _wait_for_packets(
    session: EngineSession, receive: Receive
) -> tuple[str, int] | EngineRequestError | None:
    """Block until there is something to answer; ``None`` if the client went away.

    The wait is the request's own ``receive()``, which only returns when the
    client disconnects; :meth:`EngineSession.wake` cancels it when there is
    something to answer. So a waiting GET costs no extra task.

    A GET that finds nothing queued first lets the tasks already scheduled run
    once: a client polls again as it sends its next message, so the reply to
    that message is often being made right then, and is carried without the
    wait and its wake-up (a cancelled scope, the costliest step of a poll;
    about a sixth of a polled echo's instructions). The answer is the one a
    GET woken by that reply would have carried.
    """
    hold_until: float | None = None
    yielded = False
    while True:
        state = session.state
        if state.close_reason is not None:
            return _closing_payload(session)
        if session.release_poll:
            # Spec, "Upgrade": a NOOP releases the GET pending at the probe.
            session.release_poll = False
            return NOOP.polling, 0
        if state.transport != "polling":
            # Arrived while the upgrade was under way: the session now
            # lives on the WebSocket and the old transport is refused.
            return EngineRequestError(EngineRequestError.BAD_REQUEST)
        if state.upgrading:
            # A GET that arrives mid-upgrade (clients pause polling, so this is
            # rare) is held briefly, as the reference server's fast-upgrade
            # check does, then released with NOOP; if the upgrade completes
            # first it is refused like any later GET. The hold is measured
            # once: packets queued meanwhile wake this loop but don't extend it.
            if hold_until is None:
                hold_until = clock() + UPGRADE_HOLD
            elif clock() >= hold_until:
                return NOOP.polling, 0
            with anyio.move_on_after(hold_until - clock()):
                if await _until_woken(session, receive):
                    return None
            continue
        if state.outbox:
            packets = state.take()
            return encode_payload(packets), sum(p.size for p in packets)
        if not yielded:
            yielded = True
            await anyio.lowlevel.checkpoint()
            continue
        if await _until_woken(session, receive):
            return None


async def _until_woken(session: EngineSession, receive: Receive) -> bool:
    """Wait for a wake-up; ``True`` if the client disconnected instead.

    Packets are only taken once a reply can be written, so a GET the client
    gave up on loses nothing; like the reference server, an abandoned poll
    ends the session.
    """
    with anyio.CancelScope() as scope:
        session.poll_scope = scope
        try:
            while (message := await receive())["type"] != "http.disconnect":
                pass
        finally:
            session.poll_scope = None
        if not message.get(LOST_WITH_NODE):
            session.abort(CloseReason.TRANSPORT_CLOSE)
        # else: the GET died with the node that relayed it; the client may
        # retry it elsewhere, and the heartbeat ends the session if it does not.
        return True
    return False


def _closing_payload(session: EngineSession) -> tuple[str, int]:
    reason = session.state.close_reason
    packets = session.state.take() if reason in GRACEFUL else []
    size = sum(p.size for p in packets)
    # A client that sent CLOSE gets its pending GET back with a NOOP (as the
    # reference server does); any other close tells the client with CLOSE.
    packets.append(NOOP if reason is CloseReason.TRANSPORT_CLOSE else CLOSE)
    session.forget()
    return encode_payload(packets), size


async def handle_post(
    session: EngineSession,
    handler: EngineHandler,
    receive: Receive,
    send: Send,
    headers: Headers,
    content_type: str | None,
) -> None:
    if session.post_active:
        session.abort(CloseReason.TRANSPORT_ERROR)
        await send_error(send, EngineRequestError(EngineRequestError.BAD_REQUEST), headers)
        return
    session.post_active = True
    try:
        await _dispatch_post(session, handler, receive, send, headers, content_type)
    finally:
        session.post_active = False


async def _dispatch_post(
    session: EngineSession,
    handler: EngineHandler,
    receive: Receive,
    send: Send,
    headers: Headers,
    content_type: str | None,
) -> None:
    try:
        if content_type is not None and content_type.startswith("application/octet-stream"):
            # v4 clients always send text payloads (binary as base64).
            raise PacketDecodeError("binary POST bodies are not used in Engine.IO v4")
        body = await read_body(receive, session.config.max_payload)
        if session.observer is not None:
            session.observer.bytes_in("polling", len(body))
        packets = decode_payload(body)
    except _BodyAborted:
        # The client went away mid-body: nothing to answer, the session is broken.
        logger.info("session %s: POST aborted mid-body, closing", session.sid)
        session.abort(CloseReason.TRANSPORT_ERROR)
        return
    except PayloadTooLarge:
        logger.info("session %s: POST body over max_payload, closing", session.sid)
        session.abort(CloseReason.TRANSPORT_ERROR)
        await send_error(send, EngineRequestError(3, "Payload too large", status=413), headers)
        return
    except PacketDecodeError as exc:
        logger.info("session %s: bad POST payload (%s), closing", session.sid, exc)
        session.abort(CloseReason.PARSE_ERROR)
        await send_error(send, EngineRequestError(EngineRequestError.BAD_REQUEST), headers)
        return

    # Answering after dispatch keeps the client from sending its next POST
    # while this one's packets are still being handled.
    step = session.config.packets_per_checkpoint
    observer = session.observer
    for index, packet in enumerate(packets):
        if session.closed:
            break
        if index and index % step == 0:
            await anyio.lowlevel.checkpoint()
        ptype = packet.type
        if ptype is PacketType.MESSAGE:
            if observer is not None:
                observer.message_in(packet.data)
            if session.held is None:
                await handler.on_message(session, packet.data)
            else:
                session.hold(handler, packet.data)
        elif ptype is PacketType.PONG:
            session.state.on_pong(clock())
        elif ptype is PacketType.CLOSE:
            session.abort(CloseReason.TRANSPORT_CLOSE)
        elif ptype is PacketType.PING:
            # As over WebSocket (and the reference server): "invalid heartbeat
            # direction" ends the session with "transport error".
            logger.info("session %s: client sent PING, closing", session.sid)
            session.abort(CloseReason.TRANSPORT_ERROR)
            await send_error(send, EngineRequestError(EngineRequestError.BAD_REQUEST), headers)
            return
        elif ptype in (PacketType.OPEN, PacketType.UPGRADE):
            # Not something a client sends over polling in v4.
            logger.info("session %s: unexpected %s packet over polling", session.sid, ptype.name)
            session.abort(CloseReason.PARSE_ERROR)
            await send_error(send, EngineRequestError(EngineRequestError.BAD_REQUEST), headers)
            return
    # Done with this POST before answering it: the client may send its next one
    # as soon as it has the answer, which can be before this task runs again
    # (a server may switch tasks inside the write, as hypercorn on trio does).
    session.post_active = False
    await send_text(send, "ok", headers)


class _BodyAborted(Exception):
    """The client disconnected before the whole body arrived."""


async def read_body(receive: Receive, limit: int) -> bytes:
    """Read a request body, refusing it as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _BodyAborted("client disconnected during the body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body over {limit} bytes")
        if not message.get("more_body", False):
            if not chunks and type(chunk) is bytes:
                return chunk  # the whole body in one message: nothing to join
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)
