"""Engine.IO requests that land on a node that does not own the session (real Redis).

Two node processes (tests/live/cluster_node.py) share the Redis adapter; a raw
HTTP and WebSocket client makes the session on one node and sends every later
request to the other, as a balancer without affinity would. The owner serves
the tunnelled requests as its own, so the protocol's answers and limits are
exactly those of one process.
"""

from __future__ import annotations

import contextlib
import json
import signal
import time
from collections.abc import Iterator

import anyio
import httpx
import pytest
import websockets

from tests.live.redis_servers import cluster_nodes, healthy, require_shared_redis, unique_key
from tests.live.redis_servers import wait_until as wait_for

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.anyio]

QUERY = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def two_nodes() -> Iterator[list[str]]:
    redis = require_shared_redis()
    with cluster_nodes(redis, ["a", "b"], unique_key()) as nodes:
        bases = [base for base, _ in nodes]
        for base in bases:
            wait_for(lambda base=base: healthy(base), f"{base} subscribed")
        yield bases


@pytest.fixture
def nodes_with_processes() -> Iterator[list[tuple[str, object]]]:
    redis = require_shared_redis()
    with cluster_nodes(redis, ["a", "b"], unique_key()) as nodes:
        for base, _ in nodes:
            wait_for(lambda base=base: healthy(base), f"{base} subscribed")
        yield nodes  # type: ignore[misc]


def packets(body: str) -> list[str]:
    return body.split("\x1e")


def ack_ids(acks: list[str]) -> list[int]:
    """The ids of Socket.IO ACK packets (``43<id>[...]``), in the order given."""
    assert all(ack.startswith("43") for ack in acks), acks
    return [int(ack[2 : ack.index("[")]) for ack in acks]


async def handshake(client: httpx.AsyncClient, base: str) -> str:
    response = await client.get(base + QUERY)
    assert response.status_code == 200
    opening = json.loads(response.text[1:])
    sid: str = opening["sid"]
    return sid


async def connected(client: httpx.AsyncClient, base: str, via: str | None = None) -> str:
    """A session made on ``base`` that has joined "/", its CONNECT sent and answered
    through ``via`` (``base`` if not given); its sid."""
    sid = await handshake(client, base)
    url = f"{via or base}{QUERY}&sid={sid}"
    assert (await client.post(url, content="40")).text == "ok"
    assert packets((await client.get(url)).text)[0].startswith("40{")
    return sid


async def test_a_polling_session_served_through_the_other_node(two_nodes: list[str]) -> None:
    a, b = two_nodes
    async with httpx.AsyncClient(timeout=40) as client:
        sid = await handshake(client, a)
        via_b = f"{b}{QUERY}&sid={sid}"
        via_a = f"{a}{QUERY}&sid={sid}"
        assert (await client.post(via_b, content="40")).text == "ok"
        got = packets((await client.get(via_b)).text)
        assert got[0].startswith("40{")
        assert got[1] == '42["hello","a"]'  # the owner's connect handler ran

        # A GET held through b is answered as soon as the owner has something:
        # an ack to a POST sent through a (the owner's "count" handler).
        answered = anyio.Event()
        async with anyio.create_task_group() as tg:
            answers: list[str] = []

            async def poll() -> None:
                answers.append((await client.get(via_b)).text)
                answered.set()

            tg.start_soon(poll)
            await anyio.sleep(0.5)
            assert answers == []  # held: nothing to say yet
            assert (await client.post(via_a, content='421["count"]')).text == "ok"
            with anyio.fail_after(10):
                await answered.wait()
        assert answers == ["431[1]"]

        # Many POSTs through alternating nodes reach the owner in order ("rooms"
        # answers without awaiting anything, so its acks leave in arrival order).
        for n in range(20):
            target = via_a if n % 2 else via_b
            assert (await client.post(target, content=f'42{n}["rooms"]')).text == "ok"
        seen: list[str] = []
        while len(seen) < 20:
            seen += packets((await client.get(via_b if len(seen) % 2 else via_a)).text)
        assert ack_ids(seen) == list(range(20))


