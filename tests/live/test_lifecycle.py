"""Every session ends once, completely, over a real network.

A churn of a few hundred real connections on uvicorn (asyncio) and on
hypercorn's trio worker, ended the ways only a real network produces: a TCP
reset, a client close, a client that stops answering pings, polling sessions
abandoned, an upgrade in flight when the client disappears. Then a client that
stops reading while its TCP connection stays open: the server drops it once
its outbox passes ``max_buffer_bytes`` (the real cap), and everyone else keeps
receiving.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import os
import socket as stdsocket
import struct
import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect

from realtime import Server, Socket
from realtime.engineio import EngineConfig
from tests.live.engine_servers import SERVERS, serve_hypercorn_trio
from tests.servers import serve

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(90)]

STEP = 10.0
SEP = "\x1e"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the clients; each server runs on its own loop and thread


async def until(condition: Callable[[], bool], seconds: float = STEP) -> None:
    """Wait for the server (another thread) to reach a state."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - the state changes in another thread
            await anyio.sleep(0.02)


@dataclass
class Seen:
    """What the server's handlers saw, keyed by the client's name."""

    connected: Counter[str] = field(default_factory=Counter)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    refs: list[weakref.ref[Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_app(seen: Seen, **options: Any) -> tuple[Server, Calls]:
    sio = Server(**options)

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        name = auth["name"]
        await socket.join(["all", name.split("-")[0]])
        socket.data["name"] = name
        with seen.lock:
            seen.connected[name] += 1
            seen.refs += [
                weakref.ref(socket),
                weakref.ref(socket.connection),
                weakref.ref(socket.connection.session),
            ]

    @sio.on("disconnect")
    def disconnect(socket: Socket, reason: str) -> None:
        with seen.lock:
            seen.reasons.setdefault(socket.data["name"], []).append(str(reason))

    async def tasks(request: Request) -> JSONResponse:
        """The library's tasks on the server's loop, less the idle worker pool
        (bounded and reused). The ASGI server's own per-connection tasks are
        not counted: hypercorn keeps an idle connection's until its keep-alive
        timeout; :class:`Calls` counts what matters of them, the app's calls."""
        ours = [t for t in anyio.get_running_tasks() if (t.name or "").startswith("realtime.")]
        return JSONResponse(len(ours) - len(sio.engine.workers._idle))

    return sio, Calls(sio.asgi_app(Starlette(routes=[Route("/tasks", tasks)])))


class Calls:
    """Counts the app's HTTP and WebSocket calls still running."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.running = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        self.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1


def nothing_left(sio: Server) -> bool:
    return not (
        sio.engine.sessions
        or sio.connections
        or sio._unjoined
        or any(ns.sockets or ns.adapter.rooms() for ns in sio.namespaces.values())
    )


def reset(ws: ClientConnection) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed client or a dropped link does."""
    sock = ws.transport.get_extra_info("socket")
    sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.transport.abort()


class Clients:
    """Real clients of one live server, each named after how it will end."""

    def __init__(self, url: str, seen: Seen) -> None:
        self.url = url
        self.ws_url = url.replace("http://", "ws://") + "/socket.io/"
        self.seen = seen
        self.limit = anyio.CapacityLimiter(16)  # connects a few at a time, as real traffic does

    async def ws(self, name: str, *, sid: str | None = None) -> ClientConnection:
        query = "?EIO=4&transport=websocket" + (f"&sid={sid}" if sid else "")
        return await connect(self.ws_url + query, max_size=None, open_timeout=STEP)

    async def ws_joined(self, name: str) -> ClientConnection:
        ws = await self.ws(name)
        with anyio.fail_after(STEP):
            opening = await ws.recv()
            assert isinstance(opening, str)
            assert opening.startswith("0")
            await ws.send("40" + json.dumps({"name": name}))
            while not str(await ws.recv()).startswith("40"):
                pass
        return ws

    async def reason(self, name: str) -> None:
        await until(lambda: name in self.seen.reasons)

    async def ws_client(self, name: str) -> None:
        async with self.limit:
            ws = await self.ws_joined(name)
        kind = name.split("-")[0]
        if kind == "close":
            await ws.close()
        elif kind == "reset":
            reset(ws)
        await self.reason(name)  # "timeout": it just never answers a ping
        if kind == "timeout":
            ws.transport.abort()  # the server has closed it already

    async def polling_client(self, name: str) -> None:
        kind = name.split("-")[0]
        async with httpx.AsyncClient(base_url=self.url, timeout=STEP) as http:
            async with self.limit:
                r = await http.get("/socket.io/?EIO=4&transport=polling")
                sid = json.loads(r.text[1:])["sid"]
                query = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
                r = await http.post(query, content="40" + json.dumps({"name": name}))
                assert r.text == "ok"
                while not any(p.startswith("40") for p in (await http.get(query)).text.split(SEP)):
                    pass
            if kind == "upgrade":
                # The upgrade is under way (2probe answered) when the client disappears.
                ws = await self.ws(name, sid=sid)
                await ws.send("2probe")
                assert await ws.recv() == "3probe"
                reset(ws)
            elif kind == "vanish":
                # Its GET is waiting on the server when the client goes.
                with anyio.move_on_after(0.2):
                    await http.get(query)
            # "abandon" (and the upgrade's polling side): simply no more requests.
        await self.reason(name)


@contextlib.contextmanager
def running(kind: str, app: Any) -> Iterator[str]:
    runner = serve if kind == "uvicorn" else serve_hypercorn_trio
    with runner(app) as url:
        yield url


#: How each kind of client ends, and the reason the server must report.
EXPECTED = {
    "close": {"transport close"},
    # The reset is seen by the reader ("transport close") or, if a ping was
    # being written at that moment, by the writer ("transport error").
    "reset": {"transport close", "transport error"},
    "timeout": {"ping timeout"},
    "abandon": {"ping timeout"},
    # A GET cut off while waiting: "transport close". The server may have
    # answered it (with a ping) just before the client cut it: "ping timeout".
    "vanish": {"transport close", "ping timeout"},
    "upgrade": {"ping timeout"},
}
PER_KIND = 40


@pytest.mark.parametrize("server", SERVERS)
async def test_live_churn_leaves_nothing(server: str) -> None:
    seen = Seen()
    # A short heartbeat so that the silent clients time out within the test;
    # what is checked is how sessions end, not when.
    sio, app = make_app(seen, ping_interval=0.5, ping_timeout=1.5)
    with running(server, app) as url:
        clients = Clients(url, seen)
        async with httpx.AsyncClient(base_url=url, timeout=STEP) as http:
            baseline = (await http.get("/tasks")).json()
        names = [f"{kind}-{i}" for kind in EXPECTED for i in range(PER_KIND)]
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for name in names:
                    polling = name.split("-")[0] in {"abandon", "vanish", "upgrade"}
                    tg.start_soon(clients.polling_client if polling else clients.ws_client, name)
        await until(lambda: nothing_left(sio))
        assert seen.connected == Counter(names)
        assert sorted(seen.reasons) == sorted(names)
        wrong = {
            name: reasons
            for name, reasons in seen.reasons.items()
            if len(reasons) != 1 or reasons[0] not in EXPECTED[name.split("-")[0]]
        }
        assert wrong == {}

        # No task left on the server's loop beyond its own (and the idle pool).
        async def task_count() -> int:
            async with httpx.AsyncClient(base_url=url, timeout=STEP) as http:
                count: int = (await http.get("/tasks")).json()
                return count

        with anyio.fail_after(STEP):
            while await task_count() > baseline:  # noqa: ASYNC110 - another thread's loop
                await anyio.sleep(0.05)
        await until(lambda: app.running == 0)

        def collected() -> bool:
            gc.collect()
            return all(ref() is None for ref in seen.refs)

        await until(collected)


# -- a client that stops reading -----------------------------------------------------------

CAP = 256 * 1024
#: What uvicorn's WebSocket protocol may hold outside the engine's outbox: the
#: asyncio transport's write buffer, up to its high-water mark (64 KiB, the
#: default that ``websockets`` sets with ``write_limit``), plus one frame.
ASGI_BUFFER = 64 * 1024
SIZE = 16 * 1024


def ws_frame(text: str) -> bytes:
    """A masked client text frame."""
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes([0x81, 0x80 | n])
    elif n < 65536:
        header = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def server_frames(data: bytes) -> Iterator[bytes]:
    """Payloads of the complete unmasked frames in ``data``."""
    at = 0
    while at + 2 <= len(data):
        n = data[at + 1] & 0x7F
        head = 2
        if n == 126:
            n, head = int.from_bytes(data[at + 2 : at + 4], "big"), 4
        elif n == 127:
            n, head = int.from_bytes(data[at + 2 : at + 10], "big"), 10
        if at + head + n > len(data):
            return
        yield data[at + head : at + head + n]
        at += head + n


class StalledClient:
    """A raw TCP socket that does the WebSocket handshake by hand, joins, and stops reading."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = stdsocket.socket()
        # A small receive window, so that little of the flood can hide in this kernel.
        self.sock.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 4096)
        self.sock.settimeout(STEP)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.data = b""
        while b"\r\n\r\n" not in self.data:
            self.data += self.sock.recv(1024)
        head, self.data = self.data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.sock.sendall(ws_frame("40" + json.dumps({"name": "stalled"})))
        # From here on it reads nothing until told to drain.

    def drain(self) -> list[bytes]:
        """Read everything left on the connection, until the server closes it."""
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                self.data += chunk
        self.sock.close()
        return list(server_frames(self.data))


async def test_a_client_that_stops_reading_is_dropped_at_the_cap() -> None:
    config = EngineConfig(path="/socket.io/", max_buffer_bytes=CAP, close_timeout=1.0)
    sio = Server(engine_config=config)
    reasons: dict[str, list[str]] = {}
    sessions: dict[str, Any] = {}

    @sio.on("connect")
    async def on_connect(socket: Socket, auth: dict[str, Any]) -> None:
        socket.data["name"] = auth["name"]
        sessions[auth["name"]] = socket.connection.session
        await socket.join("all")

    @sio.on("disconnect")
    def on_disconnect(socket: Socket, reason: str) -> None:
        reasons.setdefault(socket.data["name"], []).append(str(reason))

    @sio.on("flood")
    async def flood(socket: Socket, count: int) -> dict[str, int]:
        """Broadcast ``count`` messages of SIZE bytes; count those the stalled client took."""
        stalled = sessions["stalled"]
        readers = [s for name, s in sessions.items() if name != "stalled"]
        accepted = 0
        sent = 0
        after = 0
        for i in range(count):
            was_open = not stalled.closed
            await sio.to("all").emit("big", i, "x" * SIZE)
            sent += 1
            if was_open and not stalled.closed:
                accepted += 1
            elif stalled.closed:
                after += 1
                if after == 20:  # the others keep receiving after it is gone
                    break
            # Pace on the readers, so that none of them is the one that overflows.
            while any(s.state.outbox_bytes > 1 for s in readers):  # noqa: ASYNC110
                await anyio.sleep(0.001)
        return {"accepted": accepted, "sent": sent}

    with serve(sio.asgi_app()) as url:
        host, port = url.removeprefix("http://").split(":")
        stalled = StalledClient(host, int(port))
        await until(lambda: "stalled" in sessions)
        stalled_session = sessions["stalled"]
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        received: Counter[str] = Counter()
        result: dict[str, int] = {}

        async def reader(name: str, flood: bool) -> None:
            async with connect(ws_url, max_size=None) as ws:
                await ws.recv()
                await ws.send("40" + json.dumps({"name": name}))
                if flood:
                    await until(lambda: len(sessions) == 3)
                    await ws.send('420["flood",2000]')
                while True:
                    frame = await ws.recv()
                    assert isinstance(frame, str)
                    if frame.startswith('42["big"'):
                        received[name] += 1
                    elif frame.startswith("430"):
                        result.update(json.loads(frame[3:])[0])
                        await anyio.sleep_forever()  # stays connected until the checks

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader, "reader-1", False)
                tg.start_soon(reader, "reader-2", True)
                await until(lambda: bool(result))
                # The readers were never dropped.
                assert "reader-1" not in reasons
                assert "reader-2" not in reasons
                tg.cancel_scope.cancel()
            await until(lambda: "stalled" in reasons)
        assert reasons["stalled"] == ["transport error"]
        assert stalled_session.sid not in sio.engine.sessions
        assert stalled_session.sid not in sio.connections
        assert all(s.data["name"] != "stalled" for s in sio.main.sockets.values())
        assert all(len(members) == 2 for members in sio.main.adapter.rooms().values() if members)
        # The others kept receiving, everything, after the stalled client was dropped too.
        assert received["reader-2"] == result["sent"]
        assert result["sent"] > result["accepted"]

        # The cap: what the server accepted for the stalled client and never
        # handed to the network stays within max_buffer_bytes (plus what
        # uvicorn's transport buffers). Everything else the client can read
        # now, from the kernel buffers on both sides.
        frames = stalled.drain()
        delivered = sum(1 for f in frames if f.startswith(b'42["big"'))
        frame_size = len(f'42["big",0,"{"x" * SIZE}"]') + 4
        held = (result["accepted"] - delivered) * frame_size
        assert held <= CAP + ASGI_BUFFER + frame_size, (result, delivered, held)


async def test_a_client_that_stops_reading_gets_every_broadcast_in_order_later() -> None:
    """Broadcasts to a client whose network buffer is full wait for it alone.

    The sending task writes each recipient's frame itself; a write that has to
    wait is finished by that client's writer task. The stalled client, reading
    again, then gets every frame once and in order, while the other client had
    all of them (and the handler had returned) before the stalled one read any.
    """
    count = 300  # 300 x 16 KiB: far past what the kernels and uvicorn buffer
    sio = Server()
    names: dict[str, str] = {}
    sockets: dict[str, Socket] = {}

    @sio.on("connect")
    async def on_connect(socket: Socket, auth: dict[str, Any]) -> None:
        names[socket.id] = auth["name"]
        sockets[auth["name"]] = socket
        await socket.join("all")

    @sio.on("flood")
    async def flood(socket: Socket) -> int:
        for i in range(count):
            await sio.to("all").emit("big", i, "x" * SIZE)
        # An emit to the stalled client's own socket queues behind the parked
        # write: this handler does not wait for that client to read.
        with anyio.fail_after(STEP / 2):
            await sockets["stalled"].emit("big", count, "late")
        return count

    with serve(sio.asgi_app()) as url:
        host, port = url.removeprefix("http://").split(":")
        stalled = StalledClient(host, int(port))
        await until(lambda: "stalled" in names.values())
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        order: list[int] = []
        with anyio.fail_after(60):
            async with connect(ws_url, max_size=None) as ws:
                await ws.recv()
                await ws.send("40" + json.dumps({"name": "reader"}))
                await ws.recv()  # 40{"sid"..}
                await ws.send('420["flood"]')
                while True:
                    frame = await ws.recv()
                    assert isinstance(frame, str)
                    if frame.startswith('42["big"'):
                        order.append(json.loads(frame[2:])[1])
                    elif frame.startswith("430"):
                        break
                assert order == list(range(count))

                def read_stalled() -> list[int]:
                    seen: list[int] = []
                    while len(seen) < count + 1:
                        stalled.data += stalled.sock.recv(65536)
                        seen = [
                            json.loads(f[2:])[1]
                            for f in server_frames(stalled.data)
                            if f.startswith(b'42["big"')
                        ]
                    return seen

                assert await anyio.to_thread.run_sync(read_stalled) == list(range(count + 1))
        stalled.sock.close()
