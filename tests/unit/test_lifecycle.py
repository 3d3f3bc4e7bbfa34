"""Every session ends once, completely: a churn of thousands of sessions, in-process.

Sessions run through the engine's real ASGI entry with in-memory receive/send
(see :mod:`tests.unit.asgi_clients`) and are ended in every way a session can
end. Afterwards nothing is left: no engine session, connection, socket, room,
ack callback or task, the objects are collected, memory is back near where it
started, and each socket that connected saw its disconnect handler run exactly
once, with the reason that ended it.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from realtime import Server, SessionClosedError, Socket
from realtime.engineio import EngineConfig
from tests.unit.asgi_clients import PollingClient, WsClient, until

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

#: Connections per way of ending, per round; rounds after the first are measured.
PER_KIND = 45
ROUNDS = 3


@dataclass
class Record:
    """What the server's handlers saw."""

    #: Socket id -> how its client meant to end, once its connect handler returned.
    connected: dict[tuple[str, str], str] = field(default_factory=dict)
    #: (namespace, socket id, reason), one per disconnect handler call.
    disconnects: list[tuple[str, str, str]] = field(default_factory=list)
    #: Engine sid -> gate a slow connect handler or middleware waits on.
    gates: dict[str, anyio.Event] = field(default_factory=dict)
    middleware_done: set[str] = field(default_factory=set)
    #: Engine sid -> its main-namespace socket, without keeping it alive.
    socket_of: weakref.WeakValueDictionary[str, Socket] = field(
        default_factory=weakref.WeakValueDictionary
    )


def make_server(record: Record, **engine: Any) -> Server:
    config = EngineConfig(
        path="/socket.io/",
        # Short, so that "ping timeout" sessions end within a round. The ponging
        # clients answer at once, but on a loaded machine "at once" can take a
        # second: the timeout leaves room for that, so only silent clients time out.
        ping_interval=0.5,
        ping_timeout=3.0,
        max_buffer_bytes=64 * 1024,
        close_timeout=1.0,
        **engine,
    )
    sio = Server(engine_config=config, connect_timeout=60)

    @sio.use
    async def middleware(socket: Socket) -> None:
        if socket.handshake.auth.get("kind") == "slow-middleware":
            sid = socket.connection.session.sid
            gate = record.gates[sid] = anyio.Event()
            await gate.wait()
            record.middleware_done.add(sid)

    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        kind = auth.get("kind", "")
        await socket.join(["all", f"room-{kind}"])
        if socket.namespace.name == "/":
            record.socket_of[socket.connection.session.sid] = socket
        if kind.startswith("slow-connect"):
            gate = record.gates[socket.connection.session.sid] = anyio.Event()
            await gate.wait()
        record.connected[(socket.namespace.name, socket.id)] = kind

    def disconnect(socket: Socket, reason: str) -> None:
        record.disconnects.append((socket.namespace.name, socket.id, str(reason)))

    for namespace in (sio.main, sio.of("/chat")):
        namespace.on("connect", connect)
        namespace.on("disconnect", disconnect)
    return sio


#: The reason each way of ending must be reported with (None: no socket connected).
EXPECTED: dict[str, str | None] = {
    "ws-close": "transport close",
    "eio-close": "transport close",
    "ns-leave": "client namespace disconnect",
    "server-disconnect": "server namespace disconnect",
    "tcp-reset": "transport error",
    "ping-timeout": "ping timeout",
    "parse-error": "parse error",
    "eio-parse-error": "parse error",
    "overflow": "transport error",
    "cancel": "transport close",
    "slow-connect-close": "transport close",
    "slow-connect-timeout": "ping timeout",
    "slow-middleware": None,
    "upgrade-vanish": "ping timeout",
    "polling-abandoned": "ping timeout",
    "polling-vanish": "transport close",
    "polling-close": "transport close",
}

#: Kinds whose clients also join "/chat" (one connection, two sockets).
TWO_NAMESPACES = {"ws-close", "tcp-reset", "ping-timeout", "cancel", "parse-error"}
#: Kinds with a server emit_with_ack pending when the socket goes.
PENDING_ACK = {"ws-close", "tcp-reset", "ping-timeout", "cancel", "polling-vanish"}


