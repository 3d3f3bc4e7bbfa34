"""Ordered dispatch (``Server(async_handlers=False)``): one client's handlers run one
at a time, in arrival order, on the task that reads the client (no hand-off).

python-socketio's client drives a live server (uvicorn). What is checked: the
order itself, that a client whose handler waits holds up no other client, and
that the heartbeat does not end a session whose packets wait behind a slow
handler (its pong is among them).
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import pytest
import socketio

from realtime import Server, Socket
from tests.servers import serve

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(30)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


async def connected(url: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], wait_timeout=5)
    return client


@pytest.mark.parametrize(("async_handlers", "order"), [(False, [1, 2]), (True, [2, 1])])
async def test_one_clients_handlers_run_in_arrival_order(
    async_handlers: bool, order: list[int]
) -> None:
    sio = Server(async_handlers=async_handlers)
    done: list[int] = []
    second_ran = anyio.Event()

    @sio.on("first")
    async def first(socket: Socket) -> None:
        # Ordered: the second event waits for this one, so waiting for it times out.
        with anyio.move_on_after(1.0):
            await second_ran.wait()
        done.append(1)

    @sio.on("second")
    def second(socket: Socket) -> list[int]:
        second_ran.set()
        done.append(2)
        return done

    with serve(sio.asgi_app()) as url:
        client = await connected(url)
        await client.emit("first")
        assert await client.call("second", timeout=5) is not None
        with anyio.fail_after(5):
            while len(done) < 2:  # noqa: ASYNC110 - filled on the server's thread
                await anyio.sleep(0.01)
        await client.disconnect()
    assert done == order


async def test_a_waiting_handler_holds_up_no_other_client() -> None:
    sio = Server(async_handlers=False)
    released = threading.Event()
    answered = anyio.Event()

    @sio.on("wait")
    async def wait(socket: Socket) -> str:
        await answered.wait()  # set by the other client's handler
        return "released"

    @sio.on("release")
    def release(socket: Socket) -> str:
        answered.set()
        released.set()
        return "ok"

    with serve(sio.asgi_app()) as url:
        a, b = await connected(url), await connected(url)
        async with anyio.create_task_group() as tg:
            results: dict[str, Any] = {}

            async def ask_a() -> None:
                results["a"] = await a.call("wait", timeout=10)

            tg.start_soon(ask_a)
            await anyio.sleep(0.2)
            results["b"] = await b.call("release", timeout=10)
        assert results == {"a": "released", "b": "ok"}
        await a.disconnect()
        await b.disconnect()


async def test_the_heartbeat_spares_a_client_whose_pong_waits_behind_a_slow_handler() -> None:
    sio = Server(async_handlers=False, ping_interval=0.3, ping_timeout=0.3)
    reasons: list[str] = []

    @sio.on("slow")
    async def slow(socket: Socket) -> str:
        await anyio.sleep(2.0)  # several ping periods: the pongs queue behind it
        return "done"

    @sio.on("disconnect")
    def disconnect(socket: Socket, reason: str) -> None:
        reasons.append(reason)

    with serve(sio.asgi_app()) as url:
        client = await connected(url)
        assert await client.call("slow", timeout=10) == "done"
        assert await client.call("slow", timeout=10) == "done"
        assert reasons == []
        await client.disconnect()
