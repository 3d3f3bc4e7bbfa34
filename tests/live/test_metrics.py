"""Prometheus metrics after real traffic, scraped over HTTP from a real uvicorn.

python-socketio clients over WebSocket, polling and polling-then-upgrade; a
raw Engine.IO polling client (httpx) where a test needs to control exactly
when the client polls (a volatile drop, a buffer overflow, byte counts); and
``uvicorn --workers 2`` in multiprocess mode, scraped for aggregated values.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import socketio
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.live.metrics_server import make_app
from tests.servers import PYTHON, serve, serve_process

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(60)]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def scrape(base: str) -> Samples:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        return parse(response.text)


async def scrape_until(base: str, check: Callable[[Samples], bool], limit: float = 10) -> Samples:
    """Scrape until ``check`` holds (metrics change when the server gets to it)."""
    samples: Samples = {}
    with anyio.move_on_after(limit):
        while True:
            samples = await scrape(base)
            if check(samples):
                return samples
            await anyio.sleep(0.02)
    wanted = {k: v for k, v in samples.items() if not k[0].startswith(("python_", "process_"))}
    raise AssertionError(f"metrics never matched; last scrape: {wanted}")


async def until(condition: Callable[[], bool], limit: float = 5) -> None:
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 - the state changes in the client's callbacks
            await anyio.sleep(0.01)


@pytest.fixture
def served() -> Iterator[str]:
    _, app = make_app(CollectorRegistry())
    with serve(app) as base:
        yield base


async def client(url: str, transports: list[str]) -> tuple[socketio.AsyncClient, list[Any]]:
    sio = socketio.AsyncClient(reconnection=False)
    got: list[Any] = []

    @sio.on("*")
    async def any_event(event: str, *args: Any) -> None:
        got.append((event, *args))

    await sio.connect(url, transports=transports, wait_timeout=5)
    return sio, got


async def test_traffic_over_every_transport(served: str) -> None:
    ws, ws_got = await client(served, ["websocket"])
    poll, poll_got = await client(served, ["polling"])
    up, up_got = await client(served, ["polling", "websocket"])
    samples = await scrape_until(
        served, lambda s: value(s, "realtime_upgrades_total", stage="completed") == 1
    )
    assert value(samples, "realtime_handshakes_total", transport="websocket") == 1
    assert value(samples, "realtime_handshakes_total", transport="polling") == 2
    assert value(samples, "realtime_upgrades_total", stage="started") == 1
    assert value(samples, "realtime_upgrades_total", stage="failed") == 0
    # The upgraded client moved from polling to websocket.
    assert value(samples, "realtime_connected_clients", transport="websocket", namespace="/") == 2
    assert value(samples, "realtime_connected_clients", transport="polling", namespace="/") == 1

    assert await ws.call("echo", 1, timeout=5) == [1]
    # A broadcast from the polling client reaches all three.
    await poll.emit("shout", "hi")
    for got in (ws_got, poll_got, up_got):
        await until(lambda got=got: ("news", "hi") in got)

    # The server asks the WebSocket client, which answers too late.
    answer = asyncio.Event()

    async def question() -> str:
        await answer.wait()
        return "late"

    ws.on("question", question)
    await ws.emit("ask")
    await until(lambda: ("timed-out",) in ws_got)
    answer.set()

    await ws.emit("bye")  # server namespace disconnect
    await until(lambda: not ws.connected)
    await poll.disconnect()
    await up.disconnect()
    samples = await scrape_until(served, lambda s: total(s, "realtime_disconnects_total") == 3)
    assert (
        value(
            samples,
            "realtime_disconnects_total",
            namespace="/",
            reason="server namespace disconnect",
        )
        == 1
    )
    # python-socketio's disconnect() queues DISCONNECT and closes its WebSocket
    # without waiting for the queue, so the server sees "41" or only the close.
    by_client = [
        value(samples, "realtime_disconnects_total", namespace="/", reason=reason)
        for reason in ("client namespace disconnect", "transport close")
    ]
    assert sum(by_client) == 2
    for transport in ("websocket", "polling"):
        assert value(samples, "realtime_connected_clients", transport=transport, namespace="/") == 0
    # echo, shout, ask, bye.
    assert value(samples, "realtime_events_received_total", namespace="/") == 4
    # news x3, question, timed-out (acks are not events).
    assert value(samples, "realtime_events_sent_total", namespace="/") == 5
    assert value(samples, "realtime_ack_timeouts_total", namespace="/") == 1
    assert value(samples, "realtime_broadcast_recipients_count", namespace="/") == 1
    assert value(samples, "realtime_broadcast_recipients_sum", namespace="/") == 3
    for event in ("echo", "shout", "ask", "bye"):
        assert (
            value(samples, "realtime_handler_duration_seconds_count", namespace="/", event=event)
            == 1
        )
    # The ask handler waited out the 0.3 s ack timeout.
    assert (
        value(samples, "realtime_handler_duration_seconds_sum", namespace="/", event="ask") >= 0.3
    )
    for name in ("realtime_bytes_received_total", "realtime_bytes_sent_total"):
        for transport in ("websocket", "polling"):
            assert value(samples, name, transport=transport) > 0
    assert value(samples, "realtime_packets_dropped_total", reason="volatile") == 0
    assert value(samples, "realtime_packets_dropped_total", reason="buffer_full") == 0
    assert ("realtime_outbox_bytes", frozenset()) in samples
    assert value(samples, "realtime_redis_connected") == 0


async def test_broadcast_ack_timeout(served: str) -> None:
    sock, got = await client(served, ["websocket"])
    answer = asyncio.Event()

    async def question() -> str:
        await answer.wait()
        return "late"

    sock.on("question", question)
    try:
        await sock.emit("ask-all")
        await until(lambda: ("timed-out",) in got)
    finally:
        answer.set()
        await sock.disconnect()
    samples = await scrape(served)
    assert value(samples, "realtime_ack_timeouts_total", namespace="/") == 1
    assert value(samples, "realtime_broadcast_recipients_count", namespace="/") == 1
    assert value(samples, "realtime_broadcast_recipients_sum", namespace="/") == 1
    # question (broadcast to one) and timed-out.
    assert value(samples, "realtime_events_sent_total", namespace="/") == 2


class RawPolling:
    """An Engine.IO polling client that polls only when told to."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http = http
        self.url = f"{base}/socket.io/?EIO=4&transport=polling"
        self.sent = 0
        self.received = 0

    async def open(self) -> None:
        body = await self.get()
        self.url += "&sid=" + json.loads(body[1:])["sid"]

    async def get(self) -> str:
        response = await self.http.get(self.url)
        assert response.status_code == 200
        self.received += len(response.text)
        return response.text

    async def post(self, body: str) -> None:
        response = await self.http.post(self.url, content=body)
        assert response.status_code == 200
        self.sent += len(body)


