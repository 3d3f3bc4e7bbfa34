"""A mixed cluster: a Node socket.io 4.8 server with @socket.io/redis-adapter 8.3
(tests/node/cluster/node-twin.mjs) between two Python nodes (examples/cluster/node.py),
one Redis. Broadcasts, rooms, acks, fetch sockets and server-side emits cross in
both directions: tests/node/mixed_scenario.mjs starts each from every node in turn.
The same again with every node on @socket.io/redis-streams-adapter 0.3's wire.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator

import pytest

from tests.live.redis_servers import healthy, require_shared_redis, unique_key, wait_until
from tests.servers import PYTHON, ROOT, free_port, require, require_node

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.node]
NODE_DIR = ROOT / "tests" / "node"
TWIN = NODE_DIR / "cluster" / "node-twin.mjs"
EXAMPLE = ROOT / "examples" / "cluster" / "node.py"


@contextlib.contextmanager
def started(args: list[str], port: int) -> Iterator[str]:
    proc = subprocess.Popen([*args, "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def twin_ready(proc_url: str) -> bool:
    import socket

    port = int(proc_url.rsplit(":", 1)[1])
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True  # the twin listens only once its adapter subscribed
    return False


@pytest.mark.parametrize("adapter", ["redis", "streams"])
def test_python_and_node_nodes_form_one_cluster(adapter: str) -> None:
    redis = require_shared_redis()
    node = require_node()
    require(TWIN.is_file(), "tests/node/cluster/node-twin.mjs is missing")
    require((NODE_DIR / "node_modules" / "socket.io").is_dir(), "npm ci in tests/node")
    key = unique_key()

    def python_node(name: str) -> list[str]:
        return [PYTHON, str(EXAMPLE), "--redis", redis, "--name", name, "--key", key, *kind]

    kind = ["--adapter", adapter]
    twin = [node, str(TWIN), "--redis", redis, "--name", "node", "--key", key, *kind]
    with (
        started(python_node("py1"), free_port()) as py1,
        started(twin, free_port()) as nd,
        started(python_node("py2"), free_port()) as py2,
    ):
        for base in (py1, py2):
            wait_until(lambda base=base: healthy(base), f"{base} subscribed")
        wait_until(lambda: twin_ready(nd), "the Node twin to listen")
        run = subprocess.run(
            [node, "mixed_scenario.mjs", py1, nd, py2],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert run.returncode == 0, run.stderr
        seen = json.loads(run.stdout)
    names = ["py1", "node", "py2"]
    assert seen["names"] == names
    for i, row in enumerate(seen["perNode"]):
        sender = names[i]
        assert row["from"] == sender
        assert row["count"] == 3, row  # fetch sockets: every node answered
        tag = f"all-from-{sender}"
        assert row["broadcast"] == [[tag, [i, 255], {"n": i, "none": None}]] * 3
        assert row["join"] is True
        room = f"room-{sender}"
        assert row["room"] == [names[(i + 1) % 3], room, i]
        # server-side emit with acks: the two other nodes' ``who`` replies
        assert row["askServers"] == sorted(n for n in names if n != sender)
        # broadcast with acks: all three clients answered, across both kinds of node
        assert row["askClients"] == sorted(names)
