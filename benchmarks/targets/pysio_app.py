"""Reference target: python-socketio ``AsyncServer`` (ASGI mode) on uvicorn."""

from __future__ import annotations

from typing import Any

import socketio

sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins="*")


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
