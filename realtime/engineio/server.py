"""The Engine.IO server as an ASGI app: request checks, handshake, sid registry, lifespan.

Each layer only looks down: this module knows nothing of Socket.IO. It turns
HTTP requests and WebSockets into sessions and calls an :class:`EngineHandler`.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVarTuple
from urllib.parse import parse_qsl

import anyio
from anyio.abc import TaskGroup
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import Message, Receive, Scope, Send

from realtime import jsoncodec
from realtime.engineio.config import EngineConfig, Transport
from realtime.engineio.connection import GRACEFUL, EngineHandler, EngineSession, RequestInfo
from realtime.engineio.cors import cors_headers, origin_allowed, preflight_headers
from realtime.engineio.observer import EngineObserver
from realtime.engineio.packets import OutPacket, PacketType
from realtime.engineio.polling import handle_get, handle_post
from realtime.engineio.responses import send_error, send_response, send_text
from realtime.engineio.session import CloseReason
from realtime.engineio.session import now as clock
from realtime.engineio.websocket import run_session, run_upgrade
from realtime.engineio.workers import Workers
from realtime.exceptions import (
    BufferFullError,
    EngineRequestError,
    NotRunningError,
    SessionClosedError,
)

if TYPE_CHECKING:
    from realtime.engineio.relay import SessionRelay

logger = logging.getLogger("realtime.engineio")

PosArgs = TypeVarTuple("PosArgs")

BAD_REQUEST = EngineRequestError.BAD_REQUEST

#: How often a session held for its upgrade looks whether a probe is over.
PROBE_LOOK = 0.02


#: The request headers the engine itself looks at.
_WANTED = frozenset((b"origin", b"host", b"content-type", b"access-control-request-headers"))


def request_headers(scope: Scope) -> dict[str, str]:
    """The few headers the engine needs, in one pass over the raw list (hot path)."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED and name not in found:
            found[name.decode("latin-1")] = value.decode("latin-1")
    return found


def parse_query(raw: bytes) -> dict[str, str]:
    """``dict(parse_qsl(raw.decode("latin-1")))``, without its cost for a plain query (hot path).

    Engine.IO's own parameters need no escaping: a query without ``%`` or ``+``
    splits exactly as ``parse_qsl`` would split it (fields without ``=`` or with
    an empty value dropped, the last of a repeated name kept); any other goes
    to ``parse_qsl`` itself.
    """
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text))
    query: dict[str, str] = {}
    for field in text.split("&"):
        name, _, value = field.partition("=")
        if value:
            query[name] = value
    return query


