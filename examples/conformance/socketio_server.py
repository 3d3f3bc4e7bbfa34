"""Server configured as the public socket.io-protocol test suite expects.

python examples/conformance/socketio_server.py [--port 3000]
"""

from __future__ import annotations

import argparse
from typing import Any

import realtime
from realtime import Server, Socket

sio = Server(
    ping_interval=0.3,
    ping_timeout=0.2,
    max_payload=1_000_000,
    connect_timeout=1.0,
    cors_origins="*",
)


@sio.on("connect")
async def connect(socket: Socket, auth: dict[str, Any]) -> None:
    await socket.emit("auth", socket.handshake.auth)


@sio.on("message")
async def message(socket: Socket, *args: Any) -> None:
    await socket.emit("message-back", *args)


@sio.on("message-with-ack")
async def message_with_ack(socket: Socket, *args: Any) -> tuple[Any, ...]:
    return args


@sio.of("/custom").on("connect")
async def custom_connect(socket: Socket, auth: dict[str, Any]) -> None:
    await socket.emit("auth", socket.handshake.auth)


app = sio.asgi_app()

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    realtime.run(app, host=args.host, port=args.port, log_level="warning")
