"""Engine.IO clients that drive a server's real ASGI entry over in-memory receive/send.

Only the network is replaced: the engine session, its WebSocket reader and
writer, the long-poll GET and POST handlers are the real ones. That makes
thousands of sessions cheap enough for a churn test that runs in seconds, and
lets a test end a session in ways a real network makes hard to time: a reset
in the middle of a write, a client that stops reading, the connection's task
cancelled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import anyio
from starlette.types import Message, Scope

from realtime import Server
from realtime.engineio import EngineSession

#: Upper bound for any one wait; the waits end far sooner.
STEP = 10.0


async def until(condition: Callable[[], bool], seconds: float = STEP) -> None:
    """Wait until ``condition()`` holds.

    Checked every 20 ms: hundreds of waiters must not load the loop they wait on.
    """
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110 - the state changes in other tasks
            await anyio.sleep(0.02)


def _scope(kind: str, query: str, method: str | None = None) -> Scope:
    scope: Scope = {
        "type": kind,
        "path": "/socket.io/",
        "root_path": "",
        "scheme": "ws" if kind == "websocket" else "http",
        "query_string": query.encode("latin-1"),
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    if method is not None:
        scope["method"] = method
        scope["http_version"] = "1.1"
    return scope


class WsClient:
    """A WebSocket client: what the server writes arrives in :meth:`recv`.

    ``pong``: answer the server's pings (a client that does not is timed out).
    :meth:`stall` stops taking frames (a full TCP window), ``broken = True``
    makes every write fail (a reset peer), ``task_scope.cancel()`` cancels the
    connection's ASGI task.
    """

    def __init__(self, sio: Server, *, pong: bool = True, sid: str | None = None) -> None:
        self.sio = sio
        self.pong = pong
        self.upgrade_sid = sid
        self.sid = sid or ""
        self.broken = False
        self.close_code: int | None = None
        self.task_scope = anyio.CancelScope()
        self.finished = anyio.Event()
        self._gate: anyio.Event | None = None
        self._to_server, self._server_inbox = anyio.create_memory_object_stream[Message](math.inf)
        self._frames_in, self._frames = anyio.create_memory_object_stream[str | bytes](math.inf)

    async def _send(self, message: Message) -> None:
        if self.broken:
            raise OSError("connection reset by peer")
        while self._gate is not None:
            await self._gate.wait()
        if message["type"] == "websocket.send":
            data = message.get("text")
            frame: str | bytes = data if data is not None else message["bytes"]
            if frame == "2" and self.pong:
                self._to_server.send_nowait({"type": "websocket.receive", "text": "3"})
            else:
                self._frames_in.send_nowait(frame)
        elif message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)

    async def _run(self, scope: Scope) -> None:
        try:
            with self.task_scope:
                await self.sio.engine(scope, self._server_inbox.receive, self._send)
        finally:
            self.finished.set()

    async def open(self) -> WsClient:
        """Connect; a direct WebSocket reads the OPEN packet, an upgrade does not."""
        query = "EIO=4&transport=websocket"
        if self.upgrade_sid:
            query += f"&sid={self.upgrade_sid}"
        self.sio.engine.start_soon(self._run, _scope("websocket", query))
        self._to_server.send_nowait({"type": "websocket.connect"})
        if not self.upgrade_sid:
            opening = await self.recv()
            assert isinstance(opening, str), opening
            assert opening.startswith("0"), opening
            self.sid = json.loads(opening[1:])["sid"]
        return self

    def send_raw(self, frame: str) -> None:
        self._to_server.send_nowait({"type": "websocket.receive", "text": frame})

    def send(self, packet: str) -> None:
        """Send a Socket.IO packet (an Engine.IO message)."""
        self.send_raw("4" + packet)

    def disconnect(self, code: int = 1000) -> None:
        """The connection is gone, as the ASGI server reports it."""
        self._to_server.send_nowait({"type": "websocket.disconnect", "code": code})

    async def recv(self) -> str | bytes:
        with anyio.fail_after(STEP):
            return await self._frames.receive()

    async def recv_message(self) -> str:
        """The next Socket.IO packet (Engine.IO pings and noops skipped)."""
        while True:
            frame = await self.recv()
            if isinstance(frame, str) and frame.startswith("4"):
                return frame[1:]

    async def join(self, namespace: str = "/", auth: dict[str, Any] | None = None) -> str:
        """CONNECT to ``namespace``; return the socket id from the server's reply."""
        prefix = "" if namespace == "/" else namespace + ","
        self.send("0" + prefix + (json.dumps(auth) if auth else ""))
        reply = await self.recv_message()
        while reply.startswith("2"):  # a broadcast to a namespace joined before
            reply = await self.recv_message()
        assert reply.startswith("0" + prefix), reply
        sid: str = json.loads(reply[1 + len(prefix) :])["sid"]
        return sid

    def stall(self) -> None:
        """Stop taking frames, like a client whose TCP window is full."""
        self._gate = anyio.Event()

    def resume(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.set()

    async def aclose(self) -> None:
        """Release the in-memory pipes once the connection's task has ended."""
        await self.finished.wait()
        for stream in (self._to_server, self._server_inbox, self._frames_in, self._frames):
            await stream.aclose()


class PollingClient:
    """A long-polling client: each request runs through the engine's ASGI entry."""

    def __init__(self, sio: Server) -> None:
        self.sio = sio
        self.sid = ""

    async def request(
        self, method: str, body: str = "", *, vanish: anyio.Event | None = None
    ) -> tuple[int, str]:
        """One HTTP request; ``vanish`` set while it waits means the client went away."""
        query = "EIO=4&transport=polling" + (f"&sid={self.sid}" if self.sid else "")
        delivered = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body.encode(), "more_body": False}
            if vanish is None:
                await anyio.sleep_forever()
            else:
                await vanish.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.sio.engine(_scope("http", query, method), receive, send)
        return status, b"".join(chunks).decode()

    async def open(self) -> PollingClient:
        status, text = await self.request("GET")
        assert status == 200, (status, text)
        assert text.startswith("0"), text
        self.sid = json.loads(text[1:])["sid"]
        return self

    async def post(self, payload: str) -> None:
        status, text = await self.request("POST", payload)
        assert (status, text) == (200, "ok"), (status, text)

    async def get(self) -> list[str]:
        """One poll; a ping in it is answered at once, as a client does."""
        status, text = await self.request("GET")
        assert status == 200, (status, text)
        packets = text.split("\x1e") if text else []
        if "2" in packets:
            await self.post("3")
        return packets

    async def vanish_while_polling(self, session: EngineSession) -> None:
        """Leave a GET waiting on the server, then disappear (the request is dropped)."""
        while True:
            vanish = anyio.Event()
            answered: list[tuple[int, str]] = []

            async def poll() -> None:
                answered.append(await self.request("GET", vanish=vanish))  # noqa: B023

            async with anyio.create_task_group() as tg:
                tg.start_soon(poll)
                await until(lambda: bool(answered) or session.poll_pending)  # noqa: B023
                vanish.set()
            status, text = answered[0]
            if status == 0:
                return  # no answer: the server saw the client go while its GET waited
            # Answered just before the client went: it got the packets, so it polls on.
            assert status == 200, (status, text)
            if "2" in text.split("\x1e"):
                await self.post("3")

    async def join(self, auth: dict[str, Any] | None = None) -> str:
        await self.post("40" + (json.dumps(auth) if auth else ""))
        while True:
            for packet in await self.get():
                if packet.startswith("40"):
                    sid: str = json.loads(packet[2:])["sid"]
                    return sid
