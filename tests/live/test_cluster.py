"""Two and three Python nodes in separate processes, one Redis, official socket.io-client.

tests/node/cluster_scenario.mjs connects one client to each node and drives every
cluster operation through tests/live/cluster_node.py (examples/cluster/node.py and
a few handlers more); the assertions below read what the clients saw.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.live.redis_servers import (
    cluster_nodes,
    get_json,
    healthy,
    require_shared_redis,
    unique_key,
    wait_until,
)
from tests.servers import ROOT, require, require_node

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.node]
NODE_DIR = ROOT / "tests" / "node"


def run_scenario(urls: list[str]) -> dict[str, Any]:
    node = require_node()
    require((NODE_DIR / "node_modules" / "socket.io-client").is_dir(), "npm ci in tests/node")
    for base in urls:
        wait_until(lambda base=base: healthy(base), f"{base} subscribed")
    health = get_json(urls[0] + "/health")
    assert health["connected"] is True
    assert health["subscribed"] is True
    run = subprocess.run(
        [node, "cluster_scenario.mjs", *urls],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    seen: dict[str, Any] = json.loads(run.stdout)
    return seen


@pytest.mark.parametrize("names", [["a", "b"], ["a", "b", "c"]], ids=["two", "three"])
def test_every_cluster_operation(names: list[str]) -> None:
    redis = require_shared_redis()
    with cluster_nodes(redis, names, unique_key()) as nodes:
        seen = run_scenario([base for base, _ in nodes])
    check_scenario(seen, names)


def test_a_node_on_trio() -> None:
    """The adapter's link runs on trio too: a node under hypercorn's trio worker
    (this process) drives the same scenario with a uvicorn node."""
    from tests.live.cluster_node import make
    from tests.live.engine_servers import serve_hypercorn_trio

    redis = require_shared_redis()
    key = unique_key()
    with (
        serve_hypercorn_trio(make(redis, "t", key)) as trio_base,
        cluster_nodes(redis, ["a"], key) as nodes,
    ):
        seen = run_scenario([trio_base, nodes[0][0]])
    check_scenario(seen, ["t", "a"])


def check_scenario(seen: dict[str, Any], names: list[str]) -> None:
    n = len(names)
    others = names[1:]
    assert seen["names"] == names  # each client got ``hello`` from its own node
    assert seen["count"] == n  # fetch_sockets counts every node's sockets
    assert seen["localCount"] == 1  # .local stays on the node
    # a broadcast from a client of node a reaches every client, binary intact
    assert seen["broadcast"] == [["all", 42, [1, 2, 3], {"k": None}]] * n
    assert seen["join"] is True
    assert seen["roomMessage"] == ["hi"]
    assert seen["roomSeenBy"] == [0, 1] + [0] * (n - 2)  # only the room's member
    # server-side emit with acks: each other node's ``who`` handler answered
    assert seen["askServers"] == sorted(others)
    # broadcast with acks across nodes: every client answered with its node's name
    assert seen["askClients"] == sorted(names)
    # fetch_sockets: remote sockets with rooms, data and handshake
    details = seen["details"]
    assert sorted(d["data"]["node"] for d in details) == sorted(names)
    by_node = {d["data"]["node"]: d for d in details}
    assert "r" in by_node[names[1]]["rooms"]
    for d in details:
        assert d["id"] in d["rooms"]
        assert d["url"].startswith("ws://127.0.0.1:")
    assert "r" in seen["allRooms"]
    assert all(d["id"] in seen["allRooms"] for d in details)
    # sockets_join / sockets_leave on a remote node's sockets
    assert seen["socketsJoin"] is True
    assert seen["r2"] == ["to-r2"]
    assert seen["socketsLeave"] is True
    assert "r2" not in seen["allRoomsAfterLeave"]
    # a remote socket from fetch_sockets: emit and join travel to its node
    assert seen["remoteEmit"] == n - 1
    assert seen["remoteEmitGot"] == [["to-you"]] * (n - 1)
    assert seen["remoteJoin"] == n - 1
    assert seen["r3"] == [["to-r3"]] * (n - 1)
    # .local broadcast: only node a's client
    assert seen["localSeenBy"] == [1] + [0] * (n - 1)
    # disconnect_sockets across nodes
    assert seen["disconnectReasons"] == ["io server disconnect"] * (n - 1)
    assert seen["countAfter"] == 1
