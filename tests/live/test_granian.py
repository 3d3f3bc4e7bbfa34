"""The server under granian, whose ASGI ``send`` returns an awaitable that is not a coroutine.

The WebSocket write path steps a coroutine by hand to save a task switch; an
awaitable it cannot step must be awaited whole. Before that, under granian every
WebSocket session ended at its first write from a handler (the CONNECT reply).
python-socketio's client talks to ``examples/conformance/socketio_server.py``
served by granian in its own process.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import socketio

from tests.servers import require, serve_process

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(40)]

GRANIAN = shutil.which("granian") or str(Path(sys.executable).parent / "granian")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    require(Path(GRANIAN).exists(), "granian is not installed (pip install granian)")
    args = [GRANIAN, "--interface", "asgi", "--host", "127.0.0.1", "--workers", "1"]
    with serve_process([*args, "examples.conformance.socketio_server:app"]) as base:
        yield base


@pytest.mark.parametrize("transports", [["websocket"], ["polling"], ["polling", "websocket"]])
async def test_connect_emit_and_ack_under_granian(url: str, transports: list[str]) -> None:
    clients = [socketio.AsyncClient(reconnection=False) for _ in range(20)]
    heard: list[Any] = []
    for client in clients:
        client.on("message-back", lambda *args: heard.append(args))
    async with anyio.create_task_group() as tg:
        for client in clients:
            tg.start_soon(lambda c: c.connect(url, transports=transports, wait_timeout=10), client)
    answers = [await c.call("message-with-ack", (1, "two"), timeout=10) for c in clients]
    assert answers == [(1, "two")] * len(clients)
    for client in clients:
        await client.emit("message", "x")
    with anyio.fail_after(10):
        while len(heard) < len(clients):  # noqa: ASYNC110 - filled by the clients' tasks
            await anyio.sleep(0.02)
    assert all(c.connected for c in clients)
    for client in clients:
        await client.disconnect()
