"""Inbound is bounded: ``Server(max_inflight_events=...)`` live, on uvicorn and hypercorn-trio.

At most that many events of one client run or wait at once. Past it the
server stops reading that client: a WebSocket is left unread, so TCP pushes
back on the client, and a polling POST is answered only once its events are
taken. Meanwhile the heartbeat does not hold the client's unread pong against
it. A client that floods events holds up no one else's round trips or
heartbeats.

The server runs in a thread of this process: the tests read its state (the
handlers' counters, the session) from the test's thread, and release blocked
handlers with another client's event, never by sleeping.
"""

from __future__ import annotations

import contextlib
import json
import socket as sockets
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
import socketio
from anyio.streams.buffered import BufferedByteReceiveStream
from starlette.types import ASGIApp, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from realtime import Server, Socket
from realtime.engineio import EngineSession
from tests.live.engine_servers import SERVERS, serve_hypercorn_trio
from tests.servers import ROOT, serve

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(60)]

#: The bound under test, and how many events a client sends past it.
LIMIT = 4
EVENTS = 200
#: Upper bound for one wait; the tests finish far sooner.
STEP = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the clients run on asyncio; the server runs on its own loop


@dataclass
class Probe:
    """What the server's handlers saw, written on the server's thread."""

    running: int = 0
    max_running: int = 0
    started: list[int] = field(default_factory=list)
    start_times: list[float] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    released: bool = False
    gate: anyio.Event | None = None
    flood_running: int = 0
    flood_max: int = 0
    flood_done: int = 0
    #: ``websocket.receive`` messages the app took from the ASGI server, by client port.
    pulled: dict[int, int] = field(default_factory=dict)
    #: Why each engine session's main-namespace socket left.
    reasons: dict[str, str] = field(default_factory=dict)


