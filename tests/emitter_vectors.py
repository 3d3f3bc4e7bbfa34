"""The byte vectors of ``@socket.io/redis-emitter``, shared by the unit and live tests.

``tests/unit/emitter_vectors.json`` lists operations and what the Node emitter
published for each (channel, payload in hex), recorded by running
``tests/node/cluster/node-emitter.mjs`` against a real Redis and subscribing to
its channels. Re-record after changing the operations with::

    PYTHONPATH=. python -m tests.emitter_vectors --write
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from realtime import emitter_wire as wire

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "unit" / "emitter_vectors.json"
NODE_EMITTER = ROOT / "tests" / "node" / "cluster" / "node-emitter.mjs"
REDIS_URL = "redis://127.0.0.1:6379/0"
#: The key the vectors are stored with; a recording uses a fresh one.
KEY = "rt-vectors"


def load() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text())
    return vectors


def revive(value: Any) -> Any:
    """JSON with ``{"$bin": "<hex>"}`` standing for bytes, as node-emitter.mjs reads it."""
    if isinstance(value, list):
        return [revive(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {k: revive(v) for k, v in value.items()}
    return value


def selection(op: dict[str, Any]) -> wire.Selection:
    """The selection node-emitter.mjs builds for ``op``, in the same order."""
    chosen = wire.Selection(wire.namespace_name(op.get("nsp", "/")))
    flags = op.get("flags", {})
    if flags.get("volatile"):
        chosen = chosen.flag("volatile", True)
    if "compress" in flags:
        chosen = chosen.flag("compress", flags["compress"])
    for room in op.get("to", []):
        chosen = chosen.to(room)
    for room in op.get("except", []):
        chosen = chosen.except_(room)
    return chosen


def encode(op: dict[str, Any], key: str = KEY) -> wire.Publish:
    """What our encoder publishes for ``op``."""
    chosen = selection(op)
    args = revive(op.get("args", []))
    kind = op["op"]
    if kind == "emit":
        return wire.broadcast(key, chosen, op["event"], args)
    if kind == "sockets-join":
        return wire.sockets_join(key, chosen, op["rooms"])
    if kind == "sockets-leave":
        return wire.sockets_leave(key, chosen, op["rooms"])
    if kind == "disconnect-sockets":
        return wire.disconnect_sockets(key, chosen, op.get("close", False))
    if kind == "server-side-emit":
        return wire.server_side_emit(key, wire.Selection(chosen.namespace), op["event"], args)
    raise ValueError(f"unknown operation {kind}")


def record(node: str, ops: list[dict[str, Any]], url: str = REDIS_URL) -> list[tuple[str, bytes]]:
    """Run the Node emitter on ``ops`` and return what it published, with ``KEY`` as key."""
    import redis

    key = f"rt-rec-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()
    try:
        pubsub.psubscribe(f"{key}*")
        confirmed = pubsub.get_message(timeout=10)
        assert confirmed is not None, "no psubscribe confirmation"
        assert confirmed["type"] == "psubscribe", confirmed
        with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
            json.dump(ops, file)
            file.flush()
            command = [node, str(NODE_EMITTER), "--redis", url, "--key", key, "--ops", file.name]
            subprocess.run(command, check=True, timeout=30, cwd=ROOT)
        published: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + 10
        while len(published) < len(ops) and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=1)
            if message is not None and message["type"] == "pmessage":
                channel = message["channel"].decode()
                published.append((KEY + channel.removeprefix(key), message["data"]))
        return published
    finally:
        pubsub.close()
        client.close()


def main() -> None:
    import shutil

    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.emitter_vectors --write")
    node = shutil.which("node")
    assert node is not None, "node is not installed"
    vectors = load()
    published = record(node, [v["op"] for v in vectors])
    assert len(published) == len(vectors), f"{len(published)} of {len(vectors)} recorded"
    for vector, (channel, payload) in zip(vectors, published, strict=True):
        vector["channel"] = channel
        vector["payload"] = payload.hex()
    VECTORS.write_text(json.dumps(vectors, indent=1, ensure_ascii=False) + "\n")
    print(f"recorded {len(vectors)} vectors in {VECTORS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
