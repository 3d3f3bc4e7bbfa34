"""Live Engine.IO servers for tests/live/test_engineio_server.py.

Each test starts an :class:`EngineServer` configured for it, served either by
uvicorn (asyncio) or by hypercorn's trio worker, so the engine is proven on
both event loops. The server runs in its own thread and loop; the test drives
it over real sockets with httpx (polling) and the ``websockets`` client.

The handler is a :class:`Recorder`: it echoes messages (unless told not to),
records what it received and why each session ended, and obeys a few
``cmd:`` messages that make the server do things a test needs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import trio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from realtime.engineio import CloseReason, EngineConfig, EngineServer, EngineSession
from realtime.exceptions import SessionClosedError
from tests.servers import free_port, serve

SERVERS = ("uvicorn", "hypercorn-trio")
PATH = "/engine.io/"
SEP = "\x1e"

# Upper bound for any one wait in a test; tests finish far sooner.
STEP = 3.0


class Recorder:
    """An echo ``EngineHandler`` that records everything, for assertions.

    Runs on the server's thread; the test reads what it recorded from its own
    thread (plain list appends and dict writes, nothing torn under the GIL).

    Commands (text messages starting with ``cmd:``, never recorded or echoed):

    ``cmd:close``
        queue ``bye1`` and ``bye2``, then close the session from the server.
    ``cmd:api``
        the same through ``EngineServer.send(sid, ...)`` / ``close(sid)``: ``api1``, then close.
    ``cmd:stream``
        send ``m0``, ``m1``, ... (one every millisecond) until ``cmd:stop``,
        then ``end``.
    """

    def __init__(self) -> None:
        self.engine: EngineServer | None = None
        self.echo = True
        self.connected: list[str] = []
        self.messages: defaultdict[str, list[str | bytes]] = defaultdict(list)
        self.reasons: dict[str, str] = {}
        #: Called (on the server thread) after each recorded message.
        self.hook: Callable[[EngineSession, str | bytes], None] | None = None
        self._stop: set[str] = set()

    async def on_connect(self, session: EngineSession) -> None:
        self.connected.append(session.sid)

    async def on_message(self, session: EngineSession, data: str | bytes) -> None:
        if isinstance(data, str) and data.startswith("cmd:"):
            self._command(session, data[4:])
            return
        self.messages[session.sid].append(data)
        if self.hook is not None:
            self.hook(session, data)
        if self.echo:
            session.send(data)

    async def on_disconnect(self, session: EngineSession, reason: CloseReason) -> None:
        self.reasons[session.sid] = str(reason)

    def _command(self, session: EngineSession, command: str) -> None:
        if command == "close":
            session.send("bye1")
            session.send("bye2")
            session.close()
        elif command == "api":
            # The server-level API, by sid: an unknown sid is an error, a known one is sent to.
            assert self.engine is not None
            try:
                self.engine.send("no-such-sid", "x")
            except SessionClosedError:
                self.engine.send(session.sid, "api1")
            self.engine.close(session.sid)
            self.engine.close("no-such-sid")
        elif command == "stream":
            assert self.engine is not None
            self.engine.start_soon(self._stream, session)
        elif command == "stop":
            self._stop.add(session.sid)
        else:  # pragma: no cover - a typo in a test
            raise AssertionError(f"unknown command {command!r}")

    async def _stream(self, session: EngineSession) -> None:
        i = 0
        while session.sid not in self._stop and not session.closed:
            session.send(f"m{i}")
            i += 1
            await anyio.sleep(0.001)  # the stream's pace, not a wait for anything
        session.send("end")


@dataclass
class Running:
    """A live engine: its base URL, app and handler."""

    url: str
    app: EngineServer
    recorder: Recorder
    stop: Callable[[], None]
    http_url: str = field(init=False)
    ws_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.http_url = self.url + PATH
        self.ws_url = self.url.replace("http://", "ws://") + PATH

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def session(self, sid: str) -> EngineSession:
        return self.app.sessions[sid]


@contextlib.contextmanager
def serve_hypercorn_trio(app: Any, **options: Any) -> Iterator[str]:
    """Serve ``app`` with hypercorn's trio worker in a thread; yield its base URL.

    ``options`` set attributes of hypercorn's ``Config`` (``root_path=...``).
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve as hypercorn_serve

    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "WARNING"
    config.accesslog = None
    config.graceful_timeout = 2.0
    for name, value in options.items():
        setattr(config, name, value)
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = trio.Event()
        box["token"] = trio.lowlevel.current_trio_token()
        box["stop"] = stop
        async with trio.open_nursery() as nursery:
            await nursery.start(
                functools.partial(hypercorn_serve, app, config, shutdown_trigger=stop.wait)
            )
            started.set()

    def run() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # pragma: no cover - reported by the waiter
            box["error"] = exc
            raise
        finally:
            started.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(15) or "error" in box or not thread.is_alive():
        raise RuntimeError(f"hypercorn did not start: {box.get('error')!r}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(trio.RunFinishedError):
            box["token"].run_sync_soon(box["stop"].set)
        thread.join(timeout=15)


class EngineFactory:
    """Starts engines for one test on one kind of server; stops them afterwards."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._stack = contextlib.ExitStack()

    def __call__(self, recorder: Recorder | None = None, **options: Any) -> Running:
        recorder = recorder or Recorder()
        app = EngineServer(recorder, EngineConfig(**options))
        recorder.engine = app
        cm = serve(app) if self.kind == "uvicorn" else serve_hypercorn_trio(app)
        stack = contextlib.ExitStack()
        url = stack.enter_context(cm)
        self._stack.callback(stack.close)
        return Running(url, app, recorder, stack.close)

    def close(self) -> None:
        self._stack.close()


# -- client helpers -----------------------------------------------------------


def query(sid: str | None = None, transport: str = "polling") -> str:
    q = f"?EIO=4&transport={transport}"
    return q + f"&sid={sid}" if sid else q


def split(payload: str) -> list[str]:
    return payload.split(SEP) if payload else []


def messages_of(payload: str) -> list[str]:
    """The text messages in a polling payload (pings and noops left out)."""
    return [p[1:] for p in split(payload) if p.startswith("4")]


@contextlib.asynccontextmanager
async def http(engine: Running, **kwargs: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=engine.http_url, timeout=STEP, **kwargs) as client:
        yield client


async def handshake(client: httpx.AsyncClient, **headers: str) -> tuple[str, dict[str, Any]]:
    r = await client.get(query(), headers=headers)
    assert r.status_code == 200, r.text
    assert r.text.startswith("0"), r.text
    info: dict[str, Any] = json.loads(r.text[1:])
    return str(info["sid"]), info


async def post(client: httpx.AsyncClient, sid: str, body: str | bytes) -> httpx.Response:
    return await client.post(query(sid), content=body)


async def get(client: httpx.AsyncClient, sid: str) -> httpx.Response:
    return await client.get(query(sid))


def error_of(response: httpx.Response) -> tuple[int, int, str]:
    """``(status, code, message)`` of an engine error response."""
    assert response.headers["content-type"] == "application/json", response.text
    body = response.json()
    assert set(body) == {"code", "message"}, body
    return response.status_code, body["code"], body["message"]


@contextlib.asynccontextmanager
async def ws_connect(
    engine: Running, sid: str | None = None, **kwargs: Any
) -> AsyncIterator[ClientConnection]:
    url = engine.ws_url + query(sid, "websocket")
    async with connect(url, max_size=None, open_timeout=STEP, **kwargs) as ws:
        yield ws


async def ws_open(ws: ClientConnection) -> dict[str, Any]:
    """Read the OPEN packet a direct WebSocket session starts with."""
    with anyio.fail_after(STEP):
        frame = await ws.recv()
    assert isinstance(frame, str)
    assert frame.startswith("0"), frame
    info: dict[str, Any] = json.loads(frame[1:])
    return info


async def ws_recv(ws: ClientConnection) -> str | bytes:
    with anyio.fail_after(STEP):
        return await ws.recv()


async def wait_until(condition: Callable[[], bool]) -> None:
    """Wait for the server (another thread, so no shared Event) to reach a state."""
    with anyio.fail_after(STEP):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.005)


def assert_ws_refused(exc: InvalidStatus, status: int, code: int) -> None:
    """A WebSocket refused before its handshake is answered as polling is: the
    status and the JSON ``{"code", "message"}`` body (uvicorn and hypercorn both
    offer the ASGI denial-response extension)."""
    response = exc.response
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = json.loads(response.body)
    assert body == {"code": code, "message": body["message"]}
