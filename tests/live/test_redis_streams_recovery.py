"""The Redis Streams adapter's recovery store against a real Redis, and against Node's.

Two adapters in this process play two nodes (each with its own factory: its own
link and stream reader), with the recording namespace of the adapter unit tests
as their local side. A Node server with @socket.io/redis-streams-adapter 0.3
(tests/node/streams_sessions.mjs) writes a session and events we restore, and
restores one we wrote.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
import redis as redis_py

from realtime.adapters import BroadcastOptions, SocketId
from realtime.adapters.recovery import (
    RecoveryError,
    RecoveryFailure,
    RecoveryOptions,
    RestoredSession,
    SessionRecord,
)
from realtime.adapters.redis_streams import RedisStreamsAdapter
from realtime.exceptions import ClusterUnavailableError
from realtime.socketio.packets import Packet, PacketType
from tests.live.redis_servers import (
    RedisServer,
    redis_cluster,
    redis_server,
    require_shared_redis,
    unique_key,
)
from tests.servers import node_json
from tests.unit.test_adapter_memory import RecordingNamespace

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.anyio, pytest.mark.timeout(60)]

REDIS = "redis://127.0.0.1:6379"
WINDOW = 30.0  # max_disconnection_duration of these tests


@pytest.fixture
def key() -> Iterator[str]:
    """A stream name and channel prefix of this test only, deleted afterwards."""
    require_shared_redis()
    name = unique_key()
    yield name
    client = redis_py.Redis()
    client.delete(name, *client.keys(f"{name}:session:*"), *client.keys(f"{{{name}:session:*"))
    client.close()


@asynccontextmanager
async def node(
    key: str, url: str = REDIS, **options: Any
) -> AsyncIterator[tuple[RedisStreamsAdapter, RecordingNamespace]]:
    """One node: a streams adapter for "/" with its own link and reader, running."""
    factory = RedisStreamsAdapter.factory(
        url,
        stream_name=key,
        channel_prefix=key,
        session_key_prefix=f"{key}:session:",
        **options,
    )
    namespace = RecordingNamespace(recovery=RecoveryOptions(max_disconnection_duration=WINDOW))
    adapter = factory(namespace)
    async with factory.lifespan():
        await adapter.init()
        try:
            yield adapter, namespace
        finally:
            await adapter.close()


def event(*args: Any, ack: int | None = None) -> Packet:
    return Packet(PacketType.EVENT, "/", ["e", *args], ack)


def frames(namespace: RecordingNamespace, sid: SocketId) -> list[str]:
    return [str(f[0].ws) for s, f, _ in namespace.delivered if s == sid]


def stream(key: str) -> list[tuple[str, dict[bytes, bytes]]]:
    client = redis_py.Redis()
    try:
        return [(i.decode(), fields) for i, fields in client.xrange(key)]
    finally:
        client.close()


async def caught_up(adapter: RedisStreamsAdapter, key: str) -> None:
    """Until the adapter's reader has processed the stream's last entry."""
    last = stream(key)[-1][0]
    with anyio.fail_after(10):
        while adapter.recovery_offset() != last:
            await adapter.reader.wait_advanced()


async def restore(adapter: RedisStreamsAdapter, pid: str, offset: str | None) -> RestoredSession:
    attached: list[RestoredSession] = []
    restored = await adapter.restore_session(pid, offset, attached.append)
    assert attached == [restored]
    return restored


def record(pid: str, rooms: list[str], offset: str | None = None) -> SessionRecord:
    sid = SocketId(f"sid-{pid}")
    return SessionRecord(sid, pid, [sid, *rooms], {"n": 1, "blob": b"\x00\x01"}, offset)


async def test_each_node_delivers_in_stream_order_with_entry_ids_as_offsets(key: str) -> None:
    """Own recoverable broadcasts come back through the reader: two nodes sending at
    once deliver the same sequence, the stream's, each event with its entry id."""
    async with node(key) as (a, ns_a), node(key) as (b, ns_b):
        sa, sb = SocketId("sa"), SocketId("sb")
        await a.add_all(sa, [sa, "r"])
        await b.add_all(sb, [sb, "r"])
        async with anyio.create_task_group() as tg:
            for i in range(10):
                tg.start_soon(a.broadcast, event("a", i), BroadcastOptions(rooms=frozenset({"r"})))
                tg.start_soon(b.broadcast, event("b", i), BroadcastOptions())
        await caught_up(a, key)
        await caught_up(b, key)
        entries = [(i, f) for i, f in stream(key) if b"nsp" in f]
        assert len(entries) == 20
        expected = []
        for entry_id, fields in entries:
            args = json.loads(fields[b"data"])["packet"]["data"]
            expected.append("42" + json.dumps([*args, entry_id], separators=(",", ":")))
        assert frames(ns_a, sa) == frames(ns_b, sb) == expected
        # not recoverable: delivered at once, no offset, and peers get it from the stream
        await a.broadcast(event("v"), BroadcastOptions(volatile=True))
        assert frames(ns_a, sa)[-1] == '42["e","v"]'
        await caught_up(b, key)
        assert frames(ns_b, sb)[-1] == '42["e","v"]'


