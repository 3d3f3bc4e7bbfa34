"""A polling POST is over once it is answered: the client's next POST may follow at once.

The client may send its next POST as soon as it has the answer to the last
one, and an ASGI server can hand that request to the app while the task that
wrote the answer has not run again (hypercorn on trio switches tasks inside
the write). That POST must be taken, not refused as a second concurrent POST
(which closes the session with "transport error"). Seen live under load in
tests/live/test_inbound_bound.py; here the next POST is sent from inside the
first one's write, so the order is certain.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from starlette.types import Message, Scope

from realtime.engineio import CloseReason, EngineConfig, EngineServer, EngineSession

pytestmark = pytest.mark.anyio


class Handler:
    def __init__(self) -> None:
        self.messages: list[str | bytes] = []
        self.reasons: list[CloseReason] = []

    async def on_connect(self, session: EngineSession) -> None:
        pass

    async def on_message(self, session: EngineSession, data: str | bytes) -> None:
        self.messages.append(data)

    async def on_disconnect(self, session: EngineSession, reason: CloseReason) -> None:
        self.reasons.append(reason)


def http_scope(method: str, sid: str | None) -> Scope:
    query = "EIO=4&transport=polling" + (f"&sid={sid}" if sid else "")
    return {
        "type": "http",
        "method": method,
        "path": "/engine.io/",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "scheme": "http",
        "http_version": "1.1",
    }


async def request(
    engine: EngineServer,
    method: str,
    sid: str | None = None,
    body: bytes = b"",
    on_answer: Callable[[], Awaitable[None]] | None = None,
) -> tuple[int, bytes]:
    """One in-memory request; ``on_answer`` runs inside the write of the response body."""
    unread = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        if unread:
            return unread.pop()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if on_answer is not None and not message.get("more_body", False):
                await on_answer()

    await engine(http_scope(method, sid), receive, send)
    return status, b"".join(chunks)


async def test_next_post_arriving_while_the_answer_is_written() -> None:
    handler = Handler()
    engine = EngineServer(handler, EngineConfig())
    async with engine.lifespan():
        status, opened = await request(engine, "GET")
        assert status == 200
        assert opened.startswith(b"0")
        sid: str = json.loads(opened[1:])["sid"]
        second: list[Any] = []

        async def next_post() -> None:
            second.append(await request(engine, "POST", sid, b"4second"))

        first = await request(engine, "POST", sid, b"4first", on_answer=next_post)
        assert first == (200, b"ok")
        assert second == [(200, b"ok")]
        assert handler.messages == ["first", "second"]
        assert not engine.sessions[sid].closed
        assert handler.reasons == []
