"""The ASGI app: Socket.IO at its path, the client bundle, another app everywhere else."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from starlette.datastructures import Headers
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from realtime.socketio.server import Server

logger = logging.getLogger("realtime.socketio")

STATIC = Path(__file__).resolve().parent.parent / "static"
CLIENT_FILES = {"client.js": "text/javascript", "client.js.map": "application/json"}
# The bundle's URL does not carry its version, so caches must revalidate (the ETag
# makes that a 304) instead of keeping a stale client after an upgrade.
CACHE_CONTROL = "public, max-age=0, must-revalidate"


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point.

    uvicorn's ``--root-path`` and starlette's ``Mount`` both put ``root_path`` in
    front of ``path``; servers that leave it out are served as they are.
    """
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


class SocketIOApp:
    """Routes ``<path>`` to the engine and the rest to ``other_app`` (404 without one).

    Paths are taken below ``root_path``, so the app works mounted under a prefix.
    """

    def __init__(self, server: Server, other_app: ASGIApp | None = None) -> None:
        self.server = server
        self.other_app = other_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path = route_path(scope)
        base = self.server.engine.config.path  # ends with "/"
        if scope["type"] == "http" and path.startswith(base):
            name = path[len(base) :]
            if name in CLIENT_FILES:
                await self._client_file(name, scope, receive, send)
                return
        if path == base or path + "/" == base:
            await self.server.engine(scope, receive, send)
        elif self.other_app is not None:
            await self.other_app(scope, receive, send)
        elif scope["type"] == "http":
            await PlainTextResponse("Not Found", status_code=404)(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1000})

    async def _client_file(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        file = STATIC / name
        response: Response
        try:
            stat = file.stat()
        except OSError:
            response = PlainTextResponse("Not Found", status_code=404)
        else:
            headers = {
                "cache-control": CACHE_CONTROL,
                "etag": f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"',
            }
            if headers["etag"] in Headers(scope=scope).get("if-none-match", ""):
                response = Response(status_code=304, headers=headers)
            else:
                response = FileResponse(
                    file, media_type=CLIENT_FILES[name], headers=headers, stat_result=stat
                )
        await response(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the server for the app's lifetime, with ``other_app``'s lifespan inside it."""
        startup = await receive()
        assert startup["type"] == "lifespan.startup"
        reply: Message | None = {"type": "lifespan.shutdown.complete"}
        try:
            async with self.server.lifespan():
                if self.other_app is None:
                    await send({"type": "lifespan.startup.complete"})
                    await receive()
                else:
                    reply = await self._forward_lifespan(
                        self.other_app, scope, startup, receive, send
                    )
        except Exception as exc:
            logger.exception("lifespan failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        # Only now, with realtime's own shutdown done: past this reply the
        # server may end the event loop, cancelling whatever still runs.
        if reply is not None:
            await send(reply)

    async def _forward_lifespan(
        self, app: ASGIApp, scope: Scope, startup: Message, receive: Receive, send: Send
    ) -> Message | None:
        """Drive ``app``'s lifespan as the server would, relaying its startup answer.

        Returns its shutdown answer for the caller to send once realtime has
        shut down too (``None`` if startup failed: that answer was the last).
        """
        to_app, app_inbox = anyio.create_memory_object_stream[Message](1)
        app_outbox, from_app = anyio.create_memory_object_stream[Message](1)

        async def run_app() -> None:
            async with app_outbox:
                try:
                    await app(scope, app_inbox.receive, app_outbox.send)
                except Exception:
                    # An app without lifespan support raises on the scope; it has nothing to run.
                    logger.debug("other app's lifespan raised", exc_info=True)

        async with anyio.create_task_group() as tg, to_app, from_app:
            tg.start_soon(run_app)
            await to_app.send(startup)
            reply = await self._next(from_app, "lifespan.startup.complete")
            await send(reply)
            if reply["type"] == "lifespan.startup.failed":
                tg.cancel_scope.cancel()
                return None
            shutdown = await receive()
            await to_app.send(shutdown)
            reply = await self._next(from_app, "lifespan.shutdown.complete")
        return reply

    @staticmethod
    async def _next(stream: anyio.abc.ObjectReceiveStream[Message], default: str) -> Message:
        try:
            return await stream.receive()
        except anyio.EndOfStream:
            return {"type": default}
