"""Our target: ``realtime.Server`` served by uvicorn.

Same events as every Socket.IO target: ``echo`` emits its arguments back,
``ack`` returns them as the acknowledgement, ``bcast`` emits them to every
connected socket.
"""

from __future__ import annotations

from typing import Any

import realtime

sio = realtime.Server(async_handlers=False)


@sio.on("echo")
async def echo(socket: Any, *args: Any) -> None:
    await socket.emit("echo", *args)


@sio.on("ack")
async def ack(socket: Any, *args: Any) -> Any:
    return args


@sio.on("bcast")
async def bcast(socket: Any, *args: Any) -> None:
    await sio.emit("bcast", *args)


app = sio.asgi_app()
