"""When a session is saved, with a store that outlives the process.

A store shared by a cluster must hold each live session as it is now, so a node
killed without warning loses nothing: the namespace saves at connect, at every
change of rooms or ``socket.data``, again before a record would expire, and at
disconnect. The store here is the one-process one declared durable and
recording each save; what is under test is when the namespace saves, which does
not depend on where the record goes. python-socketio's client drives a live
server (uvicorn).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
import socketio

from realtime import RecoveryOptions, Server, Socket
from realtime.adapters.base import LocalNamespace
from realtime.adapters.recovery import SessionRecord
from realtime.adapters.session_memory import SessionAwareAdapter
from tests.servers import serve

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(30)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


Saves = list[tuple[list[str], dict[str, Any], bool]]


def durable_store(saves: Saves) -> Callable[[LocalNamespace], SessionAwareAdapter]:
    class DurableStore(SessionAwareAdapter):
        durable_sessions = True

        async def save_session(self, record: SessionRecord, *, connected: bool) -> None:
            rooms = sorted(room for room in record.rooms if room != record.sid)
            saves.append((rooms, record.data, connected))
            await super().save_session(record, connected=connected)

    return DurableStore


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 - the state changes on the server's thread
            await anyio.sleep(0.01)


def make_server(saves: Saves, recovery: RecoveryOptions) -> Server:
    sio = Server(connection_state_recovery=recovery, adapter=durable_store(saves))

    @sio.on("connect")
    def connect(socket: Socket, auth: Any) -> None:
        socket.data["level"] = 1

    @sio.on("join")
    async def join(socket: Socket, room: str) -> bool:
        await socket.join(room)
        return True

    @sio.on("level")
    def level(socket: Socket, value: int) -> bool:
        socket.data["level"] = value
        return True

    @sio.on("nothing")
    def nothing(socket: Socket) -> bool:
        return True

    return sio


async def test_every_change_is_saved_while_connected_and_the_end_too() -> None:
    saves: Saves = []
    with serve(make_server(saves, RecoveryOptions()).asgi_app()) as url:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=["websocket"], wait_timeout=5)
        await until(lambda: len(saves) == 1)
        assert saves[-1] == ([], {"level": 1}, True)
        await client.call("join", "r", timeout=5)
        await until(lambda: len(saves) == 2)
        assert saves[-1] == (["r"], {"level": 1}, True)
        await client.call("nothing", timeout=5)  # no change, no save
        await client.call("level", 2, timeout=5)
        await until(lambda: len(saves) == 3)
        assert saves[-1] == (["r"], {"level": 2}, True)
        await client.eio.disconnect(abort=True)  # the connection is lost, not left
        await until(lambda: len(saves) == 4)
        assert saves[-1] == (["r"], {"level": 2}, False)


async def test_live_sessions_are_saved_again_before_they_would_expire() -> None:
    saves: Saves = []
    recovery = RecoveryOptions(max_disconnection_duration=1.0)
    with serve(make_server(saves, recovery).asgi_app()) as url:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(url, transports=["websocket"], wait_timeout=5)
        await until(lambda: len(saves) >= 3, limit=3.0)  # connect, then every 0.5 s
        assert all(connected for _, _, connected in saves)
        await client.disconnect()


async def test_what_middleware_emits_still_arrives_with_recovery_on() -> None:
    sio = Server(connection_state_recovery=True)

    @sio.use
    async def greet(socket: Socket) -> None:
        await socket.emit("early", "from middleware")

    with serve(sio.asgi_app()) as url:
        client = socketio.AsyncClient(reconnection=False)
        heard: list[Any] = []
        client.on("early", lambda *args: heard.append(list(args)))
        await client.connect(url, transports=["websocket"], wait_timeout=5)
        await until(lambda: bool(heard))
        assert heard == [["from middleware"]]
        await client.disconnect()


def test_recovery_with_an_adapter_that_keeps_no_sessions_is_refused_at_once() -> None:
    from realtime import InMemoryAdapter

    with pytest.raises(ValueError, match="InMemoryAdapter keeps no sessions"):
        Server(connection_state_recovery=True, adapter=InMemoryAdapter)