@pytest.mark.parametrize("replay_window", [3, 10_000])
async def test_missed_events_in_order_from_the_stream_and_the_ring(
    key: str, replay_window: int
) -> None:
    """What a session missed: broadcasts to its rooms or everyone, not to rooms it is
    not in, not excluding it, not volatile, in stream order with their ids: paged from
    Redis beyond the reader's window (3 entries), then from memory."""
    async with (
        node(key, replay_window=replay_window, restore_page_size=2) as (a, _),
        node(key) as (b, _),
    ):
        saved = record("p1", ["r"], offset=a.recovery_offset())
        await a.save_session(saved, connected=False)
        sends = [
            (event(1), BroadcastOptions(rooms=frozenset({"r"}))),
            (event(2), BroadcastOptions()),
            (event(3), BroadcastOptions(rooms=frozenset({"other"}))),
            (event(4), BroadcastOptions(except_rooms=frozenset({"r"}))),
            (event(5), BroadcastOptions(rooms=frozenset({"r"}), volatile=True)),
            (event(6, b"\xff"), BroadcastOptions(rooms=frozenset({saved.sid}))),
            (event(7), BroadcastOptions(rooms=frozenset({"other", "r"}))),
        ]
        for packet, opts in sends:
            await b.broadcast(packet, opts)
        await b.add_sockets(BroadcastOptions(rooms=frozenset({"r"})), ["x"])  # not an event
        await caught_up(a, key)
        ids = [i for i, f in stream(key) if f.get(b"type") == b"3"]
        restored = await restore(a, "p1", None)
        assert restored.record == saved
        assert restored.missed == [
            ["e", 1, ids[0]],
            ["e", 2, ids[1]],
            ["e", 6, b"\xff", ids[5]],
            ["e", 7, ids[6]],
        ]
        # joined to its rooms in the same step: the next event reaches it live
        assert a.socket_rooms(saved.sid) == {saved.sid, "r"}
        # from the client's own offset (newer than the record's)
        await a.save_session(saved, connected=False)
        assert (await restore(a, "p1", ids[1])).missed == restored.missed[2:]


async def test_refusals(key: str) -> None:
    async with node(key) as (a, _):
        offset = a.recovery_offset()
        assert offset is not None

        async def failure(pid: str, at: str | None) -> RecoveryFailure:
            with pytest.raises(RecoveryError) as caught:
                await a.restore_session(pid, at, lambda restored: None)
            return caught.value.failure

        assert await failure("nobody", offset) is RecoveryFailure.UNKNOWN_SESSION
        for i, bad in enumerate(("1-0", "x", "5-1\n", "99999999999999-0")):
            await a.save_session(record(f"p{i}", []), connected=False)
            assert await failure(f"p{i}", bad) is RecoveryFailure.UNKNOWN_OFFSET, bad
        await a.save_session(record("p", []), connected=False)
        assert await failure("p", None) is RecoveryFailure.UNKNOWN_OFFSET  # none at all
        # taken, even when refused (as Node's GETDEL): the session is gone
        assert await failure("p", offset) is RecoveryFailure.UNKNOWN_SESSION
        assert not a._owner_tokens  # a refused session leaves nothing in memory


