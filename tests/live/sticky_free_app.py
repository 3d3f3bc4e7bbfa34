"""The server of the sticky-free tests: one module that ``uvicorn --workers N`` imports.

    REDIS_URL=redis://127.0.0.1:6379 REDIS_KEY=test-abc \\
        uvicorn tests.live.sticky_free_app:app --workers 4 --port 8000

With ``REDIS_URL`` set every worker joins one Redis cluster under the channel prefix
``REDIS_KEY`` (each test run uses its own, so runs on the shared Redis stay apart);
without it each process is on its own (in-memory adapter). The handlers answer with the
identity of the process that ran them, so a client can tell which worker owns its
session, and every HTTP response and WebSocket accept carries ``x-worker: <pid>`` so a
client can tell which worker took each request (the owner or one that forwarded it).

Events on ``/``: ``hello`` ({pid, node}) on connect; ``msg`` (seq) acks
``{"seq": seq, "pid": pid, "prev": prev}``, ``prev`` being the seq this server received
just before from that socket (so the receive order shows); ``broadcast`` (payload) sends
``bcast`` with the payload to every client of the cluster, then acks ``true``.
``GET /pid`` answers ``{"pid", "node"}`` and ``GET /health`` also whether the Redis link
is subscribed (always true without Redis).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from realtime import Server, Socket

REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_KEY = os.environ.get("REDIS_KEY", "socket.io")
NODE = os.environ.get("NODE_NAME", "")
PID = os.getpid()
#: ``REALTIME_LOG=DEBUG`` shows, among others, why a relayed connection ended.
LOG_LEVEL = os.environ.get("REALTIME_LOG", "")
if LOG_LEVEL:
    logging.basicConfig(format=f"%(asctime)s {PID} %(name)s %(message)s")
    logging.getLogger("realtime").setLevel(LOG_LEVEL.upper())


def build() -> tuple[Server, Any]:
    """The server and its ASGI app, on Redis when ``REDIS_URL`` is set."""
    factory: Any = None
    if REDIS_URL:
        from realtime.adapters.redis import RedisAdapter

        factory = RedisAdapter.factory(url=REDIS_URL, key=REDIS_KEY)
        sio = Server(adapter=factory)
    else:
        sio = Server()
    identity = {"pid": PID, "node": NODE}

    @sio.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        await socket.emit("hello", identity)

    @sio.on("msg")
    async def msg(socket: Socket, seq: Any) -> dict[str, Any]:
        # ``prev``: the seq this socket sent just before, as this server received them.
        prev = socket.data.get("last")
        socket.data["last"] = seq
        return {"seq": seq, "pid": PID, "prev": prev}

    @sio.on("broadcast")
    async def broadcast(socket: Socket, payload: Any) -> bool:
        await sio.emit("bcast", payload)
        return True

    async def pid(request: Request) -> JSONResponse:
        return JSONResponse(identity)

    async def health(request: Request) -> JSONResponse:
        subscribed = factory.health.subscribed if factory is not None else True
        return JSONResponse({**identity, "subscribed": subscribed})

    routes = [Route("/pid", pid), Route("/health", health)]
    return sio, sio.asgi_app(Starlette(routes=routes))


class WorkerHeader:
    """Adds ``x-worker: <pid>`` to every HTTP response and WebSocket accept."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (b"x-worker", str(PID).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def tagged(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, tagged)


sio, inner = build()
app = WorkerHeader(inner)
