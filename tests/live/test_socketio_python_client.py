"""python-socketio's AsyncClient (an independent implementation) against our server in uvicorn.

Also covers the ASGI composition: a Starlette app beside Socket.IO, its
lifespan, an HTTP route that emits, the client bundle, and shutdown.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import socketio

from examples.starlette_app.app import app as starlette_example
from examples.starlette_app.app import sio as example_sio
from realtime import Server, Socket
from realtime.socketio.asgi import STATIC
from tests.live.test_socketio_node_client import make_server
from tests.servers import serve

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(30)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(make_server().asgi_app()) as base:
        yield base


async def connected_client(
    url: str, transports: list[str], **kwargs: Any
) -> tuple[socketio.AsyncClient, dict[str, list[Any]]]:
    client = socketio.AsyncClient(reconnection=False)
    received: dict[str, list[Any]] = {}

    @client.on("*")
    async def catch_all(event: str, *args: Any) -> None:
        received.setdefault(event, []).append(list(args))

    await client.connect(url, transports=transports, wait_timeout=5, **kwargs)
    return client, received


async def until(condition: Any, limit: float = 3) -> None:
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 - the state changes in the client's callbacks
            await anyio.sleep(0.01)


@pytest.mark.parametrize("transports", [["polling"], ["websocket"], ["polling", "websocket"]])
async def test_events_acks_and_binary(url: str, transports: list[str]) -> None:
    client, received = await connected_client(url, transports, auth={"name": "py"})
    try:
        await until(lambda: "welcome" in received)
        assert received["welcome"] == [[{"name": "py"}]]
        await client.emit("echo", [1, "two", b"\x00\xff", {"deep": [b"\x01"]}])
        await until(lambda: "echo" in received)
        assert received["echo"] == [[[1, "two", b"\x00\xff", {"deep": [b"\x01"]}]]]
        assert await client.call("with-ack", (b"\x09", "x"), timeout=5) == [b"\x09", "x"]
        assert await client.call("multi-ack", timeout=5) == ("x", 2)
        # The server awaits our ack, binary included.
        client.on("question", lambda value: (value, b"\x07"))
        await client.emit("ask-me", 5)
        await until(lambda: "answer" in received)
        assert received["answer"] == [[[5, [7]]]]
    finally:
        await client.disconnect()


async def test_namespaces_over_one_connection(url: str) -> None:
    client = socketio.AsyncClient(reconnection=False)
    where: list[tuple[str, Any]] = []
    client.on("where", lambda name, auth: where.append((name, auth)), namespace="/a")
    client.on("where", lambda name, auth: where.append((name, auth)), namespace="/")
    await client.connect(url, namespaces=["/", "/a"], transports=["websocket"], wait_timeout=5)
    try:
        await client.emit("where", namespace="/a")
        await client.emit("where", namespace="/")
        await until(lambda: len(where) == 2)
        assert sorted(where, key=lambda w: w[0]) == [("/", {}), ("/a", {})]
    finally:
        await client.disconnect()


async def test_connect_error_reaches_the_client(url: str) -> None:
    client = socketio.AsyncClient(reconnection=False)
    errors: list[Any] = []
    client.on("connect_error", errors.append, namespace="/private")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(url, namespaces=["/private"], auth={"token": "no"}, wait_timeout=3)
    assert errors == [{"message": "not authorized", "data": {"code": 42}}]


async def test_starlette_app_beside_socketio() -> None:
    reasons: list[str] = []

    @example_sio.on("disconnecting")
    async def record(socket: Socket, reason: str) -> None:
        reasons.append(reason)

    try:
        with serve(starlette_example) as base:
            client, received = await connected_client(
                base, ["websocket"], auth={"name": "ann", "room": "blue"}
            )
            async with httpx.AsyncClient(base_url=base) as http:
                page = await http.get("/")
                assert page.status_code == 200
                assert '<script src="/socket.io/client.js">' in page.text
                assert (await http.get("/online")).json() == ["ann"]
                sent = await http.post("/rooms/blue/notify", json={"text": "hi"})
                assert sent.json() == {"room": "blue", "sent": True}
                await until(lambda: "notice" in received)
                assert received["notice"] == [[{"text": "hi"}]]
                await http.post("/rooms/red/notify", json={"text": "not you"})
                assert (await http.get("/nothing-here")).status_code == 404
                # Sent after the one to red: once it is here, red's would be too.
                await http.post("/rooms/blue/notify", json={"text": "again"})
                await until(lambda: len(received["notice"]) == 2)
            assert received["notice"] == [[{"text": "hi"}], [{"text": "again"}]]
            assert starlette_example.other_app.state.ready is True  # type: ignore[attr-defined]
        # Leaving the block shut the server down; the client was disconnected.
        await until(lambda: not client.connected)
        assert reasons == ["server shutting down"]
    finally:
        example_sio.off("disconnecting")


async def test_client_bundle_is_served_with_cache_headers() -> None:
    sio = Server()
    with serve(sio.asgi_app()) as base:
        async with httpx.AsyncClient(base_url=base) as http:
            for name, kind in (("client.js", "javascript"), ("client.js.map", "json")):
                response = await http.get(f"/socket.io/{name}")
                if not (STATIC / name).is_file():
                    assert response.status_code == 404
                    continue
                assert response.status_code == 200
                assert kind in response.headers["content-type"]
                assert response.headers["cache-control"] == "public, max-age=0, must-revalidate"
                assert response.content == (STATIC / name).read_bytes()
                etag = response.headers["etag"]
                again = await http.get(f"/socket.io/{name}", headers={"if-none-match": etag})
                assert again.status_code == 304
            assert (await http.get("/socket.io/other.js")).status_code != 200
            assert (await http.get("/elsewhere")).status_code == 404


async def test_server_shutdown_disconnects_clients_with_its_reason() -> None:
    # A pending long-poll holds uvicorn's shutdown until it returns: keep it short.
    sio = Server(ping_interval=0.3, ping_timeout=0.5)
    reasons: list[str] = []
    sio.on("disconnect", lambda socket, reason: reasons.append(reason))
    with serve(sio.asgi_app()) as base:
        client, _ = await connected_client(base, ["polling"])
        await until(lambda: len(sio.main.sockets) == 1)
    await until(lambda: not client.connected)
    assert reasons == ["server shutting down"]


async def test_malformed_packet_closes_the_client_with_parse_error() -> None:
    import websockets

    sio = Server()
    reasons: list[str] = []
    sio.on("disconnect", lambda socket, reason: reasons.append(reason))
    sio.on("x", lambda socket, value: value)
    with serve(sio.asgi_app()) as base:
        ws_url = base.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        async with websockets.connect(ws_url) as ws:
            await ws.recv()  # Engine.IO open
            await ws.send("40")
            assert str(await ws.recv()).startswith('40{"sid":')
            await ws.send('421["x",NaN]')
            received = [message async for message in ws]  # until the server closes
            assert set(received) <= {"2"}  # nothing but pings: no ack for the bad packet
            assert ws.close_code == 1000
        await until(lambda: bool(reasons))
    assert reasons == ["parse error"]


@pytest.mark.parametrize("wrapped", [False, True], ids=["alone", "wrapping-starlette"])
async def test_shutdown_waits_for_disconnect_handlers_of_polling_sessions(wrapped: bool) -> None:
    """A polling session's disconnect handler, started by another task, runs to its end.

    Shutdown closes the session, which starts its disconnect handler at once;
    shutdown must still wait for it, and the lifespan must not report itself
    complete (letting the server end the loop) before realtime's shutdown is done.
    """
    from starlette.applications import Starlette

    sio = Server()
    reasons: list[str] = []

    @sio.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        await anyio.sleep(0.2)  # work that takes a while: a database write, say
        reasons.append(reason)

    with serve(sio.asgi_app(Starlette() if wrapped else None)) as base:
        path = "/socket.io/?EIO=4&transport=polling"
        async with httpx.AsyncClient(base_url=base) as http:
            opened = await http.get(path)
            sid = json.loads(opened.text[1:])["sid"]
            await http.post(f"{path}&sid={sid}", content="40")
            assert (await http.get(f"{path}&sid={sid}")).text.startswith("40")
        # No GET is pending now, so nothing holds up uvicorn's shutdown.
    assert reasons == ["server shutting down"]
