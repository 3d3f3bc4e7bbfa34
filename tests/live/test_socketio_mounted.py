"""``SocketIOApp`` under a path prefix: starlette's ``Mount`` and uvicorn's ``--root-path``.

Both put ``root_path`` in front of ``path`` in the scope; the app must route
on what is below it. A real uvicorn serves, python-socketio's AsyncClient
connects (polling, then WebSocket), and httpx fetches the client bundle.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import socketio
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from realtime import Server, Socket
from realtime.socketio.asgi import STATIC
from tests.live.engine_servers import serve_hypercorn_trio
from tests.servers import serve

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(30)]

STEP = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


def echo_server() -> Server:
    sio = Server()

    @sio.on("echo")
    def echo(socket: Socket, *args: Any) -> list[Any]:
        return list(args)

    return sio


async def round_trip(url: str, socketio_path: str, transports: list[str]) -> None:
    """Connect, get an ack back, and (with both transports) end up on WebSocket."""
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, socketio_path=socketio_path, transports=transports, wait_timeout=STEP)
    try:
        assert await client.call("echo", ("hi", b"\x01"), timeout=STEP) == ["hi", b"\x01"]
        assert client.transport() == transports[-1]
    finally:
        await client.disconnect()


async def check_bundle(url: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=STEP) as http:
        response = await http.get(path)
        if (STATIC / "client.js").is_file():
            assert response.status_code == 200
            assert "javascript" in response.headers["content-type"]
        else:
            assert response.status_code == 404, response.text


@pytest.mark.parametrize("transports", [["polling", "websocket"], ["websocket"]])
async def test_mounted_under_a_prefix_in_starlette(transports: list[str]) -> None:
    sio = echo_server()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Starlette runs no lifespan of mounted apps: enter the server's here.
        async with sio.lifespan():
            yield

    app = Starlette(
        routes=[
            Mount("/rt", app=sio.asgi_app()),
            Route("/", lambda request: PlainTextResponse("home")),
        ],
        lifespan=lifespan,
    )
    with serve(app) as url:
        await round_trip(url, "/rt/socket.io", transports)
        await check_bundle(url, "/rt/socket.io/client.js")
        async with httpx.AsyncClient(base_url=url, timeout=STEP) as http:
            # The unprefixed path is not Socket.IO's.
            unprefixed = await http.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
            assert unprefixed.status_code == 404
            assert (await http.get("/")).text == "home"


@pytest.mark.parametrize("transports", [["polling", "websocket"], ["websocket"]])
async def test_served_with_a_root_path(transports: list[str]) -> None:
    # uvicorn --root-path /rt: a proxy in front takes /rt off, so the request
    # reaches uvicorn as /socket.io/ and the app sees path /rt/socket.io/.
    sio = echo_server()
    with serve(sio.asgi_app(), root_path="/rt") as url:
        await round_trip(url, "/socket.io", transports)
        await check_bundle(url, "/socket.io/client.js")


async def test_root_path_left_out_of_path_by_the_server() -> None:
    # hypercorn follows the older reading of ASGI: root_path is not in path.
    sio = echo_server()
    with serve_hypercorn_trio(sio.asgi_app(), root_path="/rt") as url:
        await round_trip(url, "/socket.io", ["polling", "websocket"])
        await check_bundle(url, "/socket.io/client.js")
