"""One node of a Redis cluster with the reference handlers the cluster tests drive.

    python examples/cluster/node.py --port 8001 --redis redis://127.0.0.1:6379 --name a
    python examples/cluster/node.py --port 8002 --redis redis://127.0.0.1:6379 --name b

Handlers on ``/`` (a Node twin of this file runs the same ones):
``broadcast`` (*args): every client of the cluster gets ``broadcast`` with them;
``join`` (room): join it, ack ``true``; ``to-room`` (room, *args): the room gets
``room-message`` with the args; ``count``: ack the number of sockets in the
cluster; ``ask-servers``: ack the replies of every other node to ``who`` (each
answers its name); ``ask-clients``: ack the answers of every client of the
cluster to ``question`` (2 s timeout). Each socket gets ``hello`` with the name on
connect. ``GET /health`` answers the Redis link's state as JSON.

``--adapter streams`` joins the cluster through Redis Streams (Node's
``@socket.io/redis-streams-adapter`` wire) instead of pub/sub. ``--recovery``
turns connection state recovery on (``max_disconnection_duration`` 120 s,
``skip_middlewares``) with the streams adapter; ``hello`` then carries the name
and whether the socket was recovered::

    python examples/cluster/node.py --port 8001 --name a --recovery
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import realtime
from realtime import Server, Socket
from realtime.adapters.recovery import RecoveryOptions
from realtime.adapters.redis import RedisAdapter, RedisAdapterFactory
from realtime.adapters.redis_streams import RedisStreamsAdapter, RedisStreamsAdapterFactory
from realtime.exceptions import AckTimeoutError, ClusterTimeoutError


def build(
    redis_url: str, name: str, *, streams: bool = False, recovery: bool = False, **options: Any
) -> tuple[Server, Any]:
    """The server with the reference handlers, and its ASGI app (``/health`` included).

    ``streams``: the Redis Streams adapter (implied by ``recovery``); ``options`` go
    to the adapter's factory.
    """
    factory: RedisAdapterFactory | RedisStreamsAdapterFactory
    if streams or recovery:
        if "key" in options:
            options["channel_prefix"] = options["stream_name"] = options.pop("key")
        factory = RedisStreamsAdapter.factory(redis_url, **options)
    else:
        factory = RedisAdapter.factory(url=redis_url, **options)
    sio = Server(
        adapter=factory,
        connection_state_recovery=(
            RecoveryOptions(max_disconnection_duration=120, skip_middlewares=True)
            if recovery
            else False
        ),
    )

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        socket.data["node"] = name
        if recovery:
            await socket.emit("hello", name, socket.recovered)
        else:
            await socket.emit("hello", name)

    @sio.on("broadcast")
    async def broadcast(socket: Socket, *args: Any) -> None:
        await sio.emit("broadcast", *args)

    @sio.on("join")
    async def join(socket: Socket, room: str) -> bool:
        await socket.join(room)
        return True

    @sio.on("to-room")
    async def to_room(socket: Socket, room: str, *args: Any) -> None:
        await sio.to(room).emit("room-message", *args)

    @sio.on("count")
    async def count(socket: Socket) -> int:
        return len(await sio.fetch_sockets())

    @sio.on("ask-servers")
    async def ask_servers(socket: Socket) -> list[Any]:
        try:
            return await sio.server_side_emit_with_ack("who")
        except ClusterTimeoutError as exc:
            return exc.responses

    @sio.on("ask-clients")
    async def ask_clients(socket: Socket) -> list[Any]:
        try:
            return await sio.timeout(2).emit_with_ack("question")
        except AckTimeoutError as exc:
            return exc.responses

    @sio.on_server("who")
    def who() -> str:
        return name

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"name": name, **asdict(factory.health)})

    return sio, sio.asgi_app(Starlette(routes=[Route("/health", health)]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    parser.add_argument("--name", default="python")
    parser.add_argument("--key", default="socket.io")
    parser.add_argument("--requests-timeout", type=float, default=5.0)
    parser.add_argument("--adapter", choices=("redis", "streams"), default="redis")
    parser.add_argument("--recovery", action="store_true")
    args = parser.parse_args()
    _, app = build(
        args.redis,
        args.name,
        streams=args.adapter == "streams",
        recovery=args.recovery,
        key=args.key,
        requests_timeout=args.requests_timeout,
    )
    realtime.run(app, host=args.host, port=args.port, log_level="warning")