async def test_an_offset_trimmed_from_the_stream_is_unknown(key: str) -> None:
    """``max_len`` bounds how far back a client recovers: once its offset is trimmed
    (and out of the reader's window), it gets a new session."""
    async with node(key, max_len=10, replay_window=5) as (a, _):
        saved = record("p", ["r"], offset=a.recovery_offset())
        await a.save_session(saved, connected=False)
        for i in range(250):
            await a.broadcast(event(i), BroadcastOptions(rooms=frozenset({"r"})))
        assert len(stream(key)) < 250  # MAXLEN ~ trims whole nodes of entries
        with pytest.raises(RecoveryError) as caught:
            await a.restore_session("p", None, lambda restored: None)
        assert caught.value.failure is RecoveryFailure.UNKNOWN_OFFSET


async def test_a_restored_session_is_not_overwritten_by_its_old_node(key: str) -> None:
    """The node that lost the client may save its stale copy after another node took
    the session up: the owner key refuses it; the new owner's saves go through."""
    client = redis_py.Redis()
    session_key = f"{key}:session:p"
    async with node(key) as (a, _), node(key) as (b, _):
        saved = record("p", ["r"], offset=a.recovery_offset())
        await a.save_session(saved, connected=True)
        assert 0 < client.pttl(session_key) <= 2 * WINDOW * 1000  # live: twice the window
        assert client.pttl(f"{{{session_key}}}owner") > WINDOW * 1000
        await restore(b, "p", None)
        await a.save_session(saved, connected=True)
        await a.save_session(saved, connected=False)
        assert client.get(session_key) is None
        await b.save_session(saved, connected=False)
        assert 0 < client.pttl(session_key) <= WINDOW * 1000
        await b.discard_session("p")
        assert client.exists(session_key, f"{{{session_key}}}owner") == 0
    client.close()


def run_node(key: str, *args: str) -> dict[str, Any]:
    out = node_json(
        "streams_sessions.mjs", REDIS, key, *args, package="@socket.io/redis-streams-adapter"
    )
    return dict(out)


async def test_a_session_node_wrote_is_restored_here(key: str) -> None:
    async with node(key) as (a, _):
        offset = a.recovery_offset()
        node_session = f"{key}:session:from-node"
        await anyio.to_thread.run_sync(run_node, key, "write", "from-node")
        assert redis_py.Redis().exists(node_session)
        await caught_up(a, key)
        ids = [i for i, f in stream(key) if f.get(b"type") == b"3"]
        restored = await restore(a, "from-node", offset)
        assert restored.record == SessionRecord(
            SocketId("node-sid"), "from-node", ["node-sid", "r"], {"from": "node"}
        )
        assert restored.missed == [["from-node", 1, b"\x07", ids[0]], ["from-node", 2, ids[1]]]


async def test_a_session_written_here_is_restored_by_node(key: str) -> None:
    async with node(key) as (a, _):
        offset = a.recovery_offset()
        assert offset is not None
        saved = record("from-py", ["r"], offset=offset)
        await a.save_session(saved, connected=False)
        await a.broadcast(event("to-r", b"\x01"), BroadcastOptions(rooms=frozenset({"r"})))
        await a.broadcast(event("to-other"), BroadcastOptions(rooms=frozenset({"other"})))
        await a.broadcast(event("to-all"), BroadcastOptions())
        ids = [i for i, f in stream(key) if f.get(b"type") == b"3"]
        out = await anyio.to_thread.run_sync(run_node, key, "restore", "from-py", offset)
    session = out["session"]
    assert session["sid"] == saved.sid
    assert session["rooms"] == saved.rooms
    assert session["data"]["n"] == 1
    assert session["missedPackets"] == [
        ["e", "to-r", {"bytes": [1]}, ids[0]],
        ["e", "to-all", ids[2]],
    ]