async def test_drops_and_exact_bytes_over_polling(served: str) -> None:
    async with httpx.AsyncClient() as http:
        raw = RawPolling(http, served)
        await raw.open()
        await raw.post("40")
        assert (await raw.get()).startswith("40")
        # No GET is pending: the volatile event cannot go out, so it is dropped.
        await raw.post('42["volatile"]')
        samples = await scrape_until(
            served, lambda s: value(s, "realtime_packets_dropped_total", reason="volatile") == 1
        )
        assert value(samples, "realtime_broadcast_recipients_count", namespace="/") == 1
        assert value(samples, "realtime_broadcast_recipients_sum", namespace="/") == 0
        assert value(samples, "realtime_bytes_received_total", transport="polling") == raw.sent
        assert value(samples, "realtime_bytes_sent_total", transport="polling") == raw.received
        assert value(samples, "realtime_events_sent_total", namespace="/") == 0
        # An event bigger than max_buffer_bytes: dropped, and the session closed.
        await raw.post('42["big"]')
        samples = await scrape_until(
            served,
            lambda s: (
                value(s, "realtime_disconnects_total", namespace="/", reason="transport error") == 1
            ),
        )
        assert value(samples, "realtime_packets_dropped_total", reason="buffer_full") == 1
        assert value(samples, "realtime_connected_clients", transport="polling", namespace="/") == 0
        assert value(samples, "realtime_events_received_total", namespace="/") == 2
        assert value(samples, "realtime_bytes_received_total", transport="polling") == raw.sent
        assert value(samples, "realtime_handshakes_total", transport="polling") == 1


