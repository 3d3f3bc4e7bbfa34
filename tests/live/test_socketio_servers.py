"""The Socket.IO layer live on both event loops: uvicorn (asyncio) and hypercorn's trio worker.

The same server is served each way; python-socketio's AsyncClient and raw
WebSockets talk to it. Connect, events, acks both ways, binary, rooms and
broadcast, namespaces, and the disconnect reasons a server can see without a
heartbeat timing out (the heartbeat is the default 25 s / 20 s).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
import socketio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.client import connect as ws_connect

from realtime import Server, Socket
from tests.live.engine_servers import SERVERS, serve_hypercorn_trio
from tests.servers import serve

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(30)]

STEP = 5.0
TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the clients run on asyncio; the server runs on its own loop


@dataclass
class Live:
    url: str
    sio: Server
    #: Why each named client's main-namespace socket left, as the server saw it.
    reasons: dict[str, str] = field(default_factory=dict)


def make_app(live_reasons: dict[str, str]) -> tuple[Server, Any]:
    sio = Server(connect_timeout=5)

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        socket.data["name"] = auth.get("name", "anonymous")
        if auth.get("room"):
            await socket.join(auth["room"])
        await socket.emit("welcome", socket.data["name"])

    @sio.on("echo")
    def echo(socket: Socket, *args: Any) -> list[Any]:
        return list(args)

    @sio.on("emit-back")
    async def emit_back(socket: Socket, *args: Any) -> None:
        await socket.emit("echoed", *args)

    @sio.on("to-room")
    async def to_room(socket: Socket, room: str, text: str) -> bool:
        await socket.to(room).emit("news", socket.data["name"], text)
        return True

    @sio.on("broadcast")
    async def broadcast(socket: Socket, text: str) -> bool:
        await socket.broadcast.emit("news", socket.data["name"], text)
        return True

    @sio.on("marker")
    async def marker(socket: Socket, value: str) -> bool:
        # Sent to everyone after the news: whoever has it has all news it will get.
        await sio.emit("marker", value)
        return True

    @sio.on("leave-me")
    async def leave_me(socket: Socket) -> None:
        await socket.disconnect()

    @sio.on("disconnect")
    def disconnect(socket: Socket, reason: str) -> None:
        live_reasons[socket.data["name"]] = str(reason)

    def where(socket: Socket) -> list[Any]:
        return [socket.namespace.name, socket.handshake.auth]

    sio.of("/a").on("where", where)
    sio.of(re.compile(r"/dyn-\d+")).on("where", where)

    async def ask(request: Request) -> JSONResponse:
        """Server to client with an ack, from outside any Socket.IO handler."""
        name = request.path_params["name"]
        socket = next(s for s in sio.main.sockets.values() if s.data["name"] == name)
        answer = await socket.emit_with_ack("question", request.query_params["q"], timeout=STEP)
        parts = answer if isinstance(answer, tuple) else (answer,)
        return JSONResponse([list(p) if isinstance(p, bytes) else p for p in parts])

    other = Starlette(routes=[Route("/ask/{name}", ask)])
    return sio, sio.asgi_app(other)


@pytest.fixture(scope="module", params=SERVERS)
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    reasons: dict[str, str] = {}
    sio, app = make_app(reasons)
    runner = serve if request.param == "uvicorn" else serve_hypercorn_trio
    with runner(app) as url:
        yield Live(url, sio, reasons)


async def until(condition: Any, limit: float = STEP) -> None:
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 - the state changes in the client's callbacks
            await anyio.sleep(0.01)


@contextlib.asynccontextmanager
async def client(
    live: Live, transports: list[str], **connect: Any
) -> AsyncIterator[tuple[socketio.AsyncClient, dict[str, list[Any]]]]:
    """A connected client and the events it received (by name, a list of args each)."""
    sio = socketio.AsyncClient(reconnection=False)
    received: dict[str, list[Any]] = {}

    @sio.on("*")
    def catch_all(event: str, *args: Any) -> None:
        received.setdefault(event, []).append(list(args))

    await sio.connect(live.url, transports=transports, wait_timeout=STEP, **connect)
    try:
        yield sio, received
    finally:
        await sio.disconnect()


@pytest.mark.parametrize("setup", list(TRANSPORTS))
async def test_events_acks_and_binary(live: Live, setup: str) -> None:
    name = f"events-{setup}"
    async with client(live, TRANSPORTS[setup], auth={"name": name}) as (c, received):
        await until(lambda: "welcome" in received)
        assert received["welcome"] == [[name]]
        payload = [1, "two", b"\x00\xff", {"deep": [b"\x01", None]}]
        # Client to server, with an ack carrying binary back.
        assert await c.call("echo", (payload, b"\x02"), timeout=STEP) == [payload, b"\x02"]
        # Server to client, binary included.
        await c.emit("emit-back", ("x", b"\x03\x04"))
        await until(lambda: "echoed" in received)
        assert received["echoed"] == [["x", b"\x03\x04"]]
        # Server to client with an ack: the client's answer reaches the server.
        c.on("question", lambda q: (q + "!", b"\x05"))
        async with httpx.AsyncClient(base_url=live.url, timeout=STEP) as http:
            answer = await http.get(f"/ask/{name}", params={"q": "why"})
        assert answer.json() == ["why!", [5]]
        assert c.transport() == TRANSPORTS[setup][-1]


@pytest.mark.parametrize("setup", ["polling", "websocket"])
async def test_rooms_and_broadcast(live: Live, setup: str) -> None:
    transports = TRANSPORTS[setup]
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        for name, room in (("r1", "red"), ("r2", "red"), ("b1", "blue")):
            auth = {"name": f"{name}-{setup}", "room": f"{room}-{setup}"}
            clients[name] = await stack.enter_async_context(client(live, transports, auth=auth))
        r1, b1 = clients["r1"][0], clients["b1"][0]
        assert await r1.call("to-room", (f"red-{setup}", "one"), timeout=STEP) is True
        assert await b1.call("broadcast", "two", timeout=STEP) is True
        assert await b1.call("marker", setup, timeout=STEP) is True
        for _, received in clients.values():
            await until(lambda received=received: [setup] in received.get("marker", []))
        heard = {
            name: [args for args in received.get("news", []) if args[0].endswith(setup)]
            for name, (_, received) in clients.items()
        }
    assert heard == {
        "r1": [[f"b1-{setup}", "two"]],
        "r2": [[f"r1-{setup}", "one"], [f"b1-{setup}", "two"]],
        "b1": [],
    }


async def test_namespaces_over_one_connection(live: Live) -> None:
    c = socketio.AsyncClient(reconnection=False)
    await c.connect(
        live.url,
        namespaces=["/", "/a", "/dyn-7"],
        auth={"name": "namespaces"},
        transports=["polling", "websocket"],
        wait_timeout=STEP,
    )
    try:
        for namespace in ("/a", "/dyn-7"):
            answer = await c.call("where", namespace=namespace, timeout=STEP)
            assert answer == [namespace, {"name": "namespaces"}]
    finally:
        await c.disconnect()
    refused = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(live.url, namespaces=["/nope"], wait_timeout=STEP)


async def test_disconnect_reasons(live: Live) -> None:
    reasons: list[str] = []
    async with client(live, ["polling"], auth={"name": "is-left"}) as (c, _):
        c.on("disconnect", reasons.append)
        await c.emit("leave-me")
        await until(lambda: bool(reasons))
    assert reasons == ["server disconnect"]
    # Raw WebSockets for the rest: what the server sees is then exactly what was sent.
    ws_url = live.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    for name, last in (("leaves", "41"), ("dropped", None), ("garbled", '421["echo",NaN]')):
        async with ws_connect(ws_url, open_timeout=STEP) as ws:
            await ws.recv()  # Engine.IO open
            await ws.send(f'40{{"name":"{name}"}}')
            with anyio.fail_after(STEP):
                while not str(await ws.recv()).startswith("40"):
                    pass
            if last is not None:
                await ws.send(last)
                await until(lambda name=name: name in live.reasons)
        # Leaving the block closes the WebSocket (without a Socket.IO DISCONNECT).
    await until(lambda: "dropped" in live.reasons)
    assert {n: live.reasons[n] for n in ("is-left", "leaves", "dropped", "garbled")} == {
        "is-left": "server namespace disconnect",
        "leaves": "client namespace disconnect",
        "dropped": "transport close",
        "garbled": "parse error",
    }
