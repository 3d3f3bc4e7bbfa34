"""Our emitter driving a cluster of two Node socket.io nodes on a real Redis.

The nodes are ``node-twin.mjs`` (socket.io 4.8 + ``@socket.io/redis-adapter``
8.3); the clients are the official ``socket.io-client``. Every test runs with the
blocking :class:`Emitter` and with :class:`AsyncEmitter` on asyncio and on trio.

Where a test checks that a client did *not* get an event, it then sends a
sentinel the same way: Redis delivers one publisher's messages in order, each
node reads them from one connection, and a client's events arrive in order on
its connection, so once the sentinel is there the earlier event would be too.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal

from realtime import AsyncEmitter, Emitter
from tests import emitter_vectors
from tests.live.node_cluster import CLUSTER_DIR, NodeClients, node_twin
from tests.servers import ROOT, require, require_node

pytestmark = [pytest.mark.live, pytest.mark.node, pytest.mark.redis, pytest.mark.timeout(60)]

REDIS_URL = "redis://127.0.0.1:6379/0"

Run = Callable[[Callable[[Any], Any]], Any]
Sids = dict[str, str]


def redis_is_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 6379), 1):
        return True
    return False


@pytest.fixture(scope="module")
def node() -> str:
    return require_node()


@pytest.fixture(scope="module")
def cluster(node: str) -> Iterator[tuple[str, str, str]]:
    """Two Node nodes A and B on a key of their own: ``(key, url_a, url_b)``."""
    require(redis_is_up(), "Redis is not running at 127.0.0.1:6379")
    key = f"rt-emitter-{uuid.uuid4().hex[:8]}"
    with (
        node_twin(node, name="A", key=key, redis_url=REDIS_URL) as url_a,
        node_twin(node, name="B", key=key, redis_url=REDIS_URL) as url_b,
    ):
        yield key, url_a, url_b


@pytest.fixture
def clients(node: str, cluster: tuple[str, str, str]) -> Iterator[tuple[NodeClients, Sids]]:
    """c1 on node A and c2 on node B in ``/``, c3 on node B in ``/chat``; their socket ids."""
    _, url_a, url_b = cluster
    driver = NodeClients(node)
    try:
        sids = {
            "c1": driver.connect("c1", url_a),
            "c2": driver.connect("c2", url_b),
            "c3": driver.connect("c3", url_b, "/chat"),
        }
        yield driver, sids
    finally:
        driver.close()


@pytest.fixture(params=["sync", "asyncio", "trio"])
def run(request: pytest.FixtureRequest, cluster: tuple[str, str, str]) -> Iterator[Run]:
    """``run(lambda emitter: emitter.to(...).emit(...))`` with the emitter under test.

    The async emitter lives in an event loop of the chosen backend in a thread;
    each call runs there and is awaited.
    """
    key = cluster[0]
    if request.param == "sync":
        with Emitter(REDIS_URL, key=key) as emitter:
            yield lambda act: act(emitter)
        return
    with (
        start_blocking_portal(backend=request.param) as portal,
        portal.wrap_async_context_manager(AsyncEmitter(REDIS_URL, key=key)) as emitter,
    ):
        yield lambda act: portal.call(act, emitter)


def test_emit_reaches_every_client_of_its_namespace(run: Run, clients: Any) -> None:
    driver, _ = clients
    receivers = run(lambda e: e.emit("news", 1, "two", {"three": [3.5, None, True]}, "é"))
    assert receivers == 2  # one subscription per node
    for cid in ("c1", "c2"):
        assert driver.event(cid, "news") == [1, "two", {"three": [3.5, None, True]}, "é"]
    run(lambda e: e.of("chat").emit("chat-news", "x"))
    assert driver.event("c3", "chat-news") == ["x"]

    run(lambda e: e.of("/chat").emit("sentinel"))
    run(lambda e: e.emit("sentinel"))
    for cid in ("c1", "c2", "c3"):
        driver.event(cid, "sentinel")
    assert driver.received("c3", "news") == []
    assert driver.received("c1", "chat-news") == driver.received("c2", "chat-news") == []


def test_emit_to_rooms_and_except_rooms(run: Run, clients: Any) -> None:
    driver, sids = clients
    assert driver.ask("c1", "join", "lobby") is True
    run(lambda e: e.to("lobby").emit("room-news", 1))
    assert driver.event("c1", "room-news") == [1]
    run(lambda e: e.except_("lobby").emit("not-lobby", 2))
    assert driver.event("c2", "not-lobby") == [2]
    run(lambda e: e.in_(["lobby", sids["c2"]]).except_(sids["c1"]).emit("some", 3))
    assert driver.event("c2", "some") == [3]

    run(lambda e: e.emit("sentinel"))
    driver.event("c1", "sentinel")
    driver.event("c2", "sentinel")
    assert driver.received("c1", "not-lobby") == driver.received("c1", "some") == []
    assert driver.received("c2", "room-news") == []


def test_binary_arrives_as_binary(run: Run, clients: Any) -> None:
    driver, _ = clients
    run(lambda e: e.emit("file", b"\x00\x01\xff", {"nested": [bytearray(b"abc")]}))
    expected = [{"$bin": "0001ff"}, {"nested": [{"$bin": "616263"}]}]
    assert driver.event("c1", "file") == expected
    assert driver.event("c2", "file") == expected


def test_sockets_join_and_leave(run: Run, clients: Any) -> None:
    driver, sids = clients
    run(lambda e: e.to(sids["c2"]).sockets_join(["club", "other"]))
    run(lambda e: e.except_(sids["c2"]).sockets_join("rest"))
    run(lambda e: e.to("club").emit("club-news", 1))
    run(lambda e: e.to("rest").emit("rest-news", 2))
    assert driver.event("c2", "club-news") == [1]
    assert driver.event("c1", "rest-news") == [2]

    run(lambda e: e.to(sids["c2"]).sockets_leave("club"))
    run(lambda e: e.to("club").emit("club-after", 3))
    run(lambda e: e.emit("sentinel"))
    driver.event("c1", "sentinel")
    driver.event("c2", "sentinel")
    assert driver.received("c1", "club-news") == driver.received("c2", "rest-news") == []
    assert driver.received("c2", "club-after") == []
    assert sorted(driver.ask("c2", "rooms")) == sorted([sids["c2"], "other"])
    assert driver.received("c3", "club-news") == []  # another namespace


def test_disconnect_sockets(run: Run, clients: Any) -> None:
    driver, sids = clients
    run(lambda e: e.to(sids["c1"]).disconnect_sockets())
    assert driver.disconnected("c1") == "io server disconnect"
    run(lambda e: e.of("/chat").disconnect_sockets(close=True))
    # the server sends DISCONNECT before it closes the connection: the client sees that
    assert driver.disconnected("c3") == "io server disconnect"
    run(lambda e: e.emit("sentinel"))
    driver.event("c2", "sentinel")
    assert driver.ask("c2", "count") == 1


def test_server_side_emit_reaches_every_node(run: Run, clients: Any) -> None:
    driver, _ = clients
    token = uuid.uuid4().hex
    run(lambda e: e.server_side_emit("note", token, 1, {"a": [None]}))
    run(lambda e: e.server_side_emit("note", token, b"\x01\x02"))  # goes as msgpack
    run(lambda e: e.emit("sentinel"))
    for cid in ("c1", "c2"):  # c1 asks node A, c2 node B
        driver.event(cid, "sentinel")
        notes = [note for note in driver.ask(cid, "notes") if note[0] == token]
        assert notes == [[token, 1, {"a": [None]}], [token, {"$bin": "0102"}]]


def test_node_twins_form_a_cluster(node: str, cluster: tuple[str, str, str], clients: Any) -> None:
    """The twin's reference handlers, and the Node emitter script, on the same cluster."""
    driver, _ = clients
    key = cluster[0]
    assert driver.ask("c1", "count") == 2
    assert driver.ask("c1", "ask-servers") == ["B"]
    assert sorted(driver.ask("c2", "ask-clients")) == ["c1", "c2"]
    driver.emit("c1", "broadcast", "x", 1)
    assert driver.event("c2", "broadcast") == ["x", 1]
    assert driver.ask("c2", "join", "r") is True
    driver.emit("c1", "to-room", "r", {"y": 2})
    assert driver.event("c2", "room-message") == [{"y": 2}]

    script = [node, str(CLUSTER_DIR / "node-emitter.mjs"), "--redis", REDIS_URL, "--key", key]
    emit = ["--to", "r", "emit", "cli", json.dumps({"$bin": "ff"}), "2"]
    subprocess.run(script + emit, check=True, timeout=30, cwd=ROOT)
    assert driver.event("c2", "cli") == [{"$bin": "ff"}, 2]

    # the Node emitter sends server-side emits as JSON: a Buffer reaches a Node node
    # as Node's JSON form of one (tests/live/test_node_emitter.py expects the same of ours)
    token = uuid.uuid4().hex
    note = ["server-side-emit", "note", json.dumps(token), json.dumps({"$bin": "0102"})]
    subprocess.run(script + note, check=True, timeout=30, cwd=ROOT)
    subprocess.run([*script, "emit", "after-note"], check=True, timeout=30, cwd=ROOT)
    driver.event("c2", "after-note")  # node B has handled the note before this
    notes = [n for n in driver.ask("c2", "notes") if n[0] == token]
    assert notes == [[token, {"type": "Buffer", "data": [1, 2]}]]


def test_the_recorded_vectors_are_what_the_node_emitter_publishes(node: str) -> None:
    """``tests/unit/emitter_vectors.json`` is current: record it again and compare."""
    require(redis_is_up(), "Redis is not running at 127.0.0.1:6379")
    vectors = emitter_vectors.load()
    published = emitter_vectors.record(node, [v["op"] for v in vectors], REDIS_URL)
    recorded = [(v["channel"], v["payload"]) for v in vectors]
    assert [(channel, payload.hex()) for channel, payload in published] == recorded