async def test_upgrade_through_the_other_node_while_a_get_is_held(two_nodes: list[str]) -> None:
    a, b = two_nodes
    host_b = b.removeprefix("http://")
    async with httpx.AsyncClient(timeout=40) as client:
        sid = await connected(client, a)
        via_a = f"{a}{QUERY}&sid={sid}"
        url = f"ws://{host_b}/socket.io/?EIO=4&transport=websocket&sid={sid}"
        released = anyio.Event()
        async with anyio.create_task_group() as tg:
            held: list[str] = []

            async def poll() -> None:
                held.append((await client.get(via_a)).text)
                released.set()

            tg.start_soon(poll)
            await anyio.sleep(0.3)
            async with websockets.connect(url) as ws:
                await ws.send("2probe")
                assert await ws.recv() == "3probe"
                with anyio.fail_after(5):
                    await released.wait()
                assert held == ["6"]  # the pending GET released with NOOP
                await ws.send("5")
                for n in range(100):
                    await ws.send(f'42{n}["rooms"]')
                assert ack_ids([str(await ws.recv()) for _ in range(100)]) == list(range(100))
                # the session lives on the WebSocket now: polling is refused
                response = await client.get(via_a)
                assert response.status_code == 400
                await ws.send('42["broadcast","x"]')
                assert await ws.recv() == '42["broadcast","x"]'


async def test_limits_hold_through_the_other_node(two_nodes: list[str]) -> None:
    a, b = two_nodes
    async with httpx.AsyncClient(timeout=40) as client:
        sid = await handshake(client, a)
        via_b = f"{b}{QUERY}&sid={sid}"
        too_big = "4" + "x" * 1_000_001
        response = await client.post(via_b, content=too_big)
        assert response.status_code == 413
        # the owner closed the session, as it does for a POST that reached it directly
        response = await client.get(f"{a}{QUERY}&sid={sid}")
        assert response.status_code == 400
        assert response.json() == {"code": 1, "message": "Session ID unknown"}

        # two GETs at once, one through each node: the protocol's 400 and the session closes
        sid = await handshake(client, a)
        async with anyio.create_task_group() as tg:
            first: list[httpx.Response] = []

            async def poll() -> None:
                first.append(await client.get(f"{b}{QUERY}&sid={sid}"))

            tg.start_soon(poll)
            await anyio.sleep(0.3)
            second = await client.get(f"{a}{QUERY}&sid={sid}")
        assert second.status_code == 400
        assert first[0].status_code == 200
        assert first[0].text == "1"  # CLOSE


async def test_a_sid_of_no_live_node_is_unknown(two_nodes: list[str]) -> None:
    a, _ = two_nodes
    async with httpx.AsyncClient(timeout=10) as client:
        sid = await handshake(client, a)
        stranger = "zzzzzzzz" + sid[8:]  # a node id nobody has
        response = await client.get(f"{a}{QUERY}&sid={stranger}")
        assert response.status_code == 400
        assert response.json() == {"code": 1, "message": "Session ID unknown"}
        response = await client.get(f"{a}{QUERY}&sid=short")
        assert response.status_code == 400


async def test_a_killed_owner_releases_gets_held_elsewhere(
    nodes_with_processes: list[tuple[str, object]],
) -> None:
    (a, proc_a), (b, _) = nodes_with_processes
    async with httpx.AsyncClient(timeout=40) as client:
        sid = await connected(client, a, via=b)
        via_b = f"{b}{QUERY}&sid={sid}"
        answered = anyio.Event()
        async with anyio.create_task_group() as tg:
            held: list[httpx.Response] = []

            async def poll() -> None:
                held.append(await client.get(via_b))
                answered.set()

            tg.start_soon(poll)
            await anyio.sleep(0.5)
            killed = time.monotonic()
            proc_a.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
            with anyio.fail_after(25):
                await answered.wait()
        # Well before the heartbeat (25 s) would have told: the node is gone.
        assert time.monotonic() - killed < 25
        assert held[0].status_code == 400
        assert held[0].json() == {"code": 1, "message": "Session ID unknown"}
        # b goes on serving new sessions
        sid = await handshake(client, b)
        assert (await client.post(f"{b}{QUERY}&sid={sid}", content="40")).text == "ok"


@pytest.fixture
def three_nodes() -> Iterator[list[tuple[str, object]]]:
    redis = require_shared_redis()
    with cluster_nodes(redis, ["a", "b", "c"], unique_key()) as nodes:
        for base, _ in nodes:
            wait_for(lambda base=base: healthy(base), f"{base} subscribed")
        yield nodes  # type: ignore[misc]


