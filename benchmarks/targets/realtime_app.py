"""Our target: ``realtime.Server`` served by uvicorn.

Same events as every Socket.IO target: ``echo`` emits its arguments back,
``ack`` returns them as the acknowledgement, ``bcast`` emits them to every
connected socket.

With ``BENCH_REDIS_URL`` set (scenario ``fanout-redis``) the server is one node
of a cluster through :class:`realtime.adapters.redis.RedisAdapter`, on the
channel prefix ``BENCH_REDIS_KEY``.
"""

from __future__ import annotations

import os
from typing import Any

import realtime

REDIS_URL = os.environ.get("BENCH_REDIS_URL")
if REDIS_URL:
    from realtime.adapters.redis import RedisAdapter

    key = os.environ.get("BENCH_REDIS_KEY", "socket.io")
    sio = realtime.Server(adapter=RedisAdapter.factory(url=REDIS_URL, key=key))
else:
    sio = realtime.Server()


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