class Churn:
    def __init__(self, sio: Server, record: Record) -> None:
        self.sio = sio
        self.record = record
        self.refs: list[weakref.ref[Any]] = []
        self.acks_failed = 0
        # Connects are let through a few dozen at a time, as a real server's
        # accept queue would: a burst of hundreds at once would starve the
        # clients' pongs and time out sessions that were meant to end otherwise.
        self.limit = anyio.CapacityLimiter(32)

    def track(self, sid: str) -> None:
        """Weak references to the session, its connection and its sockets."""
        session = self.sio.engine.sessions[sid]
        connection = self.sio.connections[sid]
        self.refs += [weakref.ref(session), weakref.ref(connection)]
        self.refs += [weakref.ref(s) for s in connection.sockets.values()]

    async def pending_ack(self, socket: Socket) -> None:
        with pytest.raises(SessionClosedError):
            await socket.emit_with_ack("question", timeout=None)
        self.acks_failed += 1

    async def ws(self, kind: str, tg: anyio.abc.TaskGroup) -> None:
        auth = {"kind": kind}
        if kind == "slow-middleware" or kind.startswith("slow-connect"):
            async with self.limit:
                client = await WsClient(self.sio, pong=kind not in PING_SILENT).open()
            if kind == "slow-middleware":
                await self.slow_middleware(client, auth)
            else:
                await self.slow_connect(client, kind, auth)
            return
        async with self.limit:
            client = await WsClient(self.sio, pong=kind not in PING_SILENT).open()
            await client.join("/", auth)
            if kind in TWO_NAMESPACES:
                await client.join("/chat", auth)
        session = self.sio.engine.sessions[client.sid]
        self.track(client.sid)
        socket = self.record.socket_of[client.sid]
        if kind in PENDING_ACK:
            tg.start_soon(self.pending_ack, socket)
            await until(lambda: bool(socket._acks))
        if kind == "ws-close":
            client.disconnect(1000)
        elif kind == "eio-close":
            client.send_raw("1")
        elif kind == "ns-leave":
            client.send("1")
            await until(lambda: not session.closed and socket.id not in self.sio.main.sockets)
            client.disconnect(1000)
        elif kind == "server-disconnect":
            await socket.disconnect(close=True)
        elif kind == "tcp-reset":
            client.broken = True
            await self.sio.to(socket.id).emit("into-the-void")
            await until(lambda: session.closed)
            client.disconnect(1006)
        elif kind == "parse-error":
            client.send("2{}")
        elif kind == "eio-parse-error":
            client.send_raw("0")
        elif kind == "overflow":
            client.stall()
            for _ in range(100):  # bounded: 64 KiB cap, 8 KiB messages
                if session.closed:
                    break
                await self.sio.to(socket.id).emit("big", "x" * 8192)
            assert session.closed
        elif kind == "cancel":
            client.task_scope.cancel()
        # "ping-timeout": the client just never answers a ping.
        await client.aclose()

    async def slow_connect(self, client: WsClient, kind: str, auth: dict[str, Any]) -> None:
        """The session ends while the connect handler runs: the socket leaves at once."""
        sio, record = self.sio, self.record
        client.send("0" + _json(auth))
        await until(lambda: client.sid in record.gates)
        self.track(client.sid)
        socket = record.socket_of[client.sid]
        assert socket.id in sio.main.sockets
        assert socket.rooms == {socket.id, "all", f"room-{kind}"}
        if kind == "slow-connect-close":
            client.disconnect(1000)
        # (slow-connect-timeout: its client never answers a ping.)
        await until(lambda: socket.id not in sio.main.sockets)
        rooms = sio.main.adapter.rooms()
        assert socket.id not in rooms
        assert socket.id not in rooms.get("all", ())
        assert socket.rooms == frozenset()
        # A broadcast meanwhile is not queued for it.
        await sio.emit("meanwhile")
        await sio.to(f"room-{kind}").emit("meanwhile")
        assert not socket._pending
        assert not any(d[1] == socket.id for d in record.disconnects)
        record.gates.pop(client.sid).set()
        await until(lambda: any(d[1] == socket.id for d in record.disconnects))
        await client.aclose()

    async def slow_middleware(self, client: WsClient, auth: dict[str, Any]) -> None:
        """The session ends while middleware runs: no socket joins, no handler runs."""
        sio, record = self.sio, self.record
        client.send("0" + _json(auth))
        await until(lambda: client.sid in record.gates)
        self.track(client.sid)
        client.disconnect(1000)
        await until(lambda: client.sid not in sio.connections)
        record.gates.pop(client.sid).set()
        await until(lambda: client.sid in record.middleware_done)
        assert client.sid not in record.socket_of
        record.middleware_done.discard(client.sid)
        await client.aclose()

    async def polling(self, kind: str, tg: anyio.abc.TaskGroup) -> None:
        async with self.limit:
            client = await PollingClient(self.sio).open()
            session = self.sio.engine.sessions[client.sid]
            await client.join({"kind": kind})
        self.track(client.sid)
        socket = self.record.socket_of[client.sid]
        if kind in PENDING_ACK:
            tg.start_soon(self.pending_ack, socket)
            await until(lambda: bool(socket._acks))
        if kind == "polling-close":
            await client.post("1")
        elif kind == "polling-vanish":
            await client.vanish_while_polling(session)
        elif kind == "upgrade-vanish":
            # The upgrade is under way (2probe answered) when the client disappears.
            upgrade = await WsClient(self.sio, sid=client.sid).open()
            upgrade.send_raw("2probe")
            assert await upgrade.recv() == "3probe"
            upgrade.disconnect(1006)
            await upgrade.aclose()
        # "polling-abandoned" (and the upgrade's polling side): no more requests.
        await until(lambda: client.sid not in self.sio.connections)

    async def round(self) -> None:
        kinds = [kind for kind in EXPECTED for _ in range(PER_KIND)]
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for kind in kinds:
                    scenario = self.polling if kind.startswith(("polling", "upgrade")) else self.ws
                    tg.start_soon(scenario, kind, tg)
            await until(self.nothing_left)
        self.check_disconnects()

    def nothing_left(self) -> bool:
        sio = self.sio
        return not (
            sio.engine.sessions
            or sio.connections
            or sio._unjoined
            or any(ns.sockets or ns.adapter.rooms() for ns in sio.namespaces.values())
        )

    def check_disconnects(self) -> None:
        record = self.record
        count = Counter((ns, sid) for ns, sid, _ in record.disconnects)
        assert set(count) == set(record.connected), "a connected socket had no disconnect"
        assert set(count.values()) == {1}, "a disconnect handler ran twice"
        wrong = [
            (ns, record.connected[(ns, sid)], reason)
            for ns, sid, reason in record.disconnects
            if reason != EXPECTED[record.connected[(ns, sid)]]
        ]
        assert wrong == []
        kinds = Counter(record.connected.values())
        for kind, reason in EXPECTED.items():
            per_kind = PER_KIND * (2 if kind in TWO_NAMESPACES else 1)
            assert kinds[kind] == (0 if reason is None else per_kind), kind
        record.connected.clear()
        record.disconnects.clear()
        assert not record.gates
        assert len(record.socket_of) == 0

    async def check_collected(self) -> None:
        """Every session, connection and socket of the round is collected.

        Waited for, not checked once: the heartbeat's loop variable holds the
        last session it looked at until its next tick.
        """

        def all_dead() -> bool:
            gc.collect()
            return all(ref() is None for ref in self.refs)

        try:
            await until(all_dead, 2.0)
        except TimeoutError:
            alive = Counter(type(obj).__name__ for obj in (ref() for ref in self.refs) if obj)
            raise AssertionError(f"not collected, of {len(self.refs)}: {alive}") from None
        self.refs.clear()


