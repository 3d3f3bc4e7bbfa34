"""The scenario server for client-js's tests (see client-js/test/README.md).

The same events and namespaces as client-js/test/servers/reference.mjs, so the
client's scenarios run against this server and the reference alike.

    python examples/client_scenarios_server.py --port 3000 [--recovery]

``--recovery`` turns connection state recovery on (the recovery scenarios).
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

import realtime
from realtime import NO_ACK, AckTimeoutError, ConnectionRefusedError, Server, Socket
from realtime.socketio.handlers import ack_args


def make_server(recovery: bool = False) -> Server:
    """The scenario server; ``recovery`` turns connection state recovery on."""
    sio = Server(
        ping_interval=1.0,
        ping_timeout=2.0,
        max_payload=1_000_000,
        connection_state_recovery=recovery,
    )
    flaky: Counter[str] = Counter()

    @sio.use
    def check_token(socket: Socket) -> None:
        if socket.handshake.auth.get("token") == "reject":
            raise ConnectionRefusedError("unauthorized", {"reason": "bad token"})

    def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        return args  # every argument back, as separate ack arguments

    async def message(socket: Socket, *args: Any) -> None:
        await socket.emit("message-back", *args)

    sio.on("echo", echo)
    sio.on("message", message)
    sio.on("get-auth", lambda socket: socket.handshake.auth)
    sio.on("get-transport", lambda socket: socket.transport)
    # "ignore" has no handler: the client's ack timeout fires.

    @sio.on("server-disconnect")
    async def server_disconnect(socket: Socket) -> None:
        await socket.disconnect()

    @sio.on("request-ack")
    async def request_ack(socket: Socket, request: dict[str, Any]) -> None:
        try:
            answer = await socket.emit_with_ack(
                request["event"], *(request.get("args") or []), timeout=request["timeout"] / 1000
            )
        except AckTimeoutError:
            await socket.emit("ack-result", {"error": True, "args": []})
        else:
            await socket.emit("ack-result", {"error": False, "args": ack_args(answer)})

    @sio.on("flaky")
    def flaky_event(socket: Socket, key: str) -> Any:
        """Acknowledged only from the third try on (for the client's retries)."""
        flaky[key] += 1
        return flaky[key] if flaky[key] >= 3 else NO_ACK

    # connection state recovery: acknowledged once done, so a client can wait on them
    @sio.on("join")
    async def join(socket: Socket, room: str) -> None:
        await socket.join(room)

    @sio.on("to-room")
    async def to_room(socket: Socket, room: str, *args: Any) -> None:
        await sio.to(room).emit("room-event", *args)

    @sio.on("to-all")
    async def to_all(socket: Socket, *args: Any) -> None:
        await sio.emit("all-event", *args)

    @sio.on("count-in")
    async def count_in(socket: Socket, room: str) -> int:
        return len(await sio.in_(room).fetch_sockets())

    @sio.on("get-state")
    def get_state(socket: Socket) -> dict[str, Any]:
        rooms = sorted(r for r in socket.rooms if r != socket.id)
        return {"recovered": socket.recovered, "rooms": rooms}

    custom = sio.of("/custom")
    custom.on("echo", echo)
    custom.on("message", message)
    custom.on("whoami", lambda socket: socket.namespace.name)
    return sio


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--recovery", action="store_true", help="connection state recovery on")
    args = parser.parse_args()
    app = make_server(args.recovery).asgi_app()
    realtime.run(app, host=args.host, port=args.port, log_level="warning")