async def test_upgrade_after_connecting_moves_the_client(served: str) -> None:
    """A client that joined over polling and then upgrades counts as WebSocket."""
    async with httpx.AsyncClient() as http:
        raw = RawPolling(http, served)
        await raw.open()
        await raw.post("40")
        assert (await raw.get()).startswith("40")
        ws_url = raw.url.replace("http://", "ws://").replace(
            "transport=polling", "transport=websocket"
        )
        # A probe abandoned before "5": a failed upgrade; the client stays on polling.
        async with connect(ws_url) as ws:
            await ws.send("2probe")
            assert await ws.recv() == "3probe"
        samples = await scrape_until(
            served, lambda s: value(s, "realtime_upgrades_total", stage="failed") == 1
        )
        assert value(samples, "realtime_connected_clients", transport="polling", namespace="/") == 1
        async with connect(ws_url) as ws:
            await ws.send("2probe")
            assert await ws.recv() == "3probe"
            await ws.send("5")
            samples = await scrape_until(
                served, lambda s: value(s, "realtime_upgrades_total", stage="completed") == 1
            )
            assert value(samples, "realtime_upgrades_total", stage="started") == 2
            for transport, count in (("polling", 0), ("websocket", 1)):
                assert (
                    value(samples, "realtime_connected_clients", transport=transport, namespace="/")
                    == count
                )
            await ws.send('42["echo",1]')
            samples = await scrape_until(
                served, lambda s: value(s, "realtime_events_received_total", namespace="/") == 1
            )
            # Only frames of the open session count, not the probe exchange.
            received = value(samples, "realtime_bytes_received_total", transport="websocket")
            assert received == len('42["echo",1]')
        samples = await scrape_until(served, lambda s: total(s, "realtime_disconnects_total") == 1)
        assert (
            value(samples, "realtime_disconnects_total", namespace="/", reason="transport close")
            == 1
        )
        assert (
            value(samples, "realtime_connected_clients", transport="websocket", namespace="/") == 0
        )


async def test_workers_aggregate_in_multiprocess_mode(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    args = [PYTHON, "-m", "uvicorn", "tests.live.metrics_server:app", "--workers", "2"]
    args += ["--host", "127.0.0.1", "--log-level", "warning"]
    with serve_process(args, env=env) as base:
        socks: list[socketio.AsyncClient] = []
        pids: set[int] = set()
        try:
            # Until both workers hold a client: the last client's worker is kept
            # busy (its loop blocked) so that the next connection goes to the
            # other one. The scrape, served by either, must add up both.
            blocks = 0
            while len(pids) < 2:
                assert len(socks) < 10, "every client went to the same worker"
                if socks:
                    await socks[-1].emit("block")
                    blocks += 1
                sock, _ = await client(base, ["websocket"])
                socks.append(sock)
                pids.add(await sock.call("pid", timeout=5))
            clients = len(socks)
            samples = await scrape_until(
                base,
                lambda s: (
                    value(s, "realtime_connected_clients", transport="websocket", namespace="/")
                    == clients
                ),
            )
            assert value(samples, "realtime_handshakes_total", transport="websocket") == clients
            assert (
                value(samples, "realtime_events_received_total", namespace="/") == clients + blocks
            )
            assert (
                value(
                    samples, "realtime_handler_duration_seconds_count", namespace="/", event="pid"
                )
                == clients
            )
        finally:
            for sock in socks:
                await sock.disconnect()
        samples = await scrape_until(
            base, lambda s: total(s, "realtime_disconnects_total") == clients
        )
        assert (
            value(samples, "realtime_connected_clients", transport="websocket", namespace="/") == 0
        )
