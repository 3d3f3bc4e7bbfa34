"""Reference target: python-socketio ``AsyncServer`` (ASGI mode) on uvicorn.

With ``BENCH_REDIS_URL`` set (scenario ``fanout-redis``) the server is one node
of a cluster through python-socketio's ``AsyncRedisManager``, on the channel
``BENCH_REDIS_KEY``.
"""

from __future__ import annotations

import os
from typing import Any

import socketio

REDIS_URL = os.environ.get("BENCH_REDIS_URL")
manager = (
    socketio.AsyncRedisManager(REDIS_URL, channel=os.environ.get("BENCH_REDIS_KEY", "socketio"))
    if REDIS_URL
    else None
)
sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*", client_manager=manager)


@sio.on("echo")
async def echo(sid: str, *args: Any) -> None:
    await sio.emit("echo", args, to=sid)


@sio.on("ack")
async def ack(sid: str, *args: Any) -> Any:
    return args


@sio.on("bcast")
async def bcast(sid: str, *args: Any) -> None:
    await sio.emit("bcast", args)


app = socketio.ASGIApp(sio)