async def test_namespaces_spread_over_streams_as_node_routes_them(key: str) -> None:
    """``stream_count`` 3: each namespace's entries go to the stream Node's hash names
    (a negative hash gives "<name>--2", as in Node) and its reader delivers them."""
    factories = [
        RedisStreamsAdapter.factory(REDIS, stream_name=key, channel_prefix=key, stream_count=3)
        for _ in range(2)
    ]
    names = ["/", "/notifications"]
    namespaces = [[RecordingNamespace(name=n) for n in names] for _ in factories]
    adapters = [[f(ns) for ns in row] for f, row in zip(factories, namespaces, strict=True)]
    async with factories[0].lifespan(), factories[1].lifespan():
        for adapter in adapters[0] + adapters[1]:
            await adapter.init()
        sid = SocketId("s")
        for adapter in adapters[0]:
            await adapter.add_all(sid, [sid])
        for adapter, name in zip(adapters[1], names, strict=True):
            await adapter.broadcast(Packet(PacketType.EVENT, name, ["e", name]), BroadcastOptions())
        with anyio.fail_after(10):
            while not all(ns.delivered for ns in namespaces[0]):  # noqa: ASYNC110
                await anyio.sleep(0.02)
        for adapter in adapters[0] + adapters[1]:
            await adapter.close()
    assert [a.stream for a in adapters[0]] == [f"{key}-{47 % 3}", f"{key}--2"]
    frames_at = [[f[0].ws for _, f, _ in ns.delivered] for ns in namespaces[0]]
    assert frames_at == [['42["e","/"]'], ['42/notifications,["e","/notifications"]']]
    redis_py.Redis().delete(*(a.stream for a in adapters[0]))


async def test_on_a_redis_cluster() -> None:
    """The stream, the session key and its owner key (one slot), pub/sub and the server
    count on a Redis Cluster of three primaries."""
    with redis_cluster() as ports:
        url = f"redis+cluster://127.0.0.1:{ports[0]}"
        async with node("k", url) as (a, ns), node("k", url) as (b, _):
            sid = SocketId("s")
            await a.add_all(sid, [sid, "r"])
            saved = record("p", ["r"], offset=a.recovery_offset())
            await a.save_session(saved, connected=True)
            await b.broadcast(event(1), BroadcastOptions(rooms=frozenset({"r"})))
            with anyio.fail_after(10):
                while not frames(ns, sid):
                    await a.reader.wait_advanced()
            offset = a.recovery_offset()
            assert frames(ns, sid) == [f'42["e",1,"{offset}"]']
            assert await a.link.server_count(a.channels.public) == 2
            restored = await restore(b, "p", None)
            assert restored.missed == [["e", 1, offset]]
            await a.save_session(saved, connected=False)  # the stale node: refused
            with pytest.raises(RecoveryError):
                await restore(b, "p", None)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


async def test_redis_down_local_delivery_goes_on_and_restores_fail_as_unavailable(
    private_redis: RedisServer,
) -> None:
    async with node("s", private_redis.url, backoff_max=0.2, publish_timeout=0.5) as (a, ns):
        sid = SocketId("s1")
        await a.add_all(sid, [sid])
        await a.save_session(record("p", []), connected=False)
        assert a.health.connected
        private_redis.stop()
        with anyio.fail_after(10):
            while a.health.connected:  # noqa: ASYNC110 - the link notices by itself
                await anyio.sleep(0.02)
        with pytest.raises(ClusterUnavailableError):
            await a.broadcast(event("down"), BroadcastOptions())
        assert frames(ns, sid) == ['42["e","down"]']  # delivered here, with no offset
        with pytest.raises(RecoveryError) as caught:
            await a.restore_session("p", a.recovery_offset(), lambda restored: None)
        assert caught.value.failure is RecoveryFailure.STORE_UNAVAILABLE
        private_redis.start()
        with anyio.fail_after(20):
            while not a.health.connected:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        await a.broadcast(event("up"), BroadcastOptions())
        with anyio.fail_after(10):
            while len(frames(ns, sid)) < 2:
                await a.reader.wait_advanced()
        assert frames(ns, sid)[1].startswith('42["e","up","')
