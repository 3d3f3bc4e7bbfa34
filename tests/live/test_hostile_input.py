"""Hostile input, live: each is answered as the protocol prescribes, others unharmed.

The server is a Socket.IO ``Server`` served by uvicorn (asyncio) or hypercorn's
trio worker; the test's client runs on the same event loop kind. Clients are raw:
a small WebSocket client on anyio + wsproto (so it can send what no real client
would, fragment messages at will and see refusals' bodies) and httpx for polling.
Each test checks the offender got its answer and that a well-behaved client
connected beside it still gets an echo and was not disconnected.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket as stdsocket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import ByteStream
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from realtime import Server, Socket
from realtime.serving import uvicorn_options
from realtime.socketio.packets import RESERVED_EVENTS
from tests.live.engine_servers import serve_hypercorn_trio
from tests.servers import serve

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(30)]

STEP = 5.0  # upper bound on any one wait; tests finish far sooner
PATH = "/socket.io/"
WS_QUERY = "?EIO=4&transport=websocket"


# -- the server under test -----------------------------------------------------------


@dataclass
class App:
    """A Socket.IO server with an echo, a broadcast and a record of disconnects."""

    sio: Server
    url: str = ""
    disconnects: dict[str, str] = field(default_factory=dict)
    errors: list[list[Any]] = field(default_factory=list)

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)


def make_app(**options: Any) -> App:
    sio = Server(**options)
    app = App(sio)

    @sio.on("echo")
    async def echo(socket: Socket, *args: Any) -> tuple[Any, ...]:
        await socket.emit("echo", *args)
        return args

    @sio.on("chat")
    async def chat(socket: Socket, *args: Any) -> None:
        await sio.emit("chat", *args)

    @sio.on("error")
    async def error(socket: Socket, *args: Any) -> str:
        app.errors.append(list(args))
        return "seen"

    @sio.on("disconnect")
    async def disconnect(socket: Socket, reason: str) -> None:
        app.disconnects[socket.id] = str(reason)

    return app


KINDS = ("uvicorn", "hypercorn-trio")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def anyio_backend(kind: str) -> str:
    # The client runs on the same kind of loop as the server: asyncio and trio.
    return "asyncio" if kind == "uvicorn" else "trio"


@contextlib.contextmanager
def running(kind: str, app: App, **uvicorn: Any) -> Iterator[App]:
    asgi = app.sio.asgi_app()
    cm = serve(asgi, **uvicorn) if kind == "uvicorn" else serve_hypercorn_trio(asgi)
    with cm as url:
        app.url = url
        yield app


@pytest.fixture
def server(kind: str) -> Iterator[App]:
    with running(kind, make_app()) as app:
        yield app


# -- a raw WebSocket client on anyio ------------------------------------------------


class Closed(Exception):
    def __init__(self, code: int | None) -> None:
        self.code = code
        super().__init__(f"closed with {code}")


@dataclass
class Refused:
    status: int
    body: bytes

    def error(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value


class RawWS:
    """Just enough WebSocket to say anything, in any number of fragments."""

    def __init__(self, stream: ByteStream, conn: WSConnection) -> None:
        self.stream = stream
        self.conn = conn
        self.events: list[Event] = []
        self.parts: list[str | bytes] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, app: App, target: str) -> AsyncIterator[RawWS | Refused]:
        host, port = app.host_port
        stream = await anyio.connect_tcp(host, port)
        async with stream:
            conn = WSConnection(ConnectionType.CLIENT)
            ws = cls(stream, conn)
            await ws._send(Request(host=f"{host}:{port}", target=target))
            refused: Refused | None = None
            while True:
                event = await ws._next()
                if isinstance(event, AcceptConnection):
                    break
                if isinstance(event, RejectConnection):
                    refused = Refused(event.status_code, b"")
                    if not event.has_body:
                        break
                elif isinstance(event, RejectData):
                    assert refused is not None
                    refused.body += event.data
                    if event.body_finished:
                        break
            yield refused if refused is not None else ws

    async def _send(self, event: Event) -> None:
        await self.stream.send(self.conn.send(event))

    async def _next(self) -> Event:
        while not self.events:
            try:
                data = await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                data = None
            self.conn.receive_data(data)
            self.events.extend(self.conn.events())
            if data is None and not self.events:
                raise Closed(None)
        return self.events.pop(0)

    async def send(self, message: str | bytes, fragment: int = 0) -> None:
        """Send one message, split into frames of ``fragment`` bytes/characters (0: one)."""
        size = fragment or max(1, len(message))
        chunks = [message[i : i + size] for i in range(0, len(message), size)] or [message]
        out = bytearray()
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            if isinstance(chunk, str):
                out += self.conn.send(TextMessage(data=chunk, message_finished=last))
            else:
                out += self.conn.send(BytesMessage(data=chunk, message_finished=last))
        await self.stream.send(bytes(out))

    async def recv(self) -> str | bytes:
        with anyio.fail_after(STEP):
            while True:
                event = await self._next()
                if isinstance(event, Ping):
                    await self._send(event.response())
                elif isinstance(event, CloseConnection):
                    with contextlib.suppress(Exception):
                        await self._send(event.response())
                    raise Closed(event.code)
                elif isinstance(event, Message):
                    self.parts.append(event.data)
                    if event.message_finished:
                        parts, self.parts = self.parts, []
                        if isinstance(event.data, str):
                            return "".join(p for p in parts if isinstance(p, str))
                        return b"".join(p for p in parts if isinstance(p, bytes))

    async def recv_sio(self) -> str | bytes:
        """The next message that is not an Engine.IO ping (answered) or noop."""
        while True:
            frame = await self.recv()
            if frame == "2":
                await self.send("3")
            elif frame != "6":
                return frame

    async def closed(self) -> int | None:
        """Read until the server closes; return its close code."""
        with anyio.fail_after(STEP):
            try:
                while True:
                    await self.recv_sio()
            except Closed as exc:
                return exc.code


@contextlib.asynccontextmanager
async def sio_client(app: App, namespace: str = "/") -> AsyncIterator[tuple[RawWS, str]]:
    """A WebSocket Socket.IO client that has joined ``namespace``; yields it and its sid."""
    async with RawWS.open(app, PATH + WS_QUERY) as ws:
        assert isinstance(ws, RawWS), ws
        opened = await ws.recv_sio()
        assert isinstance(opened, str)
        assert opened.startswith("0")
        await ws.send("40" if namespace == "/" else f"40{namespace},")
        reply = await ws.recv_sio()
        assert isinstance(reply, str)
        assert reply.startswith("40"), reply
        sid = str(json.loads(reply[reply.index("{") :])["sid"])
        yield ws, sid


async def assert_echo(ws: RawWS, value: str = "ok") -> None:
    await ws.send(f'421["echo","{value}"]')
    assert await ws.recv_sio() == f'42["echo","{value}"]'
    assert await ws.recv_sio() == f'431["{value}"]'


async def wait_for(condition: Any) -> None:
    with anyio.fail_after(STEP):
        while not condition():  # noqa: ASYNC110 - the server changes it on its own thread
            await anyio.sleep(0.01)


async def assert_parse_error(app: App, message: str | list[str | bytes]) -> None:
    """``message`` closes its sender with "parse error"; a bystander is unharmed."""
    async with sio_client(app) as (bystander, bystander_sid), sio_client(app) as (ws, sid):
        for part in message if isinstance(message, list) else [message]:
            await ws.send(part)
        await ws.closed()
        await wait_for(lambda: sid in app.disconnects)
        assert app.disconnects[sid] == "parse error"
        await assert_echo(bystander)
        assert bystander_sid not in app.disconnects


# -- numbers, ack ids, event names, namespaces ----------------------------------------


@pytest.mark.parametrize(
    "payload", ['["echo",1e400]', '["echo",-1e400]', '["echo",NaN]', '["echo",{"x":Infinity}]']
)
async def test_numbers_json_cannot_carry_are_refused(server: App, payload: str) -> None:
    # 1e400 parses as infinity; echoing it back would need "Infinity", which is
    # not JSON. Refused on the way in, so it is never re-emitted.
    await assert_parse_error(server, "42" + payload)


async def test_ack_id_past_2_53_is_refused(server: App) -> None:
    async with sio_client(server) as (ws, _):
        await ws.send('429007199254740991["echo","edge"]')
        assert await ws.recv_sio() == '42["echo","edge"]'
        assert await ws.recv_sio() == '439007199254740991["edge"]'
    await assert_parse_error(server, '429007199254740992["echo","x"]')


@pytest.mark.parametrize("event", sorted(RESERVED_EVENTS))
async def test_reserved_event_from_client_is_refused(server: App, event: str) -> None:
    await assert_parse_error(server, f'42["{event}","x"]')


async def test_error_event_is_an_ordinary_event(server: App) -> None:
    # The reference server hands a client's "error" event to the socket's
    # "error" listeners and keeps the connection; realtime gives "error" no
    # meaning of its own, so it is delivered like any other event.
    async with sio_client(server) as (ws, sid):
        await ws.send('427["error","boom"]')
        assert await ws.recv_sio() == '437["seen"]'
        assert server.errors == [["boom"]]
        await assert_echo(ws)
    assert sid not in server.disconnects or server.disconnects[sid] != "parse error"


@pytest.mark.parametrize(
    "message",
    [
        '42/other,["echo","x"]',
        '421/other,["echo","x"]',
        '43/other,1["x"]',
        ['451-/other,["echo",{"_placeholder":true,"num":0}]', b"\x01\x02"],
    ],
    ids=["event", "event-with-ack", "ack", "binary-event"],
)
async def test_packets_for_an_unjoined_namespace_close(
    server: App, message: str | list[str | bytes]
) -> None:
    # As the reference server's Client.ondecoded: "invalid state", close.
    await assert_parse_error(server, message)


async def test_disconnect_from_an_unjoined_namespace_is_ignored(server: App) -> None:
    async with sio_client(server) as (ws, sid):
        await ws.send("41/other,")
        await assert_echo(ws)
    await wait_for(lambda: sid in server.disconnects)
    assert server.disconnects[sid] == "transport close"


async def test_long_namespace_is_refused_and_never_echoed(
    server: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="realtime")
    limit = server.sio.limits.max_namespace_length
    name = "/" + "n" * limit
    async with sio_client(server) as (ws, _):
        # At the limit: an unknown namespace, refused by name as usual.
        await ws.send(f"40{name[:limit]},")
        assert await ws.recv_sio() == f'44{name[:limit]},{{"message":"Invalid namespace"}}'
    async with RawWS.open(server, PATH + WS_QUERY) as ws:
        assert isinstance(ws, RawWS)
        await ws.recv_sio()
        await ws.send(f"40{name}x,")
        with pytest.raises(Closed):  # nothing but the close: no CONNECT_ERROR naming it
            await ws.recv_sio()
    assert "n" * 100 not in caplog.text


async def test_lone_surrogate_is_relayed_as_an_escape(server: App) -> None:
    # "\ud800" is valid JSON (JavaScript strings are UTF-16). Python decodes it
    # to a lone surrogate, which has no UTF-8 form: written as is, it broke
    # the writer of every recipient of a broadcast.
    async with sio_client(server) as (listener, listener_sid), sio_client(server) as (ws, sid):
        await ws.send('42["chat","a\\ud800b"]')
        for client in (ws, listener):
            assert await client.recv_sio() == '42["chat","a\\ud800b"]'
        await assert_echo(listener)
        await assert_echo(ws)
        assert listener_sid not in server.disconnects
        assert sid not in server.disconnects


# -- Engine.IO: sids, refused upgrades, heartbeats, fragments ----------------------------


async def test_client_ping_over_websocket_closes(server: App) -> None:
    # engine.io 6.6 Socket.onPacket: a v4 client's PING is an "invalid heartbeat
    # direction", closed as a transport error.
    async with sio_client(server) as (bystander, _), sio_client(server) as (ws, sid):
        await ws.send("2")
        await ws.closed()
        await wait_for(lambda: sid in server.disconnects)
        assert server.disconnects[sid] == "transport error"
        await assert_echo(bystander)


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("?EIO=4&transport=flash", 400, 0),
        ("?EIO=4&transport=", 400, 0),
        ("?EIO=3&transport=websocket", 400, 5),
        ("?EIO=x&transport=websocket", 400, 5),
        ("?transport=websocket", 400, 5),
        ("?EIO=4&transport=websocket&sid=" + "s" * 4000, 400, 1),
    ],
)
async def test_bad_websocket_upgrade_gets_the_json_error(
    server: App, query: str, status: int, code: int
) -> None:
    async with RawWS.open(server, PATH + query) as refused:
        assert isinstance(refused, Refused)
        assert refused.status == status
        assert refused.error()["code"] == code
    async with sio_client(server) as (ws, _):
        await assert_echo(ws)


async def test_empty_and_long_sid_on_polling(server: App) -> None:
    async with httpx.AsyncClient(base_url=server.url + PATH, timeout=STEP) as client:
        # An empty sid is no sid, as in the reference server (``if (sid)``): a GET
        # is a handshake, and a POST without a session is a bad handshake method.
        r = await client.get("?EIO=4&transport=polling&sid=")
        assert r.status_code == 200
        assert r.text.startswith("0{")
        r = await client.post("?EIO=4&transport=polling&sid=", content="40")
        assert (r.status_code, r.json()["code"]) == (400, 2)
        long_sid = "s" * 4000
        for method in ("GET", "POST"):
            r = await client.request(method, f"?EIO=4&transport=polling&sid={long_sid}")
            assert r.status_code == 400
            assert r.json() == {"code": 1, "message": "Session ID unknown"}


async def test_message_in_tiny_fragments(server: App) -> None:
    async with sio_client(server) as (ws, _):
        value = "fragmented-" + "€" * 50 + "x" * 3000  # one frame per character
        await ws.send(f'421["echo","{value}"]', fragment=1)
        assert await ws.recv_sio() == f'42["echo","{value}"]'
        assert await ws.recv_sio() == f'431["{value}"]'
        await ws.send(b"", fragment=1)  # an empty binary message with no packet announcing it
        assert await ws.closed() is not None


async def test_oversized_message_in_fragments_closes_1009(kind: str) -> None:
    app = make_app(max_payload=10_000)
    options = uvicorn_options(app.sio.asgi_app()) if kind == "uvicorn" else {}
    options.pop("log_level", None)
    with running(kind, app, **options):
        async with sio_client(app) as (bystander, _), sio_client(app) as (ws, sid):
            await ws.send('42["echo","' + "x" * 20_000 + '"]', fragment=512)
            assert await ws.closed() == 1009
            await wait_for(lambda: sid in app.disconnects)
            await assert_echo(bystander)


# -- HTTP: headers, slow clients, connection limits (uvicorn, as realtime.run sets it) ---


# These are about uvicorn itself: its server runs on asyncio, the client on either loop.
client_loops = pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])


@pytest.fixture
def uvicorn_app() -> Iterator[App]:
    app = make_app()
    options = uvicorn_options(app.sio.asgi_app(), timeout_keep_alive=1, log_level="warning")
    with running("uvicorn", app, **options):
        yield app


def raw_http(app: App, request: bytes) -> stdsocket.socket:
    sock = stdsocket.create_connection(app.host_port, timeout=STEP)
    sock.sendall(request)
    return sock


def read_response(sock: stdsocket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def handshake_request(headers: int = 0) -> bytes:
    extra = b"".join(b"X-H%d: v\r\n" % i for i in range(headers))
    return (
        b"GET "
        + PATH.encode()
        + b"?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n"
        + extra
        + b"\r\n"
    )


@client_loops
async def test_thousands_of_headers(uvicorn_app: App) -> None:
    # httptools (uvicorn's default parser) takes them all: it has no cap on
    # header count or size, which is why README asks for a proxy in front.
    sock = await anyio.to_thread.run_sync(raw_http, uvicorn_app, handshake_request(5000))
    with sock:
        response = await anyio.to_thread.run_sync(read_response, sock)
    assert response.startswith(b"HTTP/1.1 200"), response[:100]
    async with sio_client(uvicorn_app) as (ws, _):
        await assert_echo(ws)


@client_loops
async def test_h11_caps_the_header_block() -> None:
    app = make_app()
    options = uvicorn_options(app.sio.asgi_app(), http="h11", log_level="error")
    with running("uvicorn", app, **options):
        request = handshake_request(0).replace(
            b"\r\n\r\n", b"\r\nX-Big: " + b"v" * 40_000 + b"\r\n"
        )
        sock = await anyio.to_thread.run_sync(raw_http, app, request[:-2])  # headers not ended
        with sock:
            response = await anyio.to_thread.run_sync(read_response, sock)
        assert response.startswith(b"HTTP/1.1 400"), response[:100]
        async with sio_client(app) as (ws, _):
            await assert_echo(ws)


@client_loops
async def test_slow_headers_and_bodies_do_not_hold_others(uvicorn_app: App) -> None:
    slow: list[stdsocket.socket] = []
    try:
        async with httpx.AsyncClient(base_url=uvicorn_app.url + PATH, timeout=STEP) as client:
            for i in range(50):
                if i % 2:
                    partial = b"GET " + PATH.encode() + b"?EIO=4&transport=polling HTTP/1.1\r\nHost"
                else:
                    # A body that never ends, on a real session.
                    r = await client.get("?EIO=4&transport=polling")
                    sid = json.loads(r.text[1:])["sid"]
                    partial = (
                        f"POST {PATH}?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\n"
                        "Host: x\r\nContent-Length: 1000\r\n\r\n40"
                    ).encode()
                slow.append(await anyio.to_thread.run_sync(raw_http, uvicorn_app, partial))
        # An idle keep-alive connection is closed after timeout_keep_alive...
        idle = await anyio.to_thread.run_sync(raw_http, uvicorn_app, handshake_request())
        with idle:
            response = await anyio.to_thread.run_sync(read_response, idle)
            assert response.startswith(b"HTTP/1.1 200")
            assert await anyio.to_thread.run_sync(drain_until_closed, idle)
        # ...but uvicorn has no timeout for slow headers or bodies: those are
        # still open and unanswered, which is what README's proxy section is for.
        for sock in slow:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
        async with sio_client(uvicorn_app) as (ws, _):
            await assert_echo(ws)
    finally:
        for sock in slow:
            sock.close()


def drain_until_closed(sock: stdsocket.socket) -> bool:
    """True once the server closes ``sock`` (within the socket timeout)."""
    while True:
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True


@client_loops
async def test_limit_concurrency_answers_503() -> None:
    app = make_app()
    options = uvicorn_options(app.sio.asgi_app(), limit_concurrency=5, log_level="error")
    with running("uvicorn", app, **options):
        held = [
            await anyio.to_thread.run_sync(stdsocket.create_connection, app.host_port)
            for _ in range(5)
        ]
        try:
            sock = await anyio.to_thread.run_sync(raw_http, app, handshake_request())
            with sock:
                response = await anyio.to_thread.run_sync(read_response, sock)
            assert response.startswith(b"HTTP/1.1 503"), response[:100]
        finally:
            for s in held:
                s.close()
