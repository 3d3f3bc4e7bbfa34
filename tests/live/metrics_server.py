"""A server with metrics on and handlers that make every kind of traffic.

``app`` (module level, default registry) is what ``uvicorn --workers 2`` runs
in the multiprocess test; :func:`make_app` gives each in-process test its own
registry.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp

from realtime import Server, Socket
from realtime.engineio import EngineConfig
from realtime.exceptions import AckTimeoutError
from realtime.metrics import metrics_app

#: Small enough that one "big" event overflows it.
MAX_BUFFER = 64 * 1024
BIG = 100_000
BLOCK = 1.0


def make_app(registry: CollectorRegistry | None) -> tuple[Server, ASGIApp]:
    sio = Server(engine_config=EngineConfig(path="/socket.io/", max_buffer_bytes=MAX_BUFFER))
    sio.instrument_metrics(registry=registry or REGISTRY)

    @sio.on("echo")
    async def echo(socket: Socket, *args: Any) -> list[Any]:
        return list(args)

    @sio.on("pid")
    async def pid(socket: Socket) -> int:
        return os.getpid()

    @sio.on("block")
    async def block(socket: Socket) -> None:
        # Keeps this worker from accepting connections for a moment (the
        # multiprocess test uses it to reach the other worker).
        time.sleep(BLOCK)  # noqa: ASYNC251 - blocking the loop is the point

    @sio.on("ask")
    async def ask(socket: Socket) -> None:
        try:
            await socket.emit_with_ack("question", timeout=0.3)
        except AckTimeoutError:
            await socket.emit("timed-out")

    @sio.on("ask-all")
    async def ask_all(socket: Socket) -> None:
        try:
            await sio.timeout(0.3).emit_with_ack("question")
        except AckTimeoutError:
            await socket.emit("timed-out")

    @sio.on("shout")
    async def shout(socket: Socket, text: str) -> None:
        await sio.emit("news", text)

    @sio.on("volatile")
    async def volatile(socket: Socket) -> None:
        await socket.volatile.emit("v")

    @sio.on("big")
    async def big(socket: Socket) -> None:
        await socket.emit("big", "x" * BIG)

    @sio.on("bye")
    async def bye(socket: Socket) -> None:
        await socket.disconnect()

    web = Starlette(routes=[Route("/metrics", metrics_app(registry))])
    return sio, sio.asgi_app(web)


sio, app = make_app(None)
