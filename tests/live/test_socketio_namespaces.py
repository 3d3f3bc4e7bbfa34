"""Dynamic namespaces in a live server: created once, and cleaned up when asked.

python-socketio's AsyncClient connects to a server in uvicorn; the server's
state is read from the test's thread (plain dict reads under the GIL).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import socketio

from realtime import ConnectionRefusedError, Server, Socket
from realtime.adapters.base import LocalNamespace
from realtime.adapters.memory import InMemoryAdapter
from realtime.socketio.namespace import ParentNamespace
from tests.servers import serve

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(30)]

STEP = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


async def until(condition: Any, limit: float = STEP) -> None:
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 - the state changes on the server's thread
            await anyio.sleep(0.01)


@contextlib.asynccontextmanager
async def client(
    url: str, namespace: str, auth: dict[str, Any] | None = None
) -> AsyncIterator[tuple[socketio.AsyncClient, list[Any]]]:
    """A client connected to ``namespace`` only; yields it and the ``news`` it received."""
    sio = socketio.AsyncClient(reconnection=False)
    news: list[Any] = []
    sio.on("news", news.append, namespace=namespace)
    await sio.connect(
        url, namespaces=[namespace], auth=auth, transports=["websocket"], wait_timeout=STEP
    )
    try:
        yield sio, news
    finally:
        await sio.disconnect()


def dynamic_server(**options: Any) -> tuple[Server, ParentNamespace, list[str]]:
    """A server with a ``/dyn-<n>`` parent; also returns the names whose adapter closed."""
    closed: list[str] = []

    class RecordingAdapter(InMemoryAdapter):
        async def close(self) -> None:
            closed.append(self.namespace.name)

    def adapter(namespace: LocalNamespace) -> InMemoryAdapter:
        return RecordingAdapter(namespace)

    sio = Server(adapter=adapter, **options)
    parent = sio.of(lambda name, auth: name.startswith("/dyn-"))

    @parent.on("shout")
    async def shout(socket: Socket, text: str) -> bool:
        # Through the server's registry, not the socket's own namespace object:
        # an orphaned child would miss the sockets of the registered one.
        await sio.of(socket.namespace.name).emit("news", text)
        return True

    return sio, parent, closed


async def test_concurrent_connects_to_a_new_dynamic_namespace_share_one_child() -> None:
    sio = Server()
    calls: list[str] = []
    both_in: dict[str, anyio.Event] = {}

    async def matcher(name: str, auth: dict[str, Any]) -> bool:
        # Runs on the server's thread. Hold every caller until two are inside,
        # so both connects are past the first lookup before either creates.
        calls.append(name)
        event = both_in.setdefault(name, anyio.Event())
        if calls.count(name) >= 2:
            event.set()
        with anyio.move_on_after(STEP):
            await event.wait()
        return name.startswith("/dyn-")

    parent = sio.of(matcher)

    @parent.on("shout")
    async def shout(socket: Socket, text: str) -> bool:
        await sio.of(socket.namespace.name).emit("news", text)
        return True

    with serve(sio.asgi_app()) as url:
        async with contextlib.AsyncExitStack() as stack:
            clients: list[tuple[socketio.AsyncClient, list[Any]]] = []

            async def join() -> None:
                clients.append(await stack.enter_async_context(client(url, "/dyn-1")))

            async with anyio.create_task_group() as tg:
                tg.start_soon(join)
                tg.start_soon(join)
            assert calls == ["/dyn-1", "/dyn-1"]
            assert list(parent.children) == ["/dyn-1"]
            child = sio.namespaces["/dyn-1"]
            assert parent.children["/dyn-1"] is child
            sids = {c.get_sid("/dyn-1") for c, _ in clients}
            assert set(child.sockets) == sids
            (first, first_news), (_, second_news) = clients
            assert await first.call("shout", "hi", namespace="/dyn-1", timeout=STEP) is True
            await until(lambda: first_news == ["hi"] and second_news == ["hi"])


async def test_empty_children_stay_by_default() -> None:
    sio, parent, closed = dynamic_server()
    with serve(sio.asgi_app()) as url:
        async with client(url, "/dyn-1"):
            child = sio.namespaces["/dyn-1"]
        await until(lambda: not child.sockets)
        assert sio.namespaces["/dyn-1"] is child
        assert parent.children["/dyn-1"] is child
        assert closed == []


async def test_the_last_socket_leaving_removes_the_child_and_closes_its_adapter() -> None:
    sio, parent, closed = dynamic_server(cleanup_empty_child_namespaces=True)
    with serve(sio.asgi_app()) as url:
        async with client(url, "/dyn-1"):
            child = sio.namespaces["/dyn-1"]
            async with client(url, "/dyn-1"):
                await until(lambda: len(child.sockets) == 2)
            await until(lambda: len(child.sockets) == 1)
            assert sio.namespaces["/dyn-1"] is child  # one socket left: it stays
            assert closed == []
        await until(lambda: "/dyn-1" not in sio.namespaces)
        assert parent.children == {}
        await until(lambda: closed == ["/dyn-1"])
        # The name works again, as a new child.
        async with client(url, "/dyn-1") as (again, news):
            assert sio.namespaces["/dyn-1"] is not child
            assert await again.call("shout", "back", namespace="/dyn-1", timeout=STEP) is True
            await until(lambda: news == ["back"])
        await until(lambda: "/dyn-1" not in sio.namespaces)
        assert closed == ["/dyn-1", "/dyn-1"]


async def test_a_refused_connect_leaves_no_child_behind() -> None:
    sio, parent, closed = dynamic_server(cleanup_empty_child_namespaces=True)

    @parent.use
    def only_friends(socket: Socket) -> None:
        if socket.handshake.auth.get("friend") is not True:
            raise ConnectionRefusedError("go away")

    with serve(sio.asgi_app()) as url:
        for name in ("/dyn-1", "/dyn-2", "/dyn-3"):
            with pytest.raises(socketio.exceptions.ConnectionError):
                async with client(url, name):
                    pass
        await until(lambda: closed == ["/dyn-1", "/dyn-2", "/dyn-3"])
        assert set(sio.namespaces) == {"/"}
        assert parent.children == {}
        async with client(url, "/dyn-1", auth={"friend": True}):
            assert "/dyn-1" in sio.namespaces


async def test_a_connect_in_progress_keeps_the_child_its_socket_joins() -> None:
    sio, parent, closed = dynamic_server(cleanup_empty_child_namespaces=True)

    arrived: list[str] = []

    @parent.use
    async def wait_for_the_room_to_empty(socket: Socket) -> None:
        # The late joiner's middleware runs until everyone else has left, so
        # the child is empty (but for this connect) when the last one leaves.
        if socket.handshake.auth.get("late"):
            arrived.append(socket.id)
            with anyio.fail_after(STEP):
                while socket.namespace.sockets:  # noqa: ASYNC110
                    await anyio.sleep(0.01)

    with serve(sio.asgi_app()) as url:
        async with client(url, "/dyn-1") as (early, _):
            child = sio.namespaces["/dyn-1"]
            late = socketio.AsyncClient(reconnection=False)
            news: list[Any] = []
            late.on("news", news.append, namespace="/dyn-1")
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: late.connect(
                        url,
                        namespaces=["/dyn-1"],
                        auth={"late": True},
                        transports=["websocket"],
                        wait_timeout=STEP,
                    )
                )
                await until(lambda: bool(arrived))
                await early.disconnect()
        try:
            assert sio.namespaces["/dyn-1"] is child
            assert set(child.sockets) == {late.get_sid("/dyn-1")}
            assert closed == []
            assert await late.call("shout", "still here", namespace="/dyn-1", timeout=STEP)
            await until(lambda: news == ["still here"])
        finally:
            await late.disconnect()
        await until(lambda: "/dyn-1" not in sio.namespaces)
        assert closed == ["/dyn-1"]
