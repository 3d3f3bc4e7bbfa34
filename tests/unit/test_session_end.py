"""How sockets, acks and sessions end, one path at a time, on real engine sessions.

The clients (:mod:`tests.unit.asgi_clients`) drive the engine's real ASGI entry
with in-memory receive/send, on asyncio and trio.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from realtime import AckTimeoutError, Server, SessionClosedError, Socket
from realtime.engineio import CloseReason, EngineConfig
from tests.unit.asgi_clients import PollingClient, WsClient, until

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]


def server(**engine: Any) -> Server:
    return Server(engine_config=EngineConfig(path="/socket.io/", **engine))


@pytest.fixture
async def sio() -> AsyncIterator[Server]:
    sio = server()
    async with sio.lifespan():
        yield sio


async def connected(sio: Server, namespace: str = "/") -> tuple[WsClient, Socket]:
    space = sio.of(namespace)
    client = await WsClient(sio).open()
    socket_id = await client.join(namespace)
    return client, space.sockets[socket_id]  # type: ignore[index]


# -- emit_with_ack and the socket's end -----------------------------------------------


async def test_emit_with_ack_on_a_disconnected_socket_raises_at_once(sio: Server) -> None:
    client, socket = await connected(sio)
    client.disconnect()
    await until(lambda: socket.id not in sio.main.sockets)
    # No timeout: without the check it would wait for an answer forever.
    with anyio.fail_after(5), pytest.raises(SessionClosedError):
        await socket.emit_with_ack("question")
    assert socket._acks == {}


@pytest.mark.parametrize("how", ["client close", "ping timeout", "namespace left"])
async def test_a_pending_emit_with_ack_raises_when_the_socket_goes(sio: Server, how: str) -> None:
    client, socket = await connected(sio, "/chat")
    failed = anyio.Event()

    async def ask() -> None:
        with pytest.raises(SessionClosedError):
            await socket.emit_with_ack("question")
        failed.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        assert await client.recv_message() == '2/chat,0["question"]'
        if how == "client close":
            client.disconnect()
        elif how == "ping timeout":
            sio.engine.sessions[client.sid].abort(CloseReason.PING_TIMEOUT)  # as the heartbeat does
        else:
            client.send("1/chat,")
        with anyio.fail_after(5):
            await failed.wait()
    assert socket._acks == {}


# -- socket.disconnect() inside the connect handler --------------------------------------


@pytest.mark.parametrize("close", [False, True])
async def test_disconnect_inside_the_connect_handler(sio: Server, close: bool) -> None:
    reasons: list[tuple[str, str]] = []

    @sio.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        await socket.emit("hello")
        await socket.disconnect(close=close)

    sio.on("disconnecting", lambda socket, reason: reasons.append(("disconnecting", reason)))
    sio.on("disconnect", lambda socket, reason: reasons.append(("disconnect", reason)))

    client = await WsClient(sio).open()
    session = sio.engine.sessions[client.sid]
    socket_id = await client.join()
    # CONNECT, what the handler emitted, then DISCONNECT.
    assert await client.recv_message() == '2["hello"]'
    assert await client.recv_message() == "1"
    await until(lambda: len(reasons) == 2)
    assert reasons == [
        ("disconnecting", "server namespace disconnect"),
        ("disconnect", "server namespace disconnect"),
    ]
    assert socket_id not in sio.main.sockets
    assert sio.main.adapter.rooms() == {}
    if close:
        await until(lambda: client.sid not in sio.connections)
        assert session.state.close_reason is CloseReason.FORCED_CLOSE
        assert client.sid not in sio.connections
    else:
        assert not session.closed
        assert sio.connections[client.sid].sockets == {}
    assert len(reasons) == 2


# -- broadcast with acknowledgements --------------------------------------------------------


def ack_id_of(packet: str) -> str:
    match = re.match(r"2(\d+)\[", packet)
    assert match is not None, packet
    return match[1]


@pytest.mark.parametrize("failure", ["volatile drop", "buffer full"])
async def test_broadcast_ack_counts_only_the_sockets_it_reached(failure: str) -> None:
    """A delivery that failed is not waited for, and leaves no callback behind."""
    sio = server(max_buffer_bytes=8192)
    async with sio.lifespan():
        answering = [await connected(sio) for _ in range(2)]
        stuck_client, stuck = await connected(sio)
        stuck_session = sio.engine.sessions[stuck_client.sid]
        # The stuck client stops reading: a write to it is under way and blocked.
        stuck_client.stall()
        await sio.to(stuck.id).emit("backlog", "x" * 6000)
        await until(lambda: stuck_session.writing)

        async def answer(client: WsClient, value: str) -> None:
            packet = await client.recv_message()
            client.send(f"3{ack_id_of(packet)}[{value!r}]".replace("'", '"'))

        operator = sio.timeout(5)
        payload = "y" * 100
        if failure == "volatile drop":
            operator = operator.volatile
        else:
            payload = "y" * 4000  # past the 8 KiB cap with the 6000 bytes in flight
        async with anyio.create_task_group() as tg:
            for i, (client, _) in enumerate(answering):
                tg.start_soon(answer, client, f"a{i}")
            with anyio.fail_after(5):
                answers = await operator.emit_with_ack("poll", payload)
        assert sorted(answers) == ["a0", "a1"]
        assert stuck._acks == {}
        if failure == "buffer full":
            assert stuck_session.state.close_reason is CloseReason.TRANSPORT_ERROR
        else:
            assert not stuck_session.closed
        stuck_client.resume()


async def test_broadcast_ack_needs_a_timeout(sio: Server) -> None:
    from realtime.exceptions import MissingTimeoutError

    client, socket = await connected(sio)
    await socket.join("room")
    for operator in (sio.main, sio.to("room"), socket.broadcast, sio.volatile):
        with pytest.raises(MissingTimeoutError):
            await operator.emit_with_ack("poll")
    assert socket._acks == {}
    assert sio.engine.sessions[client.sid].state.outbox_bytes == 0
    # With a timeout it goes out, and a client that does not answer is named.
    with pytest.raises(AckTimeoutError) as caught:
        await sio.timeout(0.05).emit_with_ack("poll")
    assert caught.value.missing == [socket.id]


# -- server shutdown -------------------------------------------------------------------------


async def test_shutdown_runs_every_disconnect_handler_within_shutdown_timeout() -> None:
    """Slow handlers finish; a stuck one is cancelled at ``shutdown_timeout``; none is lost."""
    sio = server(shutdown_timeout=1.0)
    entered: list[str] = []
    finished: list[str] = []

    @sio.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        entered.append(str(reason))
        kind = socket.handshake.auth.get("kind")
        if kind == "slow":
            await anyio.sleep(0.1)  # some work that completes
        elif kind == "stuck":
            await anyio.sleep_forever()
        finished.append(str(reason))

    with anyio.fail_after(10):
        async with sio.lifespan():
            for kind in ("fast", "slow", "stuck") * 4:
                client = await WsClient(sio).open()
                await client.join("/", {"kind": kind})
            for _ in range(3):
                polling = await PollingClient(sio).open()
                await polling.join({"kind": "slow"})
    assert entered == ["server shutting down"] * 15
    assert finished == ["server shutting down"] * 11  # the 4 stuck ones were cancelled
    assert sio.engine.sessions == {}
    assert sio.connections == {}
    assert sio.main.sockets == {}
    assert sio.main.adapter.rooms() == {}


# -- an upgrade in flight ----------------------------------------------------------------------


async def test_cancelled_upgrade_leaves_the_session_on_polling(sio: Server) -> None:
    """The upgrading WebSocket's task is cancelled after ``3probe``: polling carries on."""
    polling = await PollingClient(sio).open()
    socket_id = await polling.join()
    session = sio.engine.sessions[polling.sid]
    upgrade = await WsClient(sio, sid=polling.sid).open()
    upgrade.send_raw("2probe")
    assert await upgrade.recv() == "3probe"
    assert session.state.upgrading
    upgrade.task_scope.cancel()
    await upgrade.aclose()
    await sio.to(socket_id).emit("still-there")
    with anyio.fail_after(5):
        while True:
            packets = await polling.get()
            if '42["still-there"]' in packets:
                break
            assert packets == ["6"], packets  # a NOOP at most while the upgrade was held
    assert not session.closed
    assert session.transport == "polling"
