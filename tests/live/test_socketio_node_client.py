"""The official npm ``socket.io-client`` 4.x against our server in uvicorn.

Each test runs one scenario of ``tests/node/scenarios.mjs`` (a real client in a
Node process) and checks what the client observed, on every transport setup.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import pytest

from realtime import ConnectionRefusedError, Server, Socket
from tests.servers import ROOT, require, require_node, serve

pytestmark = [pytest.mark.live, pytest.mark.node, pytest.mark.timeout(30)]

NODE_DIR = ROOT / "tests" / "node"

TRANSPORTS = {
    "polling-then-upgrade": "polling,websocket",
    "websocket-only": "websocket",
    "polling-only": "polling",
}


def make_server() -> Server:
    """Handlers for the node scenarios and the python-socketio tests."""
    sio = Server(ping_interval=1.0, ping_timeout=2.0, connect_timeout=5.0)

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        socket.data["name"] = auth.get("name")
        await socket.emit("welcome", auth)

    @sio.on("echo")
    async def echo(socket: Socket, *args: Any) -> None:
        await socket.emit("echo", *args)

    @sio.on("with-ack")
    def with_ack(socket: Socket, *args: Any) -> list[Any]:  # a sync handler works too
        return list(args)  # one ack argument (a tuple would be several)

    @sio.on("multi-ack")
    async def multi_ack(socket: Socket) -> tuple[str, int]:
        return ("x", 2)

    @sio.on("ask-me")
    async def ask_me(socket: Socket, value: Any) -> None:
        answer = await socket.emit_with_ack("question", value, timeout=3)
        parts = answer if isinstance(answer, tuple) else (answer,)
        described = [list(p) if isinstance(p, bytes) else p for p in parts]
        await socket.emit("answer", described)

    @sio.on("join")
    async def join(socket: Socket, room: str) -> bool:
        await socket.join(room)
        return True

    @sio.on("to-room")
    async def to_room(socket: Socket, room: str, text: str) -> bool:
        await socket.to(room).emit("news", socket.data["name"], text)
        return True

    @sio.on("server-to-room-except")
    async def server_to_room_except(socket: Socket, room: str, other: str, text: str) -> bool:
        await sio.to(room).except_(other).emit("news", socket.data["name"], text)
        return True

    @sio.on("broadcast")
    async def broadcast(socket: Socket, text: str) -> bool:
        await socket.broadcast.emit("news", socket.data["name"], text)
        return True

    @sio.on("poll-room")
    async def poll_room(socket: Socket, room: str) -> list[Any]:
        return await sio.to(room).timeout(3).emit_with_ack("poll")

    async def where(socket: Socket) -> None:
        await socket.emit("where", socket.namespace.name, socket.handshake.auth)

    sio.on("where", where)
    sio.of("/a").on("where", where)
    sio.of(re.compile(r"/dyn-\d+")).on("where", where)

    private = sio.of("/private")

    @private.use
    def check_token(socket: Socket) -> None:
        if socket.handshake.auth.get("token") != "secret":
            raise ConnectionRefusedError("not authorized", {"code": 42})

    return sio


def run_scenario(
    name: str,
    url: str,
    transports: str = "polling,websocket",
    *,
    script: str = "scenarios.mjs",
    env: dict[str, str] | None = None,
) -> Any:
    """Run scenario ``name`` of ``tests/node/<script>``; what its clients observed (JSON)."""
    node = require_node()
    require((NODE_DIR / "node_modules" / "socket.io-client").is_dir(), "npm ci in tests/node")
    proc = subprocess.run(
        [node, script, name, url, transports],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, f"scenario {name} failed:\n{proc.stderr}\n{proc.stdout}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def url() -> Any:
    with serve(make_server().asgi_app()) as base:
        yield base


@pytest.mark.parametrize("setup", list(TRANSPORTS))
def test_basic_exchange(url: str, setup: str) -> None:
    result = run_scenario("basic", url, TRANSPORTS[setup])
    assert result["auth"] == {"token": "abc"}
    assert result["echoArgs"] == [1, "two", {"three": [True, None]}]
    assert result["ack"] == ["a", 2]
    assert result["multi"] == ["x", 2]
    expected = "polling" if setup == "polling-only" else "websocket"
    assert result["transport"] == expected


@pytest.mark.parametrize("setup", list(TRANSPORTS))
def test_binary_both_ways(url: str, setup: str) -> None:
    result = run_scenario("binary", url, TRANSPORTS[setup])
    assert result["echo"] == ["file", [1, 2, 3], [4, 5]]
    assert result["ack"] == [9, 8]
    assert result["answer"] == [[6], [7, 7, 7]]
    assert result["transport"] == ("polling" if setup == "polling-only" else "websocket")


@pytest.mark.parametrize("setup", ["polling-then-upgrade", "websocket-only"])
def test_server_awaits_client_ack(url: str, setup: str) -> None:
    assert run_scenario("serverAck", url, TRANSPORTS[setup]) == {"answer": [42, "ok"]}


@pytest.mark.parametrize("setup", ["polling-then-upgrade", "polling-only"])
def test_namespaces_share_one_connection(url: str, setup: str) -> None:
    result = run_scenario("namespaces", url, TRANSPORTS[setup])
    assert result["sameEngine"] is True
    assert result["fromA"] == ["/a", {"who": "a"}]
    assert result["fromMain"] == ["/", {}]
    assert result["dyn"] == ["/dyn-42", {}]
    assert result["again"] == ["/", {}]


@pytest.mark.parametrize("setup", ["polling-then-upgrade", "websocket-only"])
def test_connect_error(url: str, setup: str) -> None:
    result = run_scenario("connectError", url, TRANSPORTS[setup])
    assert result == {
        "message": "not authorized",
        "data": {"code": 42},
        "unknown": "Invalid namespace",
        "ok": True,
    }


@pytest.mark.parametrize("setup", ["websocket-only", "polling-only"])
def test_rooms_and_broadcast_reach_exactly_the_right_clients(url: str, setup: str) -> None:
    result = run_scenario("rooms", url, TRANSPORTS[setup])
    assert result["heard"] == {
        "c1": ["c2:three", "c4:two"],
        "c2": ["c1:one", "c4:two"],
        "c3": ["c1:one", "c2:three"],
        "c4": ["c2:three"],
    }
    assert result["answers"] == ["c1", "c2", "c3"]
