"""Connection state recovery across a cluster on Redis Streams: two Python nodes
(examples/cluster/node.py --recovery) and a Node socket.io 4.8 node with
@socket.io/redis-streams-adapter 0.3 (tests/node/cluster/node-twin.mjs --recovery),
one Redis, official socket.io-client clients (tests/node/cluster_recovery.mjs).

A client that loses its connection comes back on another node, Python or Node,
with its id, rooms and every event sent to its room meanwhile; clients of a node
killed with SIGKILL come back on a survivor with every event, once, in order.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.live.node_cluster import node_twin
from tests.live.redis_servers import healthy, require_shared_redis, unique_key, wait_until
from tests.servers import PYTHON, ROOT, require, require_node, spawn_process

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.node, pytest.mark.timeout(120)]

NODE_DIR = ROOT / "tests" / "node"
EXAMPLE = ROOT / "examples" / "cluster" / "node.py"
REDIS = "redis://127.0.0.1:6379"


@contextlib.contextmanager
def cluster() -> Iterator[dict[str, Any]]:
    """py1, py2 and node, on a stream and channels of this test only; yields their
    URLs by name and py1's process."""
    require_shared_redis()
    node = require_node()
    require((NODE_DIR / "node_modules" / "@socket.io" / "redis-streams-adapter").is_dir(), "npm ci")
    key = unique_key()

    def python_node(name: str) -> list[str]:
        return [PYTHON, str(EXAMPLE), "--redis", REDIS, "--name", name, "--key", key, "--recovery"]

    with (
        spawn_process(python_node("py1")) as (py1, victim),
        spawn_process(python_node("py2")) as (py2, _),
        node_twin(node, name="node", key=key, redis_url=REDIS, extra=["--recovery"]) as nd,
    ):
        for base in (py1, py2):
            wait_until(lambda base=base: healthy(base), f"{base} subscribed")
        try:
            yield {"py1": py1, "py2": py2, "node": nd, "victim": victim}
        finally:
            import redis as redis_py

            client = redis_py.Redis()
            client.delete(key)
            client.close()


def scenario(*args: str, client: str = "official") -> dict[str, Any]:
    env = dict(os.environ, CLIENT=client)
    if client == "realtime":
        require((ROOT / "client-js" / "node_modules").is_dir(), "npm ci in client-js")
        if not (ROOT / "client-js" / "dist" / "index.mjs").exists():
            build = ["node", "scripts/build.mjs", "--no-copy", "--no-types"]
            subprocess.run(build, cwd=ROOT / "client-js", check=True)
    run = subprocess.run(
        [require_node(), "cluster_recovery.mjs", *args],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout)
    return result


@pytest.mark.parametrize(
    ("origin", "target", "sender", "client"),
    [
        ("py1", "py2", "node", "official"),
        ("py1", "node", "py2", "official"),
        ("node", "py1", "py2", "official"),
        ("py1", "py2", "node", "realtime"),  # our client-js, between Python nodes
        ("py1", "node", "py2", "realtime"),  # and onto the Node node
    ],
)
def test_a_client_recovers_on_another_node(
    origin: str, target: str, sender: str, client: str
) -> None:
    with cluster() as urls:
        seen = scenario("move", urls[origin], urls[target], urls[sender], REDIS, client=client)
    assert seen["first"] == [origin, False]
    assert seen["back"] == {"recovered": True, "hello": [target, True]}
    assert seen["sameId"] is True
    assert seen["texts"] == ["before", "gap-1", "gap-2", "gap-3", "after"]
    assert seen["lastArgs"] == [3] * 5  # event, text, and the offset


@pytest.mark.parametrize(
    ("back", "mode"),
    [
        ("py2", "live"),  # events keep coming while they recover
        ("node", "quiet"),  # Node's restore races with live events: it comes after them
    ],
)
def test_clients_of_a_killed_node_recover_every_event_once_in_order(back: str, mode: str) -> None:
    """The victim saved its sessions while they were live: a Python survivor takes them up
    while events keep coming, a Node node once they stopped (Node reads our format)."""
    with cluster() as urls:
        victim = urls["victim"]
        seen = scenario(
            "crash",
            urls["py1"],
            str(victim.pid),
            urls["py2"],
            urls["node"],
            REDIS,
            "4",
            urls[back],
            mode,
        )
        assert victim.poll() is not None
    assert seen["reasons"] == ["transport close"] * 4
    assert seen["back"] == [{"recovered": True, "hello": [back, True]}] * 4
    assert all(gap > 0 for gap in seen["gaps"]), seen["gaps"]  # each missed some
    for client in seen["clients"]:
        witnessed = seen["witness"][client["room"]]
        assert len(witnessed) > 40
        assert client["texts"] == witnessed
