"""The Socket.IO server in-process, on real engine sessions over in-memory ASGI."""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import anyio
import pytest
from anyio import wait_all_tasks_blocked
from starlette.types import Message

from realtime import (
    AckTimeoutError,
    ConnectionRefusedError,
    DecoderLimits,
    DisconnectReason,
    ReservedEventError,
    Server,
    SessionClosedError,
    Socket,
)
from realtime.engineio import CloseReason, EngineSession

pytestmark = pytest.mark.anyio


async def eventually(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until ``condition()`` holds, checking every few milliseconds; fail after ``seconds``."""
    with anyio.fail_after(seconds):
        for _ in itertools.count():
            if condition():
                return
            await anyio.sleep(0.002)


class Peer:
    """A client on a real engine session, over the engine's real WebSocket path.

    The engine's ASGI app runs in the server's task group with in-memory
    ``receive``/``send`` instead of a network, so the session, its writer and
    its reader are the real ones; :meth:`stall` makes the client stop reading.
    """

    def __init__(self, sio: Server) -> None:
        self.sio = sio
        self.sent: list[str | bytes] = []
        self._read = 0
        self._gate: anyio.Event | None = None
        self._to_server, self._inbox = anyio.create_memory_object_stream[Message](1000)
        self.session: EngineSession

    async def _send(self, message: Message) -> None:
        while self._gate is not None:
            await self._gate.wait()
        if message["type"] == "websocket.send":
            data = message.get("text")
            self.sent.append(data if data is not None else message["bytes"])

    async def open(self) -> Peer:
        scope = {
            "type": "websocket",
            "path": "/socket.io/",
            "root_path": "",
            "scheme": "ws",
            "query_string": b"EIO=4&room=blue&transport=websocket",
            "headers": [
                (b"host", b"testserver"),
                (b"origin", b"http://testserver"),
                (b"x-token", b"t"),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.sio.engine.start_soon(self.sio.engine, scope, self._inbox.receive, self._send)
        await self._to_server.send({"type": "websocket.connect"})
        await eventually(lambda: bool(self.sent))
        opening = self.sent.pop(0)  # the Engine.IO OPEN packet
        assert isinstance(opening, str)
        self.session = self.sio.engine.sessions[json.loads(opening[1:])["sid"]]
        return self

    @property
    def close_reason(self) -> CloseReason | None:
        return self.session.state.close_reason

    async def send(self, *messages: str | bytes) -> None:
        for message in messages:
            if isinstance(message, str):
                await self._to_server.send({"type": "websocket.receive", "text": "4" + message})
            else:
                await self._to_server.send({"type": "websocket.receive", "bytes": message})
        await wait_all_tasks_blocked()

    async def drop(self, reason: CloseReason) -> None:
        """End the session the way ``reason`` happens for real."""
        if reason is CloseReason.TRANSPORT_CLOSE:
            await self._to_server.send({"type": "websocket.disconnect", "code": 1000})
        elif reason is CloseReason.SERVER_SHUTDOWN:
            await self._to_server.send({"type": "websocket.disconnect", "code": 1012})
        else:
            self.session.abort(reason)  # as the heartbeat or a protocol error does
        await wait_all_tasks_blocked()

    def stall(self) -> None:
        """Stop taking frames, like a client whose TCP window is full."""
        self._gate = anyio.Event()

    async def resume(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()
        await wait_all_tasks_blocked()

    async def take(self) -> list[str | bytes]:
        """Socket.IO messages written since the last take (Engine.IO "4" prefix removed)."""
        await wait_all_tasks_blocked()
        new = self.sent[self._read :]
        self._read = len(self.sent)
        return [
            p[1:] if isinstance(p, str) else p for p in new if not isinstance(p, str) or p[0] == "4"
        ]

    async def join(self, namespace: str = "/", auth: dict[str, Any] | None = None) -> str:
        prefix = "" if namespace == "/" else namespace + ","
        await self.send("0" + prefix + (json.dumps(auth) if auth else ""))
        reply = (await self.take())[0]
        assert isinstance(reply, str)
        assert reply.startswith("0" + prefix), reply
        sid: str = json.loads(reply[1 + len(prefix) :])["sid"]
        return sid


@pytest.fixture
async def sio() -> AsyncIterator[Server]:
    server = Server(connect_timeout=5)
    async with server.lifespan():
        yield server


async def peer(sio: Server, name: str = "") -> Peer:
    return await Peer(sio).open()


async def test_connect_reply_comes_before_what_the_connect_handler_emits(sio: Server) -> None:
    seen: dict[str, Any] = {}

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        seen["auth"] = auth
        seen["handshake"] = socket.handshake
        await socket.emit("welcome", auth["token"])
        await socket.join("lobby")
        await sio.to("lobby").emit("lobby", 1)

    p = await peer(sio)
    await p.send('0{"token":"123"}')
    reply, *rest = await p.take()
    assert isinstance(reply, str)
    sid = json.loads(reply[1:])["sid"]
    assert reply == f'0{{"sid":"{sid}"}}'
    assert len(sid) == 20
    assert rest == ['2["welcome","123"]', '2["lobby",1]']
    handshake = seen["handshake"]
    assert seen["auth"] == {"token": "123"} == handshake.auth
    assert handshake.headers["x-token"] == "t"
    assert handshake.query["room"] == "blue"
    assert handshake.address == "127.0.0.1"
    assert abs(handshake.time - time.time()) < 60
    assert handshake.secure is False
    assert handshake.xdomain is True
    assert handshake.url.endswith("transport=websocket")


async def test_middleware_and_connect_handler_can_refuse(sio: Server) -> None:
    @sio.use
    async def gate(socket: Socket) -> None:
        if socket.handshake.auth.get("token") != "ok":
            raise ConnectionRefusedError("not authorized", {"code": 42})

    admin = sio.of("/admin")
    admin.on("connect", lambda socket, auth: False)

    p = await peer(sio)
    await p.send('0{"token":"bad"}')
    assert await p.take() == ['4{"message":"not authorized","data":{"code":42}}']
    await p.send("0/admin,")
    assert await p.take() == ['4/admin,{"message":"Connection rejected by server"}']
    assert not sio.main.sockets
    assert not admin.sockets
    await p.join("/", {"token": "ok"})
    assert len(sio.main.sockets) == 1


async def test_unknown_namespace(sio: Server) -> None:
    p = await peer(sio)
    await p.send("0/random")
    assert await p.take() == ['4/random,{"message":"Invalid namespace"}']
    assert not p.close_reason is not None


async def test_handler_return_value_is_the_ack(sio: Server) -> None:
    sio.on("pair", lambda socket, a: (a, a * 2))
    sio.on("one", lambda socket: [1, 2])
    sio.on("none", lambda socket: None)
    p = await peer(sio)
    await p.join()
    await p.send('27["pair",3]', '28["one"]', '29["none"]', '2["pair",5]')
    assert sorted(await p.take()) == ["37[3,6]", "38[[1,2]]", "39[]"]


async def test_handler_exception_is_logged_and_connection_lives_on(
    sio: Server, caplog: pytest.LogCaptureFixture
) -> None:
    @sio.on("boom")
    async def boom(socket: Socket) -> None:
        raise RuntimeError("kaput")

    sio.on("ping", lambda socket: "pong")
    p = await peer(sio)
    socket_id = await p.join()
    with caplog.at_level(logging.ERROR, logger="realtime.socketio"):
        await p.send('21["boom"]')
    record = next(r for r in caplog.records if "boom" in r.getMessage())
    assert socket_id in record.getMessage()
    assert "namespace /" in record.getMessage()
    assert record.exc_info is not None
    await p.send('22["ping"]')
    assert await p.take() == ['32["pong"]']
    assert not p.close_reason is not None


async def test_reserved_events(sio: Server) -> None:
    reasons: list[str] = []
    sio.on("disconnect", lambda socket, reason: reasons.append(reason))
    p = await peer(sio)
    await p.join()
    socket = next(iter(sio.main.sockets.values()))
    for name in ("connect", "connect_error", "disconnect", "disconnecting", "newListener"):
        with pytest.raises(ReservedEventError):
            await socket.emit(name)
        with pytest.raises(ReservedEventError):
            await sio.emit(name)
    assert reasons == []
    # A client cannot trigger lifecycle handlers: the packet is refused as
    # malformed, and the session's end is the one disconnect the handler sees.
    await p.send('2["disconnect","fake"]')
    assert p.close_reason is CloseReason.PARSE_ERROR
    assert reasons == ["parse error"]


@pytest.mark.parametrize(
    "messages",
    [["4abc"], ["2{}"], ['2abc["x"]'], ["2[" * 40 + "]" * 40], ['51-["x"]', '2["y"]'], [b"\x01"]],
)
async def test_malformed_packet_closes_with_parse_error_and_nothing_else(
    sio: Server, messages: list[str | bytes]
) -> None:
    p = await peer(sio)
    await p.join()
    await p.send(*messages)
    assert p.close_reason is CloseReason.PARSE_ERROR
    assert await p.take() == []


async def test_first_packet_must_be_connect(sio: Server) -> None:
    p = await peer(sio)
    await p.send('2["hello"]')
    assert p.close_reason is not None


async def test_connect_timeout_closes_idle_sessions() -> None:
    sio = Server(connect_timeout=0.5)
    async with sio.lifespan():
        idle, busy = await peer(sio, "idle"), await peer(sio, "busy")
        await busy.join()
        await eventually(lambda: idle.close_reason is not None)
        assert idle.close_reason is CloseReason.FORCED_CLOSE
        assert busy.close_reason is None


async def test_disconnect_reasons_handlers_and_rooms(sio: Server) -> None:
    events: list[tuple[str, str, frozenset[str]]] = []

    @sio.on("connect")
    async def connect(socket: Socket, auth: Any) -> None:
        await socket.join(["a", "b"])

    @sio.on("disconnecting")
    def disconnecting(socket: Socket, reason: str) -> None:
        events.append(("disconnecting", reason, socket.rooms))

    @sio.on("disconnect")
    def disconnect(socket: Socket, reason: DisconnectReason) -> None:
        events.append(("disconnect", reason, socket.rooms))

    p1, p2, p3 = await peer(sio, "1"), await peer(sio, "2"), await peer(sio, "3")
    s1, s2, s3 = await p1.join(), await p2.join(), await p3.join()
    assert set(sio.main.adapter.rooms()) == {"a", "b", s1, s2, s3}

    await p1.send("1")
    assert events == [
        ("disconnecting", "client namespace disconnect", frozenset({"a", "b", s1})),
        ("disconnect", "client namespace disconnect", frozenset()),
    ]
    assert not p1.close_reason is not None  # the engine connection outlives the namespace

    events.clear()
    await sio.main.sockets[cast(Any, s2)].disconnect()
    assert await p2.take() == ["1"]
    assert [e[:2] for e in events] == [
        ("disconnecting", "server namespace disconnect"),
        ("disconnect", "server namespace disconnect"),
    ]

    events.clear()
    await p3.drop(CloseReason.PING_TIMEOUT)
    assert [e[1] for e in events] == ["ping timeout", "ping timeout"]
    assert sio.main.adapter.rooms() == {}
    assert sio.main.sockets == {}


async def test_disconnect_close_ends_every_namespace(sio: Server) -> None:
    reasons: list[str] = []
    chat = sio.of("/chat")
    chat.on("disconnect", lambda socket, reason: reasons.append(reason))
    p = await peer(sio)
    await p.join()
    chat_id = await p.join("/chat")
    await chat.sockets[cast(Any, chat_id)].disconnect(close=True)
    assert sorted(await p.take()) == ["1", "1/chat,"]
    assert p.close_reason is CloseReason.FORCED_CLOSE
    assert reasons == ["server namespace disconnect"]


async def test_broadcast_selectors_and_one_encoding(sio: Server) -> None:
    peers = [await peer(sio, f"e{i}") for i in range(4)]
    ids = [await p.join() for p in peers]
    sockets = [sio.main.sockets[cast(Any, i)] for i in ids]
    await sockets[0].join("red")
    await sockets[1].join(["red", "vip"])
    await sockets[2].join("blue")

    async def got() -> list[list[str | bytes]]:
        return [await p.take() for p in peers]

    await sio.emit("all", b"\x00")
    await wait_all_tasks_blocked()
    frames = [p.sent[-2:] for p in peers]
    # One encoding: every recipient is written the very same frame objects.
    assert all(f[0] is frames[0][0] and f[1] is frames[0][1] for f in frames)
    assert await got() == [['51-["all",{"_placeholder":true,"num":0}]', b"\x00"]] * 4

    await sio.to("red").except_("vip").emit("x")
    assert await got() == [['2["x"]'], [], [], []]
    await sio.to(["red", "blue"]).emit("y")
    assert await got() == [['2["y"]'], ['2["y"]'], ['2["y"]'], []]
    await sockets[0].to("red").emit("z")
    assert await got() == [[], ['2["z"]'], [], []]
    await sockets[0].broadcast.emit("w")
    assert await got() == [[], ['2["w"]'], ['2["w"]'], ['2["w"]']]
    await sio.except_(ids[3]).to("blue").send("m")
    assert await got() == [[], [], ['2["message","m"]'], []]

    # A client that is not taking frames (its writer is stuck) misses volatile packets.
    peers[1].stall()
    await sio.to(ids[1]).emit("backlog")
    await wait_all_tasks_blocked()
    await sio.volatile.emit("v")
    await sockets[0].volatile.emit("only-me")
    await peers[1].resume()
    assert await got() == [['2["v"]', '2["only-me"]'], ['2["backlog"]'], ['2["v"]'], ['2["v"]']]


async def test_broadcast_ack_aggregates_and_names_the_silent(sio: Server) -> None:
    p1, p2 = await peer(sio, "1"), await peer(sio, "2")
    s1, s2 = await p1.join(), await p2.join()

    async def answer_first() -> None:
        await wait_all_tasks_blocked()
        (packet,) = await p1.take()
        assert isinstance(packet, str)
        match = re.fullmatch(r'2(\d+)\["poll",1\]', packet)
        assert match is not None
        await p1.send(f'3{match[1]}["yes"]')

    async with anyio.create_task_group() as tg:
        tg.start_soon(answer_first)
        with pytest.raises(AckTimeoutError) as caught:
            await sio.timeout(0.1).emit_with_ack("poll", 1)
    assert caught.value.responses == ["yes"]
    assert caught.value.missing == [s2]
    assert s2 in str(caught.value)
    assert s1 not in str(caught.value)

    await p2.take()  # the unanswered question

    async def answer_both() -> None:
        await wait_all_tasks_blocked()
        for p, value in ((p1, "a"), (p2, "b")):
            (packet,) = await p.take()
            assert isinstance(packet, str)
            ack_id = re.match(r"2(\d+)", packet)
            assert ack_id is not None
            await p.send(f'3{ack_id[1]}["{value}"]')

    async with anyio.create_task_group() as tg:
        tg.start_soon(answer_both)
        assert sorted(await sio.timeout(1).emit_with_ack("poll", 1)) == ["a", "b"]


async def test_socket_emit_with_ack(sio: Server) -> None:
    p = await peer(sio)
    await p.join()
    socket = next(iter(sio.main.sockets.values()))

    async def answer() -> None:
        await wait_all_tasks_blocked()
        (packet,) = await p.take()
        assert packet == '20["q",1]'
        await p.send('30["x",2]')

    async with anyio.create_task_group() as tg:
        tg.start_soon(answer)
        assert await socket.emit_with_ack("q", 1, timeout=1) == ("x", 2)
    with pytest.raises(AckTimeoutError):
        await socket.emit_with_ack("q", 2, timeout=0.05)

    async def leave() -> None:
        await wait_all_tasks_blocked()
        await p.drop(CloseReason.TRANSPORT_CLOSE)

    async with anyio.create_task_group() as tg:
        tg.start_soon(leave)
        with pytest.raises(SessionClosedError):
            await socket.emit_with_ack("q", 3)


async def test_fetch_join_leave_disconnect_sockets(sio: Server) -> None:
    peers = [await peer(sio, f"e{i}") for i in range(3)]
    ids = [await p.join() for p in peers]
    await sio.main.sockets[cast(Any, ids[0])].join("red")
    await sio.to("red").sockets_join(["green", "blue"])
    assert sio.main.sockets[cast(Any, ids[0])].rooms == {ids[0], "red", "green", "blue"}
    await sio.except_("red").sockets_join("blue")
    found = await sio.to("blue").fetch_sockets()
    assert sorted(s.id for s in found) == sorted(ids)
    await sio.to("red").sockets_leave("blue")
    assert sorted(s.id for s in await sio.to("blue").fetch_sockets()) == sorted(ids[1:])
    await sio.to("blue").disconnect_sockets()
    assert [(await p.take())[-1] for p in peers[1:]] == ["1", "1"]
    assert list(sio.main.sockets) == [ids[0]]
    await sio.disconnect_sockets(close=True)
    assert peers[0].close_reason is CloseReason.FORCED_CLOSE


async def test_dynamic_namespaces(sio: Server) -> None:
    by_regex = sio.of(re.compile(r"/team-\d+"))
    by_regex.on("where", lambda socket: socket.namespace.name)

    async def allowed(name: str, auth: dict[str, Any]) -> bool:
        return name.startswith("/user-") and auth.get("ok") is True

    by_callable = sio.of(allowed)
    by_callable.on("where", lambda socket: socket.namespace.name)

    p = await peer(sio)
    await p.join("/team-7")
    await p.send('2/team-7,1["where"]')
    assert await p.take() == ['3/team-7,1["/team-7"]']
    await p.send("0/team-x,")
    assert await p.take() == ['4/team-x,{"message":"Invalid namespace"}']
    await p.send('0/user-1,{"ok":false}')
    assert await p.take() == ['4/user-1,{"message":"Invalid namespace"}']
    await p.join("/user-2", {"ok": True})
    assert set(by_callable.children) == {"/user-2"}
    await by_regex.emit("hi")
    assert await p.take() == ['2/team-7,["hi"]']


async def test_binary_in_and_out(sio: Server) -> None:
    sio.on("up", lambda socket, data, meta: [data[::-1], meta])
    p = await peer(sio)
    await p.join()
    await p.send('51-3["up",{"_placeholder":true,"num":0},{"n":1}]', b"\x01\x02")
    assert await p.take() == ['61-3[[{"_placeholder":true,"num":0},{"n":1}]]', b"\x02\x01"]


async def test_socket_handlers_catch_alls_and_precedence(sio: Server) -> None:
    sio.on("ev", lambda socket, x: "namespace")
    p = await peer(sio)
    await p.join()
    socket = next(iter(sio.main.sockets.values()))
    incoming: list[Any] = []
    outgoing: list[Any] = []
    socket.on_any(lambda event, *args: incoming.append((event, *args)))
    socket.on_any_outgoing(lambda event, *args: outgoing.append((event, *args)))
    await p.send('21["ev",1]')
    socket.on("ev", lambda x: "socket")
    await p.send('22["ev",2]')
    socket.off("ev")
    await p.send('23["ev",3]')
    assert await p.take() == ['31["namespace"]', '32["socket"]', '33["namespace"]']
    assert incoming == [("ev", 1), ("ev", 2), ("ev", 3)]
    await socket.emit("out", 9)
    assert outgoing == [("out", 9)]


async def test_shutdown_disconnects_with_server_shutting_down() -> None:
    sio = Server()
    reasons: list[str] = []
    sio.on("disconnect", lambda socket, reason: reasons.append(reason))
    async with sio.lifespan():
        p = await peer(sio)
        await p.join()
        await p.drop(CloseReason.SERVER_SHUTDOWN)
    assert reasons == ["server shutting down"]


async def test_decoder_limits_are_configurable() -> None:
    sio = Server(limits=DecoderLimits(max_attachments=1))
    async with sio.lifespan():
        p = await peer(sio)
        await p.join()
        await p.send('52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
        assert p.close_reason is CloseReason.PARSE_ERROR


async def test_no_ack_leaves_the_event_unacknowledged(sio: Server) -> None:
    from realtime import NO_ACK

    sio.on("maybe", lambda socket, n: n if n > 1 else NO_ACK)
    p = await peer(sio)
    await p.join()
    await p.send('21["maybe",1]', '22["maybe",2]')
    assert await p.take() == ["32[2]"]
