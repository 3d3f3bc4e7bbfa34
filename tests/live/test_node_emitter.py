"""Node's ``@socket.io/redis-emitter`` 5 driving a cluster of two Python nodes on a real Redis.

The nodes are ``tests/live/cluster_node.py`` (``examples/cluster/node.py`` plus
test helpers) under uvicorn, each its own process; the emitter is
``tests/node/cluster/node-emitter.mjs``; the clients are the official
``socket.io-client``. Where a test checks that a client did *not* get an event, it
then has the emitter send a sentinel: Redis hands every subscriber the messages in
the order it took the PUBLISH commands, each node reads them from one connection,
and a client's events arrive in order, so once the sentinel is there an earlier
event would be too.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live.node_cluster import CLUSTER_DIR, NodeClients
from tests.live.redis_servers import cluster_nodes, healthy, require_shared_redis, wait_until
from tests.servers import ROOT, require, require_node

pytestmark = [pytest.mark.live, pytest.mark.node, pytest.mark.redis, pytest.mark.timeout(90)]

Op = dict[str, Any]
Sids = dict[str, str]


class NodeEmitter:
    """Runs ``node-emitter.mjs`` over a list of operations, each run a new Redis client."""

    def __init__(self, node: str, redis_url: str, key: str) -> None:
        self.args = [node, str(CLUSTER_DIR / "node-emitter.mjs"), "--redis", redis_url]
        self.args += ["--key", key]

    def run(self, *ops: Op) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            json.dump(list(ops), file)
            file.flush()
            # it exits once Redis has answered every PUBLISH
            subprocess.run([*self.args, "--ops", file.name], check=True, timeout=30, cwd=ROOT)


def emit(event: str, *args: Any, **target: Any) -> Op:
    return {"op": "emit", "event": event, "args": list(args), **target}


@pytest.fixture(scope="module")
def node() -> str:
    node = require_node()
    emitter_package = CLUSTER_DIR.parent / "node_modules" / "@socket.io" / "redis-emitter"
    require(emitter_package.is_dir(), "npm ci in tests/node")
    return node


@pytest.fixture(scope="module")
def cluster(node: str) -> Iterator[tuple[NodeEmitter, str, str]]:
    """Python nodes A and B (``/`` and ``/chat``) on a key of their own, and the emitter."""
    redis_url = require_shared_redis()
    key = f"rt-node-emitter-{uuid.uuid4().hex[:8]}"
    with cluster_nodes(redis_url, ["A", "B"], key, "--namespace", "/chat") as nodes:
        (url_a, _), (url_b, _) = nodes
        for base in (url_a, url_b):
            wait_until(lambda base=base: healthy(base), f"{base} subscribed")
        yield NodeEmitter(node, redis_url, key), url_a, url_b


@pytest.fixture
def clients(node: str, cluster: tuple[NodeEmitter, str, str]) -> Iterator[tuple[NodeClients, Sids]]:
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


@pytest.fixture
def emitter(cluster: tuple[NodeEmitter, str, str]) -> NodeEmitter:
    return cluster[0]


def test_emit_reaches_every_client_of_its_namespace(emitter: NodeEmitter, clients: Any) -> None:
    driver, _ = clients
    emitter.run(emit("news", 1, "two", {"three": [3.5, None, True]}, "é"))
    for cid in ("c1", "c2"):
        assert driver.event(cid, "news") == [1, "two", {"three": [3.5, None, True]}, "é"]
    emitter.run(emit("chat-news", "x", nsp="/chat"))
    assert driver.event("c3", "chat-news") == ["x"]

    emitter.run(emit("sentinel", nsp="/chat"), emit("sentinel"))
    for cid in ("c1", "c2", "c3"):
        driver.event(cid, "sentinel")
    assert driver.received("c3", "news") == []
    assert driver.received("c1", "chat-news") == driver.received("c2", "chat-news") == []


def test_emit_to_rooms_and_except_rooms(emitter: NodeEmitter, clients: Any) -> None:
    driver, sids = clients
    assert driver.ask("c1", "join", "lobby") is True
    emitter.run(
        emit("room-news", 1, to=["lobby"]),
        emit("not-lobby", 2, **{"except": ["lobby"]}),
        emit("some", 3, to=["lobby", sids["c2"]], **{"except": [sids["c1"]]}),
        emit("sentinel"),
    )
    assert driver.event("c1", "room-news") == [1]
    assert driver.event("c2", "not-lobby") == [2]
    assert driver.event("c2", "some") == [3]
    driver.event("c1", "sentinel")
    driver.event("c2", "sentinel")
    assert driver.received("c1", "not-lobby") == driver.received("c1", "some") == []
    assert driver.received("c2", "room-news") == []
    assert driver.received("c3", "room-news") == driver.received("c3", "not-lobby") == []


def test_binary_arrives_as_binary(emitter: NodeEmitter, clients: Any) -> None:
    driver, _ = clients
    emitter.run(emit("file", {"$bin": "0001ff"}, {"nested": [{"$bin": "616263"}], "n": 1}))
    expected = [{"$bin": "0001ff"}, {"nested": [{"$bin": "616263"}], "n": 1}]
    assert driver.event("c1", "file") == expected
    assert driver.event("c2", "file") == expected


def test_sockets_join_and_leave(emitter: NodeEmitter, clients: Any) -> None:
    driver, sids = clients
    emitter.run(
        {"op": "sockets-join", "to": [sids["c2"]], "rooms": ["club", "other"]},
        {"op": "sockets-join", "except": [sids["c2"]], "rooms": ["rest"]},
        emit("club-news", 1, to=["club"]),
        emit("rest-news", 2, to=["rest"]),
    )
    assert driver.event("c2", "club-news") == [1]
    assert driver.event("c1", "rest-news") == [2]
    assert driver.ask("c1", "rooms") == sorted([sids["c1"], "rest"])

    emitter.run(
        {"op": "sockets-leave", "to": [sids["c2"]], "rooms": ["club"]},
        emit("club-after", 3, to=["club"]),
        emit("sentinel"),
    )
    driver.event("c1", "sentinel")
    driver.event("c2", "sentinel")
    assert driver.received("c1", "club-news") == driver.received("c2", "rest-news") == []
    assert driver.received("c2", "club-after") == []
    assert driver.ask("c2", "rooms") == sorted([sids["c2"], "other"])
    assert driver.received("c3", "club-news") == []  # another namespace


def test_disconnect_sockets(emitter: NodeEmitter, clients: Any) -> None:
    driver, sids = clients
    emitter.run({"op": "disconnect-sockets", "to": [sids["c1"]]})
    assert driver.disconnected("c1") == "io server disconnect"
    emitter.run({"op": "disconnect-sockets", "nsp": "/chat", "close": True})
    # the server sends DISCONNECT before it closes the connection: the client sees that
    assert driver.disconnected("c3") == "io server disconnect"
    emitter.run(emit("sentinel"))
    driver.event("c2", "sentinel")
    assert driver.ask("c2", "count") == 1


def test_server_side_emit_reaches_every_node(emitter: NodeEmitter, clients: Any) -> None:
    driver, _ = clients
    token = uuid.uuid4().hex
    emitter.run(
        {"op": "server-side-emit", "event": "note", "args": [token, 1, {"a": [None]}]},
        {"op": "server-side-emit", "event": "note", "args": [token, {"$bin": "0102"}]},
        emit("sentinel"),
    )
    for cid in ("c1", "c2"):  # c1 asks node A, c2 node B
        driver.event(cid, "sentinel")
        notes = [note for note in driver.ask(cid, "notes") if note[0] == token]
        # the Node emitter sends server-side emits as JSON (JSON.stringify), so a
        # Buffer arrives as Node's JSON form of one, on a Node node as on ours
        buffer = {"type": "Buffer", "data": [1, 2]}
        assert notes == [[token, 1, {"a": [None]}], [token, buffer]]