async def test_a_get_retried_after_its_relaying_node_died_keeps_the_session(
    three_nodes: list[tuple[str, object]],
) -> None:
    """What a balancer does when an upstream dies under a held GET: it sends the
    GET again to another node. The owner releases the GET that died with its
    node and serves the retry; the session goes on as if nothing happened."""
    (a, _), (b, proc_b), (c, _) = three_nodes
    async with httpx.AsyncClient(timeout=40) as client:
        sid = await connected(client, a)

        async def doomed() -> None:
            with contextlib.suppress(httpx.TransportError):
                await client.get(f"{b}{QUERY}&sid={sid}")

        retried = anyio.Event()
        answers: list[str] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(doomed)
            await anyio.sleep(0.5)
            proc_b.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]

            async def retry() -> None:  # at once, as a balancer does
                response = await client.get(f"{c}{QUERY}&sid={sid}")
                answers.append(f"{response.status_code} {response.text}")
                retried.set()

            tg.start_soon(retry)
            await anyio.sleep(0.5)
            assert (await client.post(f"{c}{QUERY}&sid={sid}", content='421["count"]')).text == "ok"
            with anyio.fail_after(20):
                await retried.wait()
        assert answers == ["200 431[1]"]


async def test_an_answer_that_died_with_its_relaying_node_closes_the_session(
    three_nodes: list[tuple[str, object]],
) -> None:
    """The owner wrote an ack into a GET relayed by b; b froze, then died, before
    passing it on. The retry through c must not be served as if nothing was
    lost: the session ends and the client learns it (400), rather than going on
    without the ack."""
    (a, _), (b, proc_b), (c, _) = three_nodes
    async with httpx.AsyncClient(timeout=40) as client:
        sid = await connected(client, a)

        async def doomed() -> None:
            with contextlib.suppress(httpx.TransportError):
                await client.get(f"{b}{QUERY}&sid={sid}")

        answered = anyio.Event()
        answers: list[httpx.Response] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(doomed)
            await anyio.sleep(0.5)
            proc_b.send_signal(signal.SIGSTOP)  # type: ignore[attr-defined]
            # the ack goes into the GET b holds, and no further
            assert (await client.post(f"{a}{QUERY}&sid={sid}", content='421["rooms"]')).text == "ok"
            await anyio.sleep(0.5)

            async def retry() -> None:
                answers.append(await client.get(f"{c}{QUERY}&sid={sid}"))
                answered.set()

            tg.start_soon(retry)
            await anyio.sleep(0.5)
            assert not answered.is_set()  # b is alive as far as Redis knows: waited for
            proc_b.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
            with anyio.fail_after(25):
                await answered.wait()
            tg.cancel_scope.cancel()
        assert answers[0].status_code == 400
        response = await client.get(f"{a}{QUERY}&sid={sid}")
        assert response.json() == {"code": 1, "message": "Session ID unknown"}


async def test_a_session_moves_to_the_node_its_websocket_reached(
    nodes_with_processes: list[tuple[str, object]],
) -> None:
    """What socket.io-client does: handshake, CONNECT by POST and the WebSocket
    probe at once. The upgrade reaches b, so the whole session moves to b (the
    CONNECT is handled there) and is not relayed through a for its life: killing
    a afterwards does not touch it."""
    (a, proc_a), (b, _) = nodes_with_processes
    host_b = b.removeprefix("http://")
    async with httpx.AsyncClient(timeout=40) as client:
        sid = await handshake(client, a)
        via_a = f"{a}{QUERY}&sid={sid}"
        assert (await client.post(via_a, content="40")).text == "ok"
        held: list[str] = []
        released = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def poll() -> None:
                held.append((await client.get(via_a)).text)
                released.set()

            tg.start_soon(poll)
            url = f"ws://{host_b}/socket.io/?EIO=4&transport=websocket&sid={sid}"
            async with websockets.connect(url) as ws:
                await ws.send("2probe")
                assert await ws.recv() == "3probe"
                with anyio.fail_after(5):
                    await released.wait()
                assert held == ["6"]  # nothing answered yet: the CONNECT was held
                await ws.send("5")
                connect = str(await ws.recv())  # the CONNECT reply, from b
                assert connect.startswith("40{")
                assert await ws.recv() == '42["hello","b"]'  # b's connect handler ran
                await ws.send('421["rooms"]')
                assert ack_ids([str(await ws.recv())]) == [1]
                proc_a.send_signal(signal.SIGKILL)  # type: ignore[attr-defined]
                await anyio.sleep(1)
                await ws.send('422["rooms"]')
                assert ack_ids([str(await ws.recv())]) == [2]
