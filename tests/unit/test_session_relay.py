"""The session relay's tunnel rules, on an in-process bus.

The bus delivers each publish to the channel's subscribers in order and returns
how many there were, as Redis pub/sub does; that is all the rules below depend
on (tests/live/test_session_relay.py runs the same relay over a real Redis).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import anyio
import msgpack
import pytest
from starlette.types import Message, Receive, Scope, Send

from realtime.engineio.config import EngineConfig
from realtime.engineio.relay import SID_LENGTH, Dispatcher, SessionRelay

pytestmark = pytest.mark.anyio


class MemoryBus:
    """Pub/sub in one process: ordered, and PUBLISH answers the receiver count."""

    counts_receivers = True

    def __init__(self) -> None:
        self.channels: dict[str, Dispatcher] = {}
        self.published: list[dict[str, Any]] = []
        #: Set to drop frames of this kind instead of delivering them.
        self.drop: set[tuple[str, int]] = set()

    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> list[int]:
        await anyio.lowlevel.checkpoint()
        return [self._deliver(channel, data) for channel, data in items]

    def _deliver(self, channel: str, data: bytes) -> int:
        frame = msgpack.unpackb(data, raw=False)
        self.published.append(frame)
        if (frame["k"], frame.get("q", -1)) in self.drop:
            return 1
        handler = self.channels.get(channel)
        if handler is None:
            return 0
        handler(channel, data)
        return 1

    async def listen(
        self, channels: dict[str, Dispatcher], patterns: dict[str, Dispatcher]
    ) -> None:
        self.channels.update(channels)

    async def unlisten(self, channels: Iterable[str], patterns: Iterable[str]) -> None:
        for channel in channels:
            self.channels.pop(channel, None)

    async def server_count(self, channel: str) -> int:
        return 1 if channel in self.channels else 0


WS_SCOPE: Scope = {
    "type": "websocket",
    "path": "/engine.io/",
    "query_string": b"EIO=4&transport=websocket&sid=x",
    "headers": [(b"host", b"example")],
    "client": ("127.0.0.1", 1),
}


class Client:
    """The client end of a WebSocket, as the ASGI server presents it to the app."""

    def __init__(self, frames: int) -> None:
        self.to_app: list[Message] = [{"type": "websocket.connect"}]
        self.to_app += [{"type": "websocket.receive", "text": str(n)} for n in range(frames)]
        self.reads = 0
        self.sent: list[Message] = []
        self.more = anyio.Event()

    async def receive(self) -> Message:
        if self.reads < len(self.to_app):
            self.reads += 1
            return self.to_app[self.reads - 1]
        await self.more.wait()
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def never_adopt(*args: Any) -> None:
    raise AssertionError("no session moves in these tests")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


async def test_sids_carry_the_node_id() -> None:
    bus = MemoryBus()
    a, b = SessionRelay(bus, "k"), SessionRelay(bus, "k")
    sid = a.new_sid()
    assert len(sid) == SID_LENGTH
    assert a.owner(sid) is None
    assert b.owner(sid) == a.node_id
    assert b.owner("short") is None


async def test_a_stalled_owner_holds_back_the_client_after_the_window() -> None:
    """The owner's app reads nothing after the handshake: the node the client
    reached stops reading from the client once two windows of frames wait."""
    bus = MemoryBus()
    config = EngineConfig(relay_window=4)
    owner, edge = SessionRelay(bus, "k"), SessionRelay(bus, "k")
    stalled = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        stalled.set()
        await anyio.sleep_forever()

    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the edge serves nothing")

    client = Client(frames=100)
    async with (
        owner.running(app, never_adopt, config),
        edge.running(never, never_adopt, config),
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(edge.forward, owner.node_id, WS_SCOPE, client.receive, client.send)
        with anyio.fail_after(5):
            await stalled.wait()
        for _ in range(50):
            await anyio.lowlevel.checkpoint()
        # Per direction: a window in flight and a window queued to be
        # published, plus the one frame read and waiting for room.
        reads = client.reads
        assert reads <= 2 * config.relay_window + 2
        for _ in range(50):
            await anyio.lowlevel.checkpoint()
        assert client.reads == reads  # stalled, not growing
        assert client.sent == [{"type": "websocket.accept"}]
        tg.cancel_scope.cancel()


async def test_a_lost_frame_ends_the_connection_instead_of_reordering() -> None:
    bus = MemoryBus()
    config = EngineConfig()
    owner, edge = SessionRelay(bus, "k"), SessionRelay(bus, "k")
    got: list[Message] = []
    ended = anyio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["realtime.relayed"] is True
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            got.append(message)
            if message["type"] == "websocket.disconnect":
                ended.set()
                return

    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the edge serves nothing")

    bus.drop.add(("m", 3))  # the client's third text frame never arrives
    client = Client(frames=5)
    async with (
        owner.running(app, never_adopt, config),
        edge.running(never, never_adopt, config),
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(edge.forward, owner.node_id, WS_SCOPE, client.receive, client.send)
        with anyio.fail_after(5):
            await ended.wait()
        tg.cancel_scope.cancel()
    texts = [m.get("text") for m in got if m["type"] == "websocket.receive"]
    assert texts == ["0", "1"]  # never "3" after "1"
    assert got[-1]["type"] == "websocket.disconnect"


async def test_an_owner_that_is_gone_is_reported_before_anything_is_sent() -> None:
    bus = MemoryBus()
    config = EngineConfig()
    edge = SessionRelay(bus, "k")

    async def never(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("the edge serves nothing")

    client = Client(frames=1)
    async with edge.running(never, never_adopt, config):
        with anyio.fail_after(5):
            reached = await edge.forward("nobody00", WS_SCOPE, client.receive, client.send)
    assert reached is False
    assert client.sent == []
    assert edge.tunnels == 0
