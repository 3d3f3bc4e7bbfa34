"""The Redis adapter and emitters on a Redis Cluster and behind Sentinel, all real servers.

Each test starts its own redis-server processes on free ports (a 3-primary
cluster, or a primary + Sentinel) and two node processes (tests/live/cluster_node.py)
given the ``redis+cluster://`` or ``redis+sentinel://`` URL; the official
socket.io-client drives every cluster operation (tests/node/cluster_scenario.mjs),
and python-socketio clients receive what the emitters publish.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import socketio

from realtime import AsyncEmitter, Emitter
from tests.live.redis_servers import (
    cluster_nodes,
    redis_cli,
    redis_cluster,
    redis_sentinel,
    unique_key,
    wait_until,
)
from tests.live.test_cluster import check_scenario, run_scenario

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.node, pytest.mark.timeout(90)]


class Inbox:
    """A python-socketio client on one node that records ``news`` events."""

    def __init__(self, base: str) -> None:
        self.got: list[Any] = []
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)
        self.client.on("news", self._news)
        self.client.connect(base, wait_timeout=10)

    def _news(self, *args: Any) -> None:
        with self.lock:
            self.got.append(list(args))

    def seen(self) -> list[Any]:
        with self.lock:
            return list(self.got)

    def close(self) -> None:
        self.client.disconnect()


@contextlib.contextmanager
def inboxes(bases: list[str]) -> Iterator[list[Inbox]]:
    boxes: list[Inbox] = []
    try:
        boxes.extend(Inbox(base) for base in bases)
        yield boxes
    finally:
        for box in boxes:
            box.close()


def emit_with_both_emitters(url: str, key: str, bases: list[str]) -> None:
    """Emitter and AsyncEmitter on ``url`` reach the clients of every node."""
    with inboxes(bases) as boxes:
        with Emitter(url, key=key) as emitter:
            emitter.emit("news", "sync", 1)
        wait_until(lambda: all(["sync", 1] in b.seen() for b in boxes), "the sync emit")

        async def emit_async() -> None:
            async with AsyncEmitter(url, key=key) as emitter:
                await emitter.emit("news", "async", {"k": [1]})

        anyio.run(emit_async)
        wait_until(lambda: all(["async", {"k": [1]}] in b.seen() for b in boxes), "the async emit")


def test_redis_cluster() -> None:
    """Two nodes on a 3-primary Redis Cluster: every cluster operation, then the emitters."""
    with redis_cluster() as ports:
        url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports[:2])
        key = unique_key()
        with cluster_nodes(url, ["a", "b"], key) as nodes:
            bases = [base for base, _ in nodes]
            seen = run_scenario(bases)
            check_scenario(seen, ["a", "b"])
            emit_with_both_emitters(url, key, bases)
            check_server_side_emit_count(ports, key, bases)


def check_server_side_emit_count(ports: list[int], key: str, bases: list[str]) -> None:
    """``server_side_emit`` counts the subscribers of every cluster node, not only
    those of the node that took the PUBLISH: one more subscriber on each node
    makes the two differ whichever node that is (last: they answer no request)."""
    import redis

    subscribers = [redis.Redis(port=port).pubsub() for port in ports]
    try:
        for pubsub in subscribers:
            pubsub.subscribe(f"{key}-request#/#")
            pubsub.get_message(timeout=5)
        with inboxes(bases[:1]) as (box,):
            reached = box.client.call("server-note", "hi", timeout=10)
        assert reached == len(bases) - 1 + len(ports)
    finally:
        for pubsub in subscribers:
            pubsub.close()


def test_redis_sentinel() -> None:
    """Two nodes on the primary a Sentinel names: every cluster operation, then the emitters."""
    with redis_sentinel() as setup:
        key = unique_key()
        with cluster_nodes(setup.url, ["a", "b"], key) as nodes:
            bases = [base for base, _ in nodes]
            seen = run_scenario(bases)
            check_scenario(seen, ["a", "b"])
            emit_with_both_emitters(setup.url, key, bases)


def numsub(port: int, channel: str) -> int:
    out = redis_cli("-p", str(port), "pubsub", "numsub", channel)
    return int(out.split()[1])


def test_sentinel_failover() -> None:
    """After a Sentinel failover the nodes' links reconnect to the new primary:
    they subscribe there, and the cluster operations and the emitters work again."""
    with redis_sentinel(replica=True) as setup:
        assert setup.replica_port is not None
        wait_until(lambda: setup.replicas() == 1, "the Sentinel to see the replica")
        key = unique_key()
        request_channel = f"{key}-request#/#"
        with cluster_nodes(setup.url, ["a", "b"], key) as nodes:
            bases = [base for base, _ in nodes]
            wait_until(lambda: numsub(setup.primary_port, request_channel) == 2, "subscribed")
            setup.sentinel("failover", "mymaster")
            wait_until(lambda: setup.primary() == setup.replica_port, "the failover")
            wait_until(
                lambda: numsub(setup.replica_port, request_channel) == 2,
                "both nodes subscribed on the new primary",
            )
            seen = run_scenario(bases)
            check_scenario(seen, ["a", "b"])
            emit_with_both_emitters(setup.url, key, bases)


def test_cluster_server_count_sums_every_node() -> None:
    """``PUBSUB NUMSUB`` counts one node's subscribers only: the link sums it over
    the cluster's nodes, as Node's adapter does, wherever the subscribers sit."""
    import redis

    from realtime.adapters.redis import RedisLink, RedisOptions

    channel = f"{unique_key()}-request#/#"
    with redis_cluster() as ports:
        subscribers = [redis.Redis(port=port).pubsub() for port in ports]
        try:
            for pubsub in subscribers:
                pubsub.subscribe(channel)
                pubsub.get_message(timeout=5)  # the subscribe confirmation
            url = f"redis+cluster://127.0.0.1:{ports[0]}"

            async def count() -> int:
                link = RedisLink(RedisOptions(url=url))
                async with link.running():
                    await link.listen({}, {})
                    return await link.server_count(channel)

            assert anyio.run(count) == len(ports)
        finally:
            for pubsub in subscribers:
                pubsub.close()