async def refuse_websocket(
    scope: Scope, send: Send, error: EngineRequestError | NotRunningError
) -> None:
    """Refuse a WebSocket before its handshake completes, answering as polling does.

    With the ASGI "websocket.http.response" extension (uvicorn and hypercorn
    offer it) the client gets the status and the ``{"code", "message"}`` JSON
    body; without it the server can only refuse with a bare 403.
    """
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    if isinstance(error, NotRunningError):
        status, body = 500, str(error).encode("utf-8")
        headers = [(b"content-type", b"text/plain; charset=UTF-8")]
    else:
        status = error.status
        body = json.dumps({"code": error.code, "message": error.message}).encode("utf-8")
        headers = [(b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def _new_sid() -> str:
    return secrets.token_urlsafe(15)


class EngineServer:
    """Engine.IO v4 over HTTP long-polling and WebSocket, for one ``EngineHandler``.

    Serve it as an ASGI app (it answers ``lifespan`` itself) or enter
    :meth:`lifespan` from the host application's own lifespan.
    """

    def __init__(self, handler: EngineHandler, config: EngineConfig | None = None) -> None:
        self.handler = handler
        self.config = config or EngineConfig()
        self.sessions: dict[str, EngineSession] = {}
        self._tg: TaskGroup | None = None
        self._event_type: Callable[[], anyio.Event] = anyio.Event
        self.workers = Workers(self.start_soon, self.new_event)
        #: Told about sessions, upgrades, packets, bytes and drops when set (see observer.py).
        self.observer: EngineObserver | None = None
        #: Set before the lifespan starts (the Redis adapter hands one down): requests
        #: for other nodes' sessions are then tunnelled to them (see relay.py).
        self.relay: SessionRelay | None = None

    # -- lifespan -------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Own the task group that runs polling heartbeats and handler tasks.

        On exit every session is closed with "server shutting down" and the
        handler hears about each before this returns.
        """
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self._event_type = type(anyio.Event())
            tg.start_soon(self._heartbeat)
            try:
                async with self._relaying():
                    try:
                        yield
                    finally:
                        with anyio.CancelScope(shield=True):
                            await self.shutdown()
            finally:
                self._tg = None
                self.workers.clear()
                tg.cancel_scope.cancel()

    @asynccontextmanager
    async def _relaying(self) -> AsyncIterator[None]:
        if self.relay is None:
            yield
            return
        async with self.relay.running(self._serve_relayed, self._adopt, self.config):
            yield

    async def _serve_relayed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a connection another node tunnelled here, as if it had come directly."""
        if scope["type"] == "http":
            await self._serve_http(scope, receive, send)
        else:
            await self._serve_websocket(scope, receive, send)

    async def shutdown(self) -> None:
        """Close every session and tell the handler, all within ``shutdown_timeout``.

        Disconnect handlers run concurrently; past the deadline the ones still
        running are cancelled (and a warning says how many), so a stuck handler
        cannot hold up the process's exit.
        """
        sessions = list(self.sessions.values())
        for session in sessions:
            session.close(CloseReason.SERVER_SHUTDOWN)
        with anyio.move_on_after(self.config.shutdown_timeout) as scope:
            async with anyio.create_task_group() as tg:
                for session in sessions:
                    tg.start_soon(session.finish)
        if scope.cancelled_caught:
            logger.warning(
                "shutdown: disconnect handlers still running after %ss were cancelled",
                self.config.shutdown_timeout,
            )
        # Polling sessions waiting for a last GET go too: nothing will serve it.
        self.sessions.clear()

    async def _heartbeat(self) -> None:
        """One task runs every session's heartbeat.

        It wakes ``heartbeat_tick`` times per shortest heartbeat period and pings
        or times out the sessions whose deadline has passed. That costs a scan per
        tick instead of a timer per session, so sending and receiving never pay
        for arming one.
        """
        config = self.config
        tick = min(config.ping_interval, config.ping_timeout) / config.heartbeat_ticks
        while True:
            await anyio.sleep(tick)
            self._check_deadlines(clock())

    def _check_deadlines(self, now: float) -> None:
        # A function of its own, so that no loop variable keeps the last
        # session alive while the heartbeat sleeps.
        for session in list(self.sessions.values()):
            if not session.closed and now >= session.state.deadline():
                session.on_timer()
        if self.observer is not None:
            self.observer.sample(self.sessions.values())

    def new_event(self) -> anyio.Event:
        """An ``anyio.Event`` without looking up the running backend each time."""
        return self._event_type()

    def start_soon(
        self, func: Callable[[*PosArgs], Coroutine[Any, Any, Any]], *args: *PosArgs
    ) -> None:
        """Run ``func(*args)`` in the server's task group."""
        if self._tg is None:
            raise NotRunningError("the engine is not running: serve it with lifespan enabled")
        self._tg.start_soon(func, *args)

    def send(self, sid: str, data: str | bytes) -> None:
        """Queue a message for session ``sid``.

        Raises :class:`SessionClosedError` if the session is unknown or closed,
        and :class:`BufferFullError` if its buffer overflowed (it is then closed).
        """
        session = self.sessions.get(sid)
        if session is None or session.closed:
            raise SessionClosedError(f"no open session {sid!r}")
        if not session.send(data):
            raise BufferFullError(f"session {sid!r} closed: outbound buffer full")

    def close(self, sid: str) -> None:
        """Close ``sid`` once what is queued is delivered; an unknown sid is ignored."""
        session = self.sessions.get(sid)
        if session is not None:
            session.close(CloseReason.FORCED_CLOSE)

    def run_soon(
        self, func: Callable[[*PosArgs], Coroutine[Any, Any, Any]], *args: *PosArgs
    ) -> None:
        """Run a short job ``func(*args)`` in the server's task group, on a reused task.

        Errors are logged, not raised. See :mod:`realtime.engineio.workers`.
        """
        if self._tg is None:
            raise NotRunningError("the engine is not running: serve it with lifespan enabled")
        self.workers.submit(func, *args)

    @property
    def running(self) -> bool:
        return self._tg is not None

    # -- registry (called by sessions) -----------------------------------------

    def session_closing(self, session: EngineSession) -> None:
        if session.transport == "websocket":
            return  # the WebSocket's own task finishes the session
        reason = session.state.close_reason
        if reason in GRACEFUL and not session.poll_pending:
            # Keep the sid a little so the next GET collects what is queued + CLOSE.
            self.start_soon(self._forget_later, session)
        else:
            self.forget(session)
        self.start_soon(session.finish)

    async def _forget_later(self, session: EngineSession) -> None:
        await anyio.sleep(self.config.close_timeout)
        self.forget(session)

    def forget(self, session: EngineSession) -> None:
        if self.sessions.get(session.sid) is session:
            del self.sessions[session.sid]

    async def session_finished(self, session: EngineSession, reason: CloseReason) -> None:
        if session.transport == "websocket" or reason not in GRACEFUL:
            self.forget(session)
        if self.observer is not None:
            self.observer.session_closed(session, reason.value)
        try:
            await self.handler.on_disconnect(session, reason)
        except Exception:
            logger.exception("session %s: error in disconnect handler", session.sid)

    # -- ASGI -----------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._serve_lifespan(receive, send)
            return
        if not self._matches_path(scope):
            if kind == "http":
                await send_response(send, 404, b"Not Found", [(b"content-type", b"text/plain")])
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        relay = self.relay
        query = None
        if relay is not None and b"sid=" in scope["query_string"]:
            # Parsed once here and handed down: each request of a cluster
            # node comes this way.
            query = parse_query(scope["query_string"])
            owner = self._owner_elsewhere(relay, query.get("sid"))
            if owner is not None:
                await self._forward(relay, owner, scope, receive, send)
                return
        if kind == "http":
            await self._serve_http(scope, receive, send, query)
        elif kind == "websocket":
            await self._serve_websocket(scope, receive, send, query)

    def _owner_elsewhere(self, relay: SessionRelay, sid: str | None) -> str | None:
        """The node owning ``sid``, if that is another node."""
        if sid is None or sid in self.sessions:
            return None
        return relay.owner(sid)

    async def _forward(
        self, relay: SessionRelay, owner: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if await relay.forward(owner, scope, receive, send):
            return
        # The owner is gone (or Redis is): its sessions are gone with it.
        error = EngineRequestError(EngineRequestError.UNKNOWN_SID)
        if scope["type"] == "http":
            headers = request_headers(scope)
            await send_error(send, error, cors_headers(self.config, headers.get("origin")))
        else:
            await refuse_websocket(scope, send, error)

    def _matches_path(self, scope: Scope) -> bool:
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return path == self.config.path or path + "/" == self.config.path

    async def _serve_lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        started = False
        try:
            async with self.lifespan():
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except Exception as exc:
            phase = "shutdown" if started else "startup"
            logger.exception("engine lifespan %s failed", phase)
            await send({"type": f"lifespan.{phase}.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})

    def _check(self, query: dict[str, str], transport_hint: str | None) -> None:
        """Spec, "Query parameters", checked in the reference server's order."""
        transport = query.get("transport")
        if transport not in self.config.transports or transport != (transport_hint or transport):
            raise EngineRequestError(EngineRequestError.UNKNOWN_TRANSPORT)
        if query.get("EIO") != "4":
            raise EngineRequestError(EngineRequestError.UNSUPPORTED_PROTOCOL_VERSION)

    async def _serve_http(
        self, scope: Scope, receive: Receive, send: Send, query: dict[str, str] | None = None
    ) -> None:
        """``query``: the parsed query string, when the caller has it already."""
        headers = request_headers(scope)
        origin = headers.get("origin")
        if not origin_allowed(self.config, origin, headers.get("host")):
            logger.info("refused a request from origin %s", origin)
            await send_error(send, EngineRequestError(EngineRequestError.FORBIDDEN, status=403), [])
            return
        method: str = scope["method"]
        if method == "OPTIONS":
            extra = preflight_headers(
                self.config, origin, headers.get("access-control-request-headers")
            )
            await send_response(send, 204, b"", extra)
            return
        cors = cors_headers(self.config, origin)
        if query is None:
            query = parse_query(scope["query_string"])
        try:
            self._check(query, None)
            if query["transport"] != "polling":
                raise EngineRequestError(BAD_REQUEST)
            sid = query.get("sid")
            if sid is None:
                if method != "GET":
                    raise EngineRequestError(EngineRequestError.BAD_HANDSHAKE_METHOD)
                await self._handshake_polling(scope, query, send, cors)
                return
            session = self.sessions.get(sid)
            if session is not None and clock() >= session.state.deadline():
                # The timer may not have run yet: a poll that comes after the
                # pong deadline must not revive a session that has timed out.
                session.on_timer()
                session = self.sessions.get(sid)
            if session is None:
                raise EngineRequestError(EngineRequestError.UNKNOWN_SID)
            if session.transport != "polling" or (session.closed and session.poll_pending):
                raise EngineRequestError(BAD_REQUEST)
        except EngineRequestError as exc:
            await send_error(send, exc, cors)
            return
        if method == "GET":
            await handle_get(session, receive, send, cors, scope.get("realtime.relayed_poll"))
        elif method == "POST":
            if session.closed:
                await send_error(send, EngineRequestError(BAD_REQUEST), cors)
                return
            await handle_post(
                session, self.handler, receive, send, cors, headers.get("content-type")
            )
        else:
            await send_error(send, EngineRequestError(BAD_REQUEST), cors)

    async def _authorize(self, scope: Scope) -> None:
        if not self.running:
            raise NotRunningError("the engine is not running: serve it with lifespan enabled")
        if self.config.allow_request is not None:
            await self.config.allow_request(HTTPConnection(scope))

    def _new_session(
        self, scope: Scope, transport: Transport, query: dict[str, str]
    ) -> EngineSession:
        new_sid = self.relay.new_sid if self.relay is not None else _new_sid
        sid = new_sid()
        while sid in self.sessions:  # pragma: no cover - 96 or 120 random bits
            sid = new_sid()
        conn = HTTPConnection(scope)
        request = RequestInfo(
            headers=conn.headers,
            query=query,
            client=(conn.client.host, conn.client.port) if conn.client else None,
            url=str(conn.url),
            secure=conn.url.scheme in ("https", "wss"),
            time=time.time(),
        )
        session = EngineSession(self, sid, transport, request, self.config)
        self.sessions[sid] = session
        if self.observer is not None:
            self.observer.handshake(transport)
        return session

    def _open_packet(self, session: EngineSession) -> OutPacket:
        payload = jsoncodec.dumps_ascii(self.config.handshake(session.sid, session.transport))
        return OutPacket.of(PacketType.OPEN, payload)

    async def _handshake_polling(
        self, scope: Scope, query: dict[str, str], send: Send, cors: list[tuple[bytes, bytes]]
    ) -> None:
        try:
            await self._authorize(scope)
        except NotRunningError as exc:
            logger.error("%s", exc)
            await send_text(send, str(exc), cors, status=500)
            return
        session = self._new_session(scope, "polling", query)
        if self.relay is not None and "websocket" in self.config.transports:
            self._hold_for_upgrade(session)
        opening = self._open_packet(session).polling
        await send_text(send, opening, cors)
        if self.observer is not None:
            self.observer.bytes_out("polling", len(opening))
        await self._connected(session)

    def _hold_for_upgrade(self, session: EngineSession) -> None:
        """Keep the client's first messages back while its upgrade may go elsewhere.

        Behind a balancer the WebSocket upgrade often reaches another node than
        the handshake did. While the layer above has seen no message of the
        session, the session can move to that node whole, instead of being
        relayed for its life; so its first messages wait, up to
        ``relay_upgrade_wait``, for the upgrade to say where the session lives.
        """
        wait = self.config.relay_upgrade_wait
        if wait > 0:
            session.held = []
            self.start_soon(self._release_after, session, wait)

    async def _release_after(self, session: EngineSession, wait: float) -> None:
        await anyio.sleep(wait)
        # A probe under way decides soon (within upgrade_timeout): wait for it.
        for _ in range(int(self.config.upgrade_timeout / PROBE_LOOK) + 1):
            if not session.probing or session.held is None:
                break
            await anyio.sleep(PROBE_LOOK)
        await session.release_held(self.handler)

    def export_session(self, session: EngineSession, held: list[str | bytes]) -> dict[str, Any]:
        """What another node needs to carry on ``session``: its sid, request and messages."""
        request = session.request
        return {
            "sid": session.sid,
            "held": held,
            "headers": request.headers.raw,
            "query": request.query,
            "client": request.client,
            "url": request.url,
            "secure": request.secure,
            "time": request.time,
        }

    async def _adopt(
        self, moved: dict[str, Any], receive: Receive, send: Send, earlier: list[Message]
    ) -> None:
        """Carry on a session another node made, over the WebSocket that reached us.

        The upgrade is done (the other node ran the probe); ``earlier`` are the
        frames the client sent after it, which that node did not take.
        """
        client = moved.get("client")
        request = RequestInfo(
            headers=Headers(raw=[(bytes(k), bytes(v)) for k, v in moved["headers"]]),
            query=dict(moved["query"]),
            client=(client[0], int(client[1])) if client else None,
            url=str(moved["url"]),
            secure=bool(moved["secure"]),
            time=float(moved["time"]),
        )
        session = EngineSession(self, str(moved["sid"]), "websocket", request, self.config)
        self.sessions[session.sid] = session
        if self.observer is not None:
            self.observer.handshake("websocket")
        await self._connected(session)
        for data in moved["held"]:
            if session.closed:
                break
            await self.handler.on_message(session, data)
        pending = deque(earlier)

        async def replaying() -> Message:
            return pending.popleft() if pending else await receive()

        await run_session(self, session, self.handler, replaying, send)

    async def _connected(self, session: EngineSession) -> None:
        try:
            await self.handler.on_connect(session)
        except Exception:
            logger.exception("session %s: error in connect handler", session.sid)
            session.abort(CloseReason.TRANSPORT_ERROR)

    async def _serve_websocket(
        self, scope: Scope, receive: Receive, send: Send, query: dict[str, str] | None = None
    ) -> None:
        """``query``: the parsed query string, when the caller has it already."""
        if (await receive())["type"] != "websocket.connect":
            return
        headers = request_headers(scope)
        origin = headers.get("origin")
        if query is None:
            query = parse_query(scope["query_string"])
        try:
            if not origin_allowed(self.config, origin, headers.get("host")):
                raise EngineRequestError(EngineRequestError.FORBIDDEN, status=403)
            self._check(query, "websocket")
            sid = query.get("sid")
            if sid is None:
                await self._authorize(scope)
        except (EngineRequestError, NotRunningError) as exc:
            logger.info("refused a WebSocket: %s (origin %s)", exc, origin)
            await refuse_websocket(scope, send, exc)
            return
        if sid is not None:
            session = self.sessions.get(sid)
            if session is None:
                error = EngineRequestError(EngineRequestError.UNKNOWN_SID)
                await refuse_websocket(scope, send, error)
                return
            if session.transport != "polling" or session.closed or session.probing:
                # Spec: at most one WebSocket per session. Like the reference
                # server, complete the handshake and close at once.
                await send({"type": "websocket.accept"})
                await send({"type": "websocket.close", "code": 1008})
                return
            hand_over = scope.get("realtime.hand_over")
            await run_upgrade(self, session, self.handler, receive, send, hand_over)
            return
        await send({"type": "websocket.accept"})
        session = self._new_session(scope, "websocket", query)
        session.send_packets((self._open_packet(session),))
        await self._connected(session)
        await run_session(self, session, self.handler, receive, send)
