"""SocketIOApp lifespan: realtime shuts down first, within its deadline, and reports failure."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message

from realtime import InMemoryAdapter, Server, Socket
from realtime.engineio import EngineConfig

pytestmark = pytest.mark.anyio


class Lifespan:
    """Drives an ASGI app's lifespan the way an ASGI server does."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._to_app, self._inbox = anyio.create_memory_object_stream[Message](4)
        self._outbox, self._from_app = anyio.create_memory_object_stream[Message](4)

    async def run(self) -> None:
        await self.app(
            {"type": "lifespan", "asgi": {"version": "3.0"}}, self._inbox.receive, self._outbox.send
        )

    async def say(self, kind: str) -> Message:
        await self._to_app.send({"type": f"lifespan.{kind}"})
        with anyio.fail_after(10):
            return await self._from_app.receive()


async def join_over_polling(app: Any) -> None:
    """Open a polling session and join "/" through the app's real HTTP path."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        r = await client.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
        sid = r.text.split('"sid":"')[1].split('"')[0]
        params = {"EIO": "4", "transport": "polling", "sid": sid}
        assert (await client.post("/socket.io/", params=params, content=b"40")).text == "ok"
        assert (await client.get("/socket.io/", params=params)).text.startswith("40")


def app_with_order(sio: Server, order: list[str]) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        order.append("app started")
        yield
        order.append("app shut down")

    return sio.asgi_app(Starlette(lifespan=lifespan))


async def test_disconnect_handlers_run_before_the_wrapped_app_shuts_down() -> None:
    sio = Server()
    order: list[str] = []

    @sio.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        await anyio.lowlevel.checkpoint()  # a handler that awaits, say, the app's database
        order.append(f"disconnect: {reason}")

    app = app_with_order(sio, order)
    life = Lifespan(app)
    async with anyio.create_task_group() as tg:
        tg.start_soon(life.run)
        assert (await life.say("startup"))["type"] == "lifespan.startup.complete"
        await join_over_polling(app)
        assert (await life.say("shutdown"))["type"] == "lifespan.shutdown.complete"
    assert order == ["app started", "disconnect: server shutting down", "app shut down"]


async def test_a_stuck_disconnect_handler_is_cut_short_at_the_deadline() -> None:
    sio = Server(engine_config=EngineConfig(path="/socket.io/", shutdown_timeout=0.2))
    order: list[str] = []

    @sio.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        order.append("disconnect started")
        await anyio.sleep_forever()

    app = app_with_order(sio, order)
    life = Lifespan(app)
    async with anyio.create_task_group() as tg:
        tg.start_soon(life.run)
        await life.say("startup")
        await join_over_polling(app)
        assert (await life.say("shutdown"))["type"] == "lifespan.shutdown.complete"
    assert order == ["app started", "disconnect started", "app shut down"]


class FailingAdapter(InMemoryAdapter):
    async def close(self) -> None:
        raise RuntimeError("adapter could not close")


async def test_a_failing_shutdown_is_reported_as_a_shutdown_failure() -> None:
    sio = Server(adapter=FailingAdapter)
    life = Lifespan(sio.asgi_app())
    async with anyio.create_task_group() as tg:
        tg.start_soon(life.run)
        assert (await life.say("startup"))["type"] == "lifespan.startup.complete"
        reply = await life.say("shutdown")
    assert reply["type"] == "lifespan.shutdown.failed"
    assert "adapter could not close" in reply["message"]
