"""Delivery is prompt, whatever handlers do: live, at the default heartbeat.

Every test waits for something the server must send while a handler is still
running, and only then lets that handler finish. A server that holds a client's
output until the handler running for it returns (as realtime did before)
deadlocks here, and the test fails on its bounded wait. The heartbeat stays at
the default 25 s / 20 s on purpose: a ping inside the test would flush held
output and hide exactly that fault.

Each case runs with the official npm ``socket.io-client`` (``tests/node/delivery.mjs``)
and with python-socketio's ``AsyncClient``, over WebSocket only, polling only,
and polling upgraded to WebSocket.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
import socketio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from realtime import AckTimeoutError, Server, Socket
from tests.servers import ROOT, require, require_node, serve

pytestmark = [pytest.mark.live, pytest.mark.timeout(60)]

NODE_DIR = ROOT / "tests" / "node"

#: How long a client waits for any one thing (seconds).
WAIT = 10.0
#: How long a handler waits for a client: longer than WAIT, so the client's bound decides.
HANDLER_WAIT = 15.0

TRANSPORTS = {
    "websocket-only": ["websocket"],
    "polling-only": ["polling"],
    "polling-then-upgrade": ["polling", "websocket"],
}


def make_app() -> ASGIApp:
    """A server at the default heartbeat, with handlers that wait on their clients."""
    sio = Server()  # ping_interval 25, ping_timeout 20: no ping during a test
    assert (sio.engine.config.ping_interval, sio.engine.config.ping_timeout) == (25.0, 20.0)
    named: dict[str, Socket] = {}
    gates: dict[tuple[str, ...], anyio.Event] = {}
    background: list[anyio.abc.TaskGroup] = []

    def gate(*key: str) -> anyio.Event:
        """One event per key, made by whichever side (waiter or setter) comes first."""
        return gates.setdefault(key, anyio.Event())

    async def wait(event: anyio.Event) -> None:
        with anyio.fail_after(HANDLER_WAIT):
            await event.wait()

    async def ask(socket: Socket, value: Any) -> dict[str, Any]:
        try:
            return {"answer": await socket.emit_with_ack("question", value, timeout=HANDLER_WAIT)}
        except AckTimeoutError as exc:
            return {"error": str(exc)}

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        name = socket.data["name"] = str(auth["name"])
        named[name] = socket
        await socket.join(f"name:{name}")

    @sio.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        named.pop(socket.data["name"], None)

    @sio.on("ticks")
    async def ticks(socket: Socket, count: int) -> str:
        for i in range(1, count + 1):
            await socket.emit("tick", i)
            if i < count:
                await wait(gate(socket.id, "tick", str(i)))
        return "done"

    @sio.on("continue")
    async def continue_(socket: Socket, i: int) -> None:
        gate(socket.id, "tick", str(i)).set()

    @sio.on("ask-self")
    async def ask_self(socket: Socket, value: Any) -> dict[str, Any]:
        return await ask(socket, value)

    @sio.on("ask-other")
    async def ask_other(socket: Socket, name: str, value: Any) -> dict[str, Any]:
        return await ask(named[name], value)

    @sio.on("busy")
    async def busy(socket: Socket) -> str:
        name = socket.data["name"]
        gate(name, "started").set()
        await wait(gate(name, "release"))
        return "released"

    @sio.on("release")
    async def release(socket: Socket) -> None:
        gate(socket.data["name"], "release").set()

    @sio.on("broadcast-to-busy")
    async def broadcast_to_busy(socket: Socket, target: str, text: str) -> bool:
        await wait(gate(target, "started"))
        await socket.broadcast.emit("news", text)
        return True

    async def notify(request: Request) -> JSONResponse:
        """Outside any handler: this route and a background task emit to a busy client."""
        name = request.path_params["name"]
        await wait(gate(name, "started"))
        await sio.to(f"name:{name}").emit("notice", "from-route")
        background[0].start_soon(named[name].emit, "notice", "from-task")
        return JSONResponse({"sent": True})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            background.append(tasks)
            yield
            tasks.cancel_scope.cancel()

    web = Starlette(routes=[Route("/notify/{name}", notify, methods=["POST"])], lifespan=lifespan)
    return sio.asgi_app(web)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(make_app()) as base:
        yield base


# -- the official socket.io-client ----------------------------------------------------


def run_node(scenario: str, url: str, transports: list[str]) -> Any:
    node = require_node()
    require((NODE_DIR / "node_modules" / "socket.io-client").is_dir(), "npm ci in tests/node")
    proc = subprocess.run(
        [node, "delivery.mjs", scenario, url, ",".join(transports)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert proc.returncode == 0, f"scenario {scenario} failed:\n{proc.stderr}\n{proc.stdout}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


node_setups = pytest.mark.parametrize("setup", list(TRANSPORTS))


@pytest.mark.node
@node_setups
def test_node_progressive_emits_arrive_while_the_handler_runs(url: str, setup: str) -> None:
    result = run_node("ticks", url, TRANSPORTS[setup])
    assert result["log"] == ["tick 1", "tick 2", "tick 3", "ack done"]
    assert result["transport"] == ("polling" if setup == "polling-only" else "websocket")


@pytest.mark.node
@node_setups
def test_node_handler_awaits_an_ack_from_its_own_client(url: str, setup: str) -> None:
    assert run_node("askSelf", url, TRANSPORTS[setup]) == {"result": {"answer": {"doubled": 42}}}


@pytest.mark.node
@node_setups
def test_node_handler_awaits_an_ack_from_another_client(url: str, setup: str) -> None:
    result = run_node("askOther", url, TRANSPORTS[setup])
    assert result["idle"] == {"answer": "b saw one"}
    assert result["nested"] == {"answer": {"outer": "three", "inner": {"answer": "b saw two"}}}


@pytest.mark.node
@node_setups
def test_node_broadcast_reaches_a_client_whose_handler_is_busy(url: str, setup: str) -> None:
    result = run_node("broadcastToBusy", url, TRANSPORTS[setup])
    assert result == {"sent": True, "log": ["news", "ack released"]}


@pytest.mark.node
@node_setups
def test_node_emit_from_outside_handlers_reaches_a_busy_client(url: str, setup: str) -> None:
    result = run_node("notifyBusy", url, TRANSPORTS[setup])
    assert result["status"] == 200
    assert result["body"] == {"sent": True}
    assert sorted(result["log"][:2]) == ["from-route", "from-task"]
    assert result["log"][2:] == ["ack released"]


# -- python-socketio's AsyncClient ------------------------------------------------------

py_setups = pytest.mark.parametrize("setup", list(TRANSPORTS))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


async def until(condition: Callable[[], bool], what: str) -> None:
    with anyio.move_on_after(WAIT):
        while not condition():  # noqa: ASYNC110 - the state changes in the client's callbacks
            await anyio.sleep(0.01)
        return
    pytest.fail(f"timed out waiting for {what} ({WAIT} s)")


@contextlib.asynccontextmanager
async def client(
    url: str, setup: str, prefix: str
) -> AsyncIterator[tuple[socketio.AsyncClient, str]]:
    """A connected client (upgraded when the setup allows it) and its name on the server."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    sio = socketio.AsyncClient(reconnection=False)
    transports = TRANSPORTS[setup]
    await sio.connect(url, transports=transports, auth={"name": name}, wait_timeout=WAIT)
    try:
        expected = "polling" if transports == ["polling"] else "websocket"
        await until(lambda: sio.transport() == expected, "the upgrade")
        yield sio, name
    finally:
        await sio.disconnect()