def counting(app: ASGIApp, pulled: dict[int, int]) -> ASGIApp:
    """Count the WebSocket messages the app reads: what it leaves unread stays with TCP."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await app(scope, receive, send)
            return
        port: int = scope["client"][1]
        pulled[port] = 0

        async def counted() -> Any:
            message = await receive()
            if message["type"] == "websocket.receive":
                pulled[port] += 1
            return message

        await app(scope, counted, send)

    return wrapped


def make_app(probe: Probe, **options: Any) -> tuple[Server, ASGIApp]:
    sio = Server(**options)

    @sio.on("work")
    async def work(socket: Socket, i: int, pad: str = "") -> None:
        """Blocks until a ``release`` event, counting how many run at once."""
        probe.started.append(i)
        probe.start_times.append(time.monotonic())
        probe.running += 1
        probe.max_running = max(probe.max_running, probe.running)
        try:
            if not probe.released:
                if probe.gate is None:
                    probe.gate = anyio.Event()
                await probe.gate.wait()
        finally:
            probe.running -= 1
        probe.done.append(i)

    @sio.on("release")
    def release(socket: Socket) -> bool:
        probe.released = True
        if probe.gate is not None:
            probe.gate.set()
        return True

    @sio.on("rt")
    async def round_trip(socket: Socket, i: int) -> int:
        await anyio.lowlevel.checkpoint()
        return i

    @sio.on("flood")
    async def flood(socket: Socket, i: int) -> None:
        """A little async work per event (a millisecond's I/O): slower than a flood comes."""
        probe.flood_running += 1
        probe.flood_max = max(probe.flood_max, probe.flood_running)
        try:
            await anyio.sleep(0.001)
        finally:
            probe.flood_running -= 1
        probe.flood_done += 1

    @sio.on("disconnect")
    def disconnect(socket: Socket, reason: str) -> None:
        probe.reasons[socket.connection.session.sid] = str(reason)

    return sio, counting(sio.asgi_app(), probe.pulled)


@dataclass
class Live:
    url: str
    sio: Server
    probe: Probe
    kind: str

    def session(self, sid: str) -> EngineSession:
        return self.sio.engine.sessions[sid]


@pytest.fixture(params=SERVERS)
def start(request: pytest.FixtureRequest) -> Iterator[Callable[..., Live]]:
    """Start a server with the given ``Server`` options, stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start_(**options: Any) -> Live:
            probe = Probe()
            sio, app = make_app(probe, **options)
            runner = serve if request.param == "uvicorn" else serve_hypercorn_trio
            url = stack.enter_context(runner(app))
            return Live(url, sio, probe, request.param)

        yield start_


async def until(condition: Callable[[], bool], limit: float = STEP) -> None:
    """Wait for state another thread (the server's) changes."""
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 - no event can cross the threads
            await anyio.sleep(0.005)


def assert_arrival_order(started: list[int], kind: str) -> None:
    """Every event ran once, started in the order it arrived.

    asyncio runs woken tasks first come, first served, so the order is exact.
    trio runs the tasks woken in one tick in either order, on purpose; there an
    event can only be overtaken by one that was waiting beside it for a slot.
    """
    assert sorted(started) == list(range(len(started)))
    if kind == "uvicorn":
        assert started == sorted(started)
    else:
        assert all(abs(position - i) < LIMIT for position, i in enumerate(started)), started


class Raw:
    """A Socket.IO client on a bare WebSocket: it sends exactly what the test says.

    Its pump answers pings and collects acks.
    """

    def __init__(self, ws: ClientConnection, sid: str) -> None:
        self.ws = ws
        self.sid = sid
        self.pings = 0
        self._next_id = 0
        self._acks: dict[int, Any] = {}
        self._arrived: dict[int, anyio.Event] = {}

    @property
    def port(self) -> int:
        port: int = self.ws.local_address[1]
        return port

    async def emit(self, event: str, *args: Any) -> None:
        await self.ws.send("42" + json.dumps([event, *args]))

    async def call(self, event: str, *args: Any) -> Any:
        ack_id = self._next_id
        self._next_id += 1
        arrived = self._arrived[ack_id] = anyio.Event()
        await self.ws.send(f"42{ack_id}" + json.dumps([event, *args]))
        with anyio.fail_after(STEP):
            await arrived.wait()
        return self._acks.pop(ack_id)

    async def pump(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in self.ws:
                if frame == "2":
                    self.pings += 1
                    await self.ws.send("3")
                elif isinstance(frame, str) and frame.startswith("43"):
                    head, _, body = frame[2:].partition("[")
                    ack_id = int(head)
                    self._acks[ack_id] = json.loads("[" + body)
                    self._arrived.pop(ack_id).set()


@contextlib.asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[Raw]:
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with connect(ws_url, max_size=None, open_timeout=STEP, compression=None) as ws:
        with anyio.fail_after(STEP):
            opened = await ws.recv()
            assert isinstance(opened, str), opened
            assert opened.startswith("0"), opened
            await ws.send("40")
            joined = await ws.recv()
            assert isinstance(joined, str), joined
            assert joined.startswith("40"), joined
        raw = Raw(ws, json.loads(opened[1:])["sid"])
        async with anyio.create_task_group() as tg:
            tg.start_soon(raw.pump)
            try:
                yield raw
            finally:
                tg.cancel_scope.cancel()


def events_payload(indices: Iterable[int]) -> str:
    """Many ``work`` events in one polling payload."""
    return "\x1e".join("42" + json.dumps(["work", i]) for i in indices)


async def polling_join(http: httpx.AsyncClient) -> str:
    opened = await http.get("", params={"EIO": "4", "transport": "polling"})
    assert opened.text.startswith("0"), opened.text
    sid: str = json.loads(opened.text[1:])["sid"]
    assert (await http.post("", params=poll_query(sid), content="40")).text == "ok"
    joined = await http.get("", params=poll_query(sid))
    assert joined.text.startswith("40"), joined.text
    return sid


def poll_query(sid: str) -> dict[str, str]:
    return {"EIO": "4", "transport": "polling", "sid": sid}


# -- the bound ------------------------------------------------------------------------


async def test_websocket_bound_holds_and_the_server_stops_reading(
    start: Callable[..., Live],
) -> None:
    """Events past the bound stay unread in TCP until handlers finish, then all run in order."""
    live = start(max_inflight_events=LIMIT)
    probe = live.probe
    # Large enough that the frames outgrow every buffer between the client's
    # writes and the server's reads, small enough to stay quick.
    pad = "x" * 64 * 1024
    async with raw_client(live.url) as control, raw_client(live.url) as flooder:
        transport = flooder.ws.transport
        raw_socket = transport.get_extra_info("socket")
        raw_socket.setsockopt(sockets.SOL_SOCKET, sockets.SO_SNDBUF, 64 * 1024)
        session = live.session(flooder.sid)
        sent = 0

        async def send_all() -> None:
            nonlocal sent
            for i in range(EVENTS):
                await flooder.emit("work", i, pad)
                sent += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(send_all)
            await until(lambda: probe.running >= LIMIT)
            # The server stopped reading: its reader waits for a free slot and
            # the client's writes back up, the kernel taking no more of them.
            await until(
                lambda: (
                    sent == EVENTS
                    or (session.state.inbound_paused and transport.get_write_buffer_size() > 0)
                )
            )
            assert probe.max_running == LIMIT
            assert sent < EVENTS
            # The app took the CONNECT, the events running and the one waiting
            # for a slot: nothing more, however much the client wrote.
            assert probe.pulled[flooder.port] == 1 + LIMIT + 1
            assert await control.call("release") == [True]
        await until(lambda: len(probe.done) == EVENTS)
        assert probe.pulled[flooder.port] == 1 + EVENTS
        assert not session.closed
    assert probe.max_running == LIMIT
    assert_arrival_order(probe.started, live.kind)
    assert sorted(probe.done) == list(range(EVENTS))
    assert probe.reasons.get(flooder.sid) in (None, "transport close")


async def test_polling_post_is_answered_once_its_events_are_taken(
    start: Callable[..., Live],
) -> None:
    """Many events in one POST: the bound holds, and the POST waits for slots, not for handlers."""
    live = start(max_inflight_events=LIMIT)
    probe = live.probe
    base = live.url + "/socket.io/"
    async with (
        raw_client(live.url) as control,
        httpx.AsyncClient(base_url=base, timeout=STEP) as http,
    ):
        sid = await polling_join(http)
        session = live.session(sid)
        # LIMIT events: all taken at once, so the POST is answered while they run.
        first = await http.post("", params=poll_query(sid), content=events_payload(range(LIMIT)))
        assert first.text == "ok"
        await until(lambda: probe.running == LIMIT)
        answered = anyio.Event()
        box: dict[str, httpx.Response] = {}

        async def post_the_rest() -> None:
            payload = events_payload(range(LIMIT, EVENTS))
            box["response"] = await http.post("", params=poll_query(sid), content=payload)
            answered.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(post_the_rest)
            await until(lambda: answered.is_set() or session.state.inbound_paused)
            # Another client's round trip goes through; this POST still waits.
            assert await control.call("rt", 1) == [1]
            assert not answered.is_set()
            assert probe.max_running == LIMIT
            assert await control.call("release") == [True]
            with anyio.fail_after(STEP):
                await answered.wait()
        assert box["response"].status_code == 200
        assert box["response"].text == "ok"
        await until(lambda: len(probe.done) == EVENTS)
        assert not session.closed
    assert probe.max_running == LIMIT
    assert_arrival_order(probe.started, live.kind)
    assert sorted(probe.done) == list(range(EVENTS))


async def test_paused_client_is_not_timed_out_for_its_unread_pong(
    start: Callable[..., Live],
) -> None:
    """Handlers slower than ping_interval + ping_timeout, events past the bound: still connected.

    The client answers the ping at once, but the pong waits in TCP behind the
    events the server is not reading; the server must not count it as missed,
    and pings on so that the client's own heartbeat does not give up.
    """
    interval = timeout = 0.5
    limit = 2
    live = start(max_inflight_events=limit, ping_interval=interval, ping_timeout=timeout)
    probe = live.probe
    tick = min(interval, timeout) / live.sio.engine.config.heartbeat_ticks
    async with raw_client(live.url) as control, raw_client(live.url) as slow:
        session = live.session(slow.sid)
        for i in range(limit + 8):
            await slow.emit("work", i)
        await until(lambda: probe.running > limit or session.state.inbound_paused)
        assert probe.max_running == limit
        assert probe.pulled[slow.port] == 1 + limit + 1

        def overdue() -> bool:
            # A ping went out and was answered; past its pong deadline the server
            # pinged again (keeping the client's heartbeat fed) rather than time
            # the client out; the handlers have run past interval + timeout.
            if slow.pings < 2 or session.state.pong_deadline is None:
                return False
            return time.monotonic() > probe.start_times[-1] + interval + timeout + 3 * tick

        await until(overdue)
        assert not session.closed
        assert slow.sid not in probe.reasons
        assert probe.pulled[slow.port] == 1 + limit + 1
        pings = slow.pings
        assert await control.call("release") == [True]
        await until(lambda: len(probe.done) == limit + 8)
        # The pong is read at last, and the heartbeat goes on: a next ping comes
        # only after the server has had the previous pong.
        await until(lambda: slow.pings >= pings + 2)
        assert await slow.call("rt", 7) == [7]
        assert not session.closed
    assert probe.max_running == limit
    assert sorted(probe.done) == list(range(limit + 8))
    assert slow.sid not in probe.reasons or probe.reasons[slow.sid] == "transport close"


# -- a flooder beside well-behaved clients ---------------------------------------------


@contextlib.asynccontextmanager
async def flooder(url: str) -> AsyncIterator[tuple[str, Callable[[], Awaitable[int]]]]:
    """Run tests/live/flooder.py in its own process; yield its sid and a ``stop``.

    ``stop`` ends the flood and returns how many events were sent; the process
    is then killed rather than left to close, which would wait for the server
    to read all it buffered.
    """
    command = [sys.executable, "-m", "tests.live.flooder", url, "flood", "10000000", "40"]
    proc = await anyio.open_process(command, cwd=ROOT, stderr=None)
    assert proc.stdin is not None
    assert proc.stdout is not None
    stdin, lines = proc.stdin, BufferedByteReceiveStream(proc.stdout)

    async def stop() -> int:
        await stdin.aclose()
        with anyio.fail_after(STEP):
            return int(await lines.receive_until(b"\n", 64))

    try:
        with anyio.fail_after(STEP):
            sid = (await lines.receive_until(b"\n", 256)).decode().strip()
        yield sid, stop
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have ended already
            proc.kill()
        with anyio.CancelScope(shield=True):
            await proc.aclose()


async def round_trips(
    client: socketio.AsyncClient,
    session: EngineSession,
    times: list[float],
    enough: Callable[[int, int], bool],
) -> int:
    """Acknowledged round trips until ``enough(count, pongs)``; returns the pongs seen.

    A pong shows as the session's next ping being rescheduled.
    """
    pongs = 0
    seen = session.state.next_ping
    i = 0
    while not enough(i, pongs):
        begin = time.perf_counter()
        assert await client.call("rt", i, timeout=STEP) == i
        times.append(time.perf_counter() - begin)
        i += 1
        next_ping = session.state.next_ping
        if next_ping is not None and next_ping != seen:
            pongs += 1
            seen = next_ping
    return pongs


async def test_a_flooder_does_not_hold_up_other_clients(start: Callable[..., Live]) -> None:
    """Others' acknowledged round trips all complete, their heartbeats go on, none drops."""
    limit = 8
    # A short heartbeat so that pings happen while the flood runs; the point
    # here is that they are answered, not how a long interval behaves.
    live = start(max_inflight_events=limit, ping_interval=1.0, ping_timeout=2.0)
    probe = live.probe
    transports = [["websocket"], ["websocket"], ["websocket"], ["polling"]]
    clients: list[socketio.AsyncClient] = []
    try:
        for setup in transports:
            client = socketio.AsyncClient(reconnection=False)
            await client.connect(live.url, transports=setup, wait_timeout=STEP)
            clients.append(client)
        sessions = [live.session(str(c.eio.sid)) for c in clients]
        baseline: list[list[float]] = [[] for _ in clients]
        flooded: list[list[float]] = [[] for _ in clients]
        pongs: list[int] = [0] * len(clients)

        async def run_all(times: list[list[float]], enough: Callable[[int, int], bool]) -> None:
            async def one(k: int) -> None:
                pongs[k] = await round_trips(clients[k], sessions[k], times[k], enough)

            async with anyio.create_task_group() as tg:
                for k in range(len(clients)):
                    tg.start_soon(one, k)

        await run_all(baseline, lambda count, _: count >= 20)
        async with flooder(live.url) as (flooder_sid, stop):
            # The flood is on before the others start, and goes on throughout.
            await until(lambda: probe.flood_done >= 2000)
            handled_before = probe.flood_done
            await run_all(flooded, lambda count, seen: count >= 20 and seen >= 2)
            handled_during = probe.flood_done - handled_before
            flood_session = live.sio.engine.sessions.get(flooder_sid)
            assert flood_session is not None
            assert not flood_session.closed
            sent = await stop()
        for k, client in enumerate(clients):
            assert client.connected, transports[k]
            assert not sessions[k].closed, (transports[k], sessions[k].state.close_reason)
            assert sessions[k].sid not in probe.reasons, probe.reasons
            assert pongs[k] >= 2, (transports[k], pongs[k])
            assert len(flooded[k]) >= 20
    finally:
        for client in clients:
            await client.disconnect()
    # The flood was real, and bounded while the others ran.
    assert handled_during > 0
    assert sent >= 2000
    assert probe.flood_max == limit
    # Noisy shared machine: compare medians only, with a very generous bound.
    ws_base = statistics.median(t for times in baseline[:3] for t in times)
    ws_flood = statistics.median(t for times in flooded[:3] for t in times)
    assert ws_flood < 50 * ws_base, (ws_base, ws_flood)
