"""Faults: Redis stopped and started under a running cluster, and a node that stops answering.

Each test starts its own ``redis-server`` on a free port and two or three node
processes (tests/live/cluster_node.py) with python-socketio clients.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import socketio

from tests.live.redis_servers import (
    RedisServer,
    cluster_nodes,
    get_json,
    healthy,
    redis_server,
    unique_key,
    wait_until,
)

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


async def client_of(base: str) -> tuple[socketio.AsyncClient, list[Any]]:
    client = socketio.AsyncClient(reconnection=False)
    broadcasts: list[Any] = []
    client.on("broadcast", lambda *args: broadcasts.append(args[0] if args else None))
    await client.connect(base, transports=["websocket"], wait_timeout=5)
    return client, broadcasts


async def until(condition: Any, limit: float = 20) -> None:
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 - the state changes in the client's callbacks
            await anyio.sleep(0.02)


def health(base: str) -> dict[str, Any]:
    result: dict[str, Any] = get_json(base + "/health")
    return result


async def test_redis_restart_under_load(redis: RedisServer) -> None:
    with cluster_nodes(redis.url, ["a", "b"], unique_key()) as nodes:
        (base_a, _), (base_b, _) = nodes
        for base, _ in nodes:
            wait_until(lambda base=base: healthy(base), f"{base} subscribed")
        ca, got_a = await client_of(base_a)
        cb, got_b = await client_of(base_b)
        try:
            await ca.emit("broadcast", "before")
            await until(lambda: "before" in got_a and "before" in got_b)

            # Load: a client of node a keeps broadcasting through the whole outage;
            # each one must reach it (local delivery never stops).
            sent: list[str] = []
            stop = anyio.Event()

            async def load() -> None:
                i = 0
                while not stop.is_set():
                    tag = f"load-{i}"
                    sent.append(tag)
                    await ca.emit("local-broadcast", tag)
                    await until(lambda tag=tag: tag in got_a)
                    i += 1

            async with anyio.create_task_group() as tg:
                tg.start_soon(load)
                redis.stop()
                for base in (base_a, base_b):
                    await until(lambda base=base: not health(base)["connected"])
                down = health(base_a)
                assert down["subscribed"] is False
                assert down["last_error"]  # says why
                # Publishing while down fails fast with the specific error ...
                status = await ca.call("publish-status", "while-down", timeout=10)
                assert status == "ClusterUnavailableError"
                # ... after delivering locally: node a's client got it, node b's did not.
                await until(lambda: "while-down" in got_a)
                redis.start()
                for base in (base_a, base_b):
                    await until(lambda base=base: health(base)["subscribed"])
                stop.set()
            assert sent
            assert all(tag in got_a for tag in sent)

            # Resubscribed: broadcasts cross again, in both directions.
            await ca.emit("broadcast", "after-a")
            await cb.emit("broadcast", "after-b")
            await until(lambda: {"after-a", "after-b"} <= set(got_a) & set(got_b))
            assert "while-down" not in got_b  # lost, as documented: no replay
            assert health(base_a)["connected"] is True
        finally:
            await ca.disconnect()
            await cb.disconnect()


async def test_a_frozen_node_makes_requests_end_at_their_timeout(redis: RedisServer) -> None:
    extra = ("--requests-timeout", "1")
    with cluster_nodes(redis.url, ["a", "b", "c"], unique_key(), *extra) as nodes:
        for base, _ in nodes:
            wait_until(lambda base=base: healthy(base), f"{base} subscribed")
        clients = [await client_of(base) for base, _ in nodes]
        ca = clients[0][0]
        try:
            assert await ca.call("count-detail", timeout=10) == {"count": 3}
            frozen = nodes[2][1]
            # Stopped, not dead: still subscribed, so still counted, but silent.
            os.kill(frozen.pid, signal.SIGSTOP)
            try:
                detail = await ca.call("count-detail", timeout=10)
                assert detail["error"] == "ClusterTimeoutError"
                assert detail["expected"] == 2
                assert detail["received"] == 1
                assert detail["partial"] == 2  # node a's own socket and node b's
                assert "1 of 2 nodes answered" in detail["message"]
                # server-side emit with acks: the live node's reply, at the timeout
                assert await ca.call("ask-servers", timeout=10) == ["b"]
            finally:
                os.kill(frozen.pid, signal.SIGCONT)
            # A node that dies leaves the count (its subscription goes with it).
            frozen.kill()
            frozen.wait(10)
            assert await ca.call("count-detail", timeout=10) == {"count": 2}
        finally:
            for client, _ in clients:
                await client.disconnect()