async def call(sio: socketio.AsyncClient, event: str, *args: Any) -> Any:
    return await sio.call(event, args if len(args) != 1 else args[0], timeout=WAIT)


@pytest.mark.anyio
@py_setups
async def test_python_progressive_emits_arrive_while_the_handler_runs(url: str, setup: str) -> None:
    async with client(url, setup, "ticks") as (sio, _):
        log: list[str] = []

        async def tick(i: int) -> None:
            log.append(f"tick {i}")
            if i < 3:
                await sio.emit("continue", i)

        sio.on("tick", tick)

        await sio.emit("ticks", 3, callback=lambda ack: log.append(f"ack {ack}"))
        await until(lambda: len(log) == 4, "three ticks and the ack")
    assert log == ["tick 1", "tick 2", "tick 3", "ack done"]


@pytest.mark.anyio
@py_setups
async def test_python_handler_awaits_an_ack_from_its_own_client(url: str, setup: str) -> None:
    async with client(url, setup, "self") as (sio, _):
        sio.on("question", lambda value: {"doubled": value * 2})
        assert await call(sio, "ask-self", 21) == {"answer": {"doubled": 42}}


@pytest.mark.anyio
@py_setups
async def test_python_handler_awaits_an_ack_from_another_client(url: str, setup: str) -> None:
    async with client(url, setup, "a") as (a, a_name), client(url, setup, "b") as (b, b_name):
        b.on("question", lambda value: f"b saw {value}")
        assert await call(a, "ask-other", b_name, "one") == {"answer": "b saw one"}

        # B's handler waits for A's answer; A answers only once its own handler,
        # asking B, has B's answer: B answers while its handler still runs.
        async def question(value: str) -> dict[str, Any]:
            return {"outer": value, "inner": await call(a, "ask-other", b_name, "two")}

        a.on("question", question)

        nested = await call(b, "ask-other", a_name, "three")
    assert nested == {"answer": {"outer": "three", "inner": {"answer": "b saw two"}}}


@pytest.mark.anyio
@py_setups
async def test_python_broadcast_reaches_a_client_whose_handler_is_busy(
    url: str, setup: str
) -> None:
    text = f"news-{uuid.uuid4().hex[:8]}"
    async with client(url, setup, "a") as (a, _), client(url, setup, "b") as (b, b_name):
        log: list[str] = []
        b.on("news", lambda value: log.append("news") if value == text else None)
        await b.emit("busy", callback=lambda ack: log.append(f"ack {ack}"))
        assert await call(a, "broadcast-to-busy", b_name, text) is True
        await until(lambda: "news" in log, "the broadcast")
        await b.emit("release")
        await until(lambda: len(log) == 2, "the busy handler's ack")
    assert log == ["news", "ack released"]


@pytest.mark.anyio
@py_setups
async def test_python_emit_from_outside_handlers_reaches_a_busy_client(
    url: str, setup: str
) -> None:
    async with client(url, setup, "b") as (b, b_name), httpx.AsyncClient(base_url=url) as http:
        log: list[str] = []
        b.on("notice", log.append)
        await b.emit("busy", callback=lambda ack: log.append(f"ack {ack}"))
        response = await http.post(f"/notify/{b_name}", timeout=WAIT)
        assert response.json() == {"sent": True}
        await until(lambda: len(log) == 2, "both notices")
        await b.emit("release")
        await until(lambda: len(log) == 3, "the busy handler's ack")
    assert sorted(log[:2]) == ["from-route", "from-task"]
    assert log[2:] == ["ack released"]