PING_SILENT = {"ping-timeout", "slow-connect-timeout"}


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def task_count() -> int:
    return len(anyio.get_running_tasks())


async def test_churn_every_way_a_session_ends_leaves_nothing() -> None:
    record = Record()
    sio = make_server(record)
    tracemalloc.start()
    try:
        async with sio.lifespan():
            churn = Churn(sio, record)
            baseline_tasks = task_count()
            await churn.round()  # warm-up: pools and caches reach their size
            await churn.check_collected()
            gc.collect()
            start, _ = tracemalloc.get_traced_memory()
            for _ in range(ROUNDS - 1):
                await churn.round()
                await churn.check_collected()
            assert churn.acks_failed == ROUNDS * PER_KIND * len(PENDING_ACK)
            # No task left but the server's own and the bounded pool of idle workers.
            idle = sio.engine.workers._idle
            await until(lambda: task_count() == baseline_tasks + len(idle))
            assert len(idle) <= 1024
            gc.collect()
            end, peak = tracemalloc.get_traced_memory()
            # Back near where it started: a round allocates megabytes
            # (peak - start); what stays must be a small part of it.
            assert end - start < max(1_000_000, (peak - start) // 10), (start, end, peak)

            # Server shutdown with sessions open: WebSocket and polling clients,
            # some in two namespaces, a connect handler still running for some.
            shutdown = await open_for_shutdown(sio, record)
        count = Counter((ns, sid) for ns, sid, _ in record.disconnects)
        assert set(count) == set(record.connected)
        assert set(count.values()) == {1}
        assert len(count) == shutdown
        assert {reason for _, _, reason in record.disconnects} == {"server shutting down"}
        assert churn.nothing_left()
        await churn.check_collected()
    finally:
        tracemalloc.stop()


async def open_for_shutdown(sio: Server, record: Record) -> int:
    """Open sessions that are still there when the lifespan exits; return the sockets."""
    churn = Churn(sio, record)
    sockets = 0
    clients: list[WsClient] = []
    for i in range(60):
        client = await WsClient(sio).open()
        clients.append(client)
        await client.join("/", {"kind": "shutdown"})
        sockets += 1
        if i % 2:
            await client.join("/chat", {"kind": "shutdown"})
            sockets += 1
        churn.track(client.sid)
    for _ in range(20):
        polling = await PollingClient(sio).open()
        await polling.join({"kind": "shutdown"})
        sockets += 1
        churn.track(polling.sid)
    # A connect handler still running at shutdown: its socket connects never.
    slow = await WsClient(sio).open()
    slow.send("0" + _json({"kind": "slow-connect-shutdown"}))
    await until(lambda: slow.sid in record.gates)
    record.gates.pop(slow.sid)  # never set: shutdown cancels the handler
    return sockets
