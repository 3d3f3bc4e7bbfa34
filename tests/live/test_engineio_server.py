"""The Engine.IO server, live: real sockets, both transports, both event loops.

Every test runs twice: against uvicorn (asyncio) and against hypercorn's trio
worker, so the engine itself is proven on both loops. The client side is httpx
for long-polling and the ``websockets`` asyncio client for WebSocket.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from realtime.engineio import EngineSession
from tests.live.engine_servers import (
    PATH,
    SEP,
    SERVERS,
    STEP,
    EngineFactory,
    Recorder,
    Running,
    assert_ws_refused,
    error_of,
    get,
    handshake,
    http,
    messages_of,
    post,
    query,
    split,
    wait_until,
    ws_connect,
    ws_open,
    ws_recv,
)

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(10)]


@pytest.fixture
def anyio_backend() -> str:
    # The client side: the websockets client needs asyncio. The server side is
    # parametrized below (uvicorn on asyncio, hypercorn on trio).
    return "asyncio"


@pytest.fixture(params=SERVERS)
def start(request: pytest.FixtureRequest) -> Iterator[EngineFactory]:
    factory = EngineFactory(str(request.param))
    try:
        yield factory
    finally:
        factory.close()


async def closes(ws: object) -> int | None:
    """Read until the server closes the WebSocket; return the close code."""
    from websockets.asyncio.client import ClientConnection

    assert isinstance(ws, ClientConnection)
    with anyio.fail_after(STEP):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None


# -- handshake ------------------------------------------------------------------


class TestHandshake:
    async def test_polling(self, start: EngineFactory) -> None:
        engine = start(ping_interval=1.5, ping_timeout=0.5, max_payload=1234)
        async with http(engine) as client:
            r = await client.get(query())
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/plain")
            assert r.text[0] == "0"
            info = json.loads(r.text[1:])
            assert info == {
                "sid": info["sid"],
                "upgrades": ["websocket"],
                "pingInterval": 1500,
                "pingTimeout": 500,
                "maxPayload": 1234,
            }
            sid = info["sid"]
            await wait_until(lambda: sid in engine.recorder.connected)
            assert (await post(client, sid, "4hi")).text == "ok"
            assert (await get(client, sid)).text == "4hi"

    async def test_websocket(self, start: EngineFactory) -> None:
        engine = start(ping_interval=1.5, ping_timeout=0.5, max_payload=1234)
        async with ws_connect(engine) as ws:
            info = await ws_open(ws)
            assert info == {
                "sid": info["sid"],
                "upgrades": [],
                "pingInterval": 1500,
                "pingTimeout": 500,
                "maxPayload": 1234,
            }
            await ws.send("4hello")
            assert await ws_recv(ws) == "4hello"
            await ws.send(b"\x00\x01\xff")
            assert await ws_recv(ws) == b"\x00\x01\xff"
            assert engine.recorder.messages[info["sid"]] == ["hello", b"\x00\x01\xff"]

    async def test_polling_binary_is_base64(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            sid, _ = await handshake(client)
            assert (await post(client, sid, "bAQIDBA==")).text == "ok"
            assert (await get(client, sid)).text == "bAQIDBA=="
            assert engine.recorder.messages[sid] == [b"\x01\x02\x03\x04"]

    async def test_websocket_only_refuses_polling(self, start: EngineFactory) -> None:
        engine = start(transports=("websocket",))
        async with http(engine) as client:
            assert error_of(await client.get(query())) == (400, 0, "Transport unknown")
        async with ws_connect(engine) as ws:
            assert (await ws_open(ws))["upgrades"] == []


# -- upgrade --------------------------------------------------------------------


class TestUpgrade:
    async def test_packets_in_flight_both_ways(self, start: EngineFactory) -> None:
        """Every message crosses the polling -> WebSocket switch exactly once, in order.

        The server streams ``m0, m1, ...`` the whole time; the client keeps
        polling and posting ``c0, c1, ...`` until the probe succeeds, then
        finishes the upgrade as a real client does (pause polling, let the
        pending GET and POST come back, send ``5``) and carries on over the
        WebSocket.
        """
        recorder = Recorder()
        recorder.echo = False
        engine = start(recorder)
        polled: list[str] = []
        posted = 0
        pausing = anyio.Event()
        poll_done = anyio.Event()
        post_done = anyio.Event()

        async with http(engine) as client:
            sid, _ = await handshake(client)
            assert (await post(client, sid, "4cmd:stream")).text == "ok"

            async def poll() -> None:
                while not pausing.is_set():
                    r = await get(client, sid)
                    assert r.status_code == 200, r.text
                    polled.extend(messages_of(r.text))
                poll_done.set()

            async def send() -> None:
                nonlocal posted
                while not pausing.is_set():
                    assert (await post(client, sid, f"4c{posted}")).text == "ok"
                    posted += 1
                post_done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(poll)
                tg.start_soon(send)
                # Upgrade in the middle of the traffic.
                await wait_until(lambda: len(polled) >= 20 and posted >= 20)
                async with ws_connect(engine, sid) as ws:
                    await ws.send("2probe")
                    assert await ws_recv(ws) == "3probe"
                    # Pause polling: the pending GET comes back (NOOP) and the
                    # POST under way completes; only then is the upgrade sent.
                    pausing.set()
                    with anyio.fail_after(STEP):
                        await poll_done.wait()
                        await post_done.wait()
                    sent_on_polling = posted
                    received_on_polling = len(polled)
                    await ws.send("5")
                    for i in range(posted, posted + 20):
                        await ws.send(f"4c{i}")
                    posted += 20
                    await ws.send("4cmd:stop")
                    streamed: list[str] = []
                    while not streamed or streamed[-1] != "end":
                        frame = await ws_recv(ws)
                        assert isinstance(frame, str)
                        if frame.startswith("4"):
                            streamed.append(frame[1:])
                        else:
                            assert frame == "2", frame  # only a heartbeat may interleave
                    assert engine.session(sid).transport == "websocket"

        # Server -> client: nothing lost, nothing twice, order kept across the switch.
        assert received_on_polling >= 20
        assert len(streamed) > 1  # some of the stream came over the WebSocket
        everything = polled + streamed
        assert everything == [f"m{i}" for i in range(len(everything) - 1)] + ["end"]
        # Client -> server: likewise.
        assert sent_on_polling >= 20
        assert recorder.messages[sid] == [f"c{i}" for i in range(posted)]
        await wait_until(lambda: recorder.reasons.get(sid) == "transport close")

    async def test_get_during_upgrade_is_released_while_packets_keep_coming(
        self, start: EngineFactory
    ) -> None:
        """A GET sent between ``2probe`` and ``5`` gets a NOOP even as the server
        keeps queueing packets (they wait for the WebSocket, in order)."""
        recorder = Recorder()
        recorder.echo = False
        engine = start(recorder)
        async with http(engine) as client:
            sid, _ = await handshake(client)
            assert (await post(client, sid, "4cmd:stream")).text == "ok"
            async with ws_connect(engine, sid) as ws:
                await ws.send("2probe")
                assert await ws_recv(ws) == "3probe"
                r = await get(client, sid)
                assert r.status_code == 200
                assert r.text == "6"
                assert (await post(client, sid, "4during")).text == "ok"
                await ws.send("5")
                await ws.send("4cmd:stop")
                streamed: list[str] = []
                while not streamed or streamed[-1] != "end":
                    frame = await ws_recv(ws)
                    assert isinstance(frame, str)
                    if frame.startswith("4"):
                        streamed.append(frame[1:])
        assert streamed == [f"m{i}" for i in range(len(streamed) - 1)] + ["end"]
        assert recorder.messages[sid] == ["during"]

    async def test_probe_with_wrong_sid_is_refused(self, start: EngineFactory) -> None:
        engine = start()
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(engine, "no-such-sid"):
                pass
        assert_ws_refused(info.value, 400, 1)

    async def test_second_websocket_is_closed(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            sid, _ = await handshake(client)
            async with ws_connect(engine, sid) as ws:
                await ws.send("2probe")
                assert await ws_recv(ws) == "3probe"
                await ws.send("5")
                await wait_until(lambda: engine.session(sid).transport == "websocket")
                async with ws_connect(engine, sid) as second:
                    assert await closes(second) == 1008
                # The upgraded session is unaffected; polling it is refused.
                await ws.send("4still")
                assert await ws_recv(ws) == "4still"
                assert error_of(await get(client, sid)) == (400, 3, "Bad request")


# -- heartbeat --------------------------------------------------------------------


class TestHeartbeat:
    async def test_polling_pongs_keep_it_alive_then_timeout(self, start: EngineFactory) -> None:
        engine = start(ping_interval=0.2, ping_timeout=0.2)
        async with http(engine) as client:
            sid, _ = await handshake(client)
            for _ in range(3):
                assert (await get(client, sid)).text == "2"
                assert (await post(client, sid, "3")).text == "ok"
            assert (await get(client, sid)).text == "2"
            # No pong: the next GET is answered with CLOSE when the timeout hits.
            assert (await get(client, sid)).text == "1"
            await wait_until(lambda: engine.recorder.reasons.get(sid) == "ping timeout")
            assert error_of(await get(client, sid)) == (400, 1, "Session ID unknown")

    async def test_polling_timeout_without_any_get(self, start: EngineFactory) -> None:
        engine = start(ping_interval=0.2, ping_timeout=0.2)
        async with http(engine) as client:
            sid, _ = await handshake(client)
            await wait_until(lambda: engine.recorder.reasons.get(sid) == "ping timeout")
            assert error_of(await post(client, sid, "4late")) == (400, 1, "Session ID unknown")

    async def test_websocket_pongs_keep_it_alive_then_timeout(self, start: EngineFactory) -> None:
        engine = start(ping_interval=0.2, ping_timeout=0.2)
        async with ws_connect(engine) as ws:
            sid = (await ws_open(ws))["sid"]
            for _ in range(3):
                assert await ws_recv(ws) == "2"
                await ws.send("3")
            assert await ws_recv(ws) == "2"
            await closes(ws)
        await wait_until(lambda: engine.recorder.reasons.get(sid) == "ping timeout")

    async def test_upgraded_session_keeps_its_heartbeat(self, start: EngineFactory) -> None:
        engine = start(ping_interval=0.2, ping_timeout=0.2)
        async with http(engine) as client, ws_connect(engine, (await handshake(client))[0]) as ws:
            sid = next(iter(engine.app.sessions))
            await ws.send("2probe")
            assert await ws_recv(ws) == "3probe"
            await ws.send("5")
            for _ in range(2):
                assert await ws_recv(ws) == "2"
                await ws.send("3")
            assert await ws_recv(ws) == "2"
            await closes(ws)
        await wait_until(lambda: engine.recorder.reasons.get(sid) == "ping timeout")


# -- errors -----------------------------------------------------------------------


class TestErrorCodes:
    async def test_0_unknown_transport(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            for qs in ("?EIO=4&transport=flash", "?EIO=4", "?transport=&EIO=4"):
                assert error_of(await client.get(qs)) == (400, 0, "Transport unknown")

    async def test_1_unknown_sid(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            assert error_of(await get(client, "nope")) == (400, 1, "Session ID unknown")
            assert error_of(await post(client, "nope", "4x")) == (400, 1, "Session ID unknown")

    async def test_2_bad_handshake_method(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            r = await client.post(query(), content="4x")
            assert error_of(r) == (400, 2, "Bad handshake method")
            assert not engine.app.sessions

    async def test_3_bad_request(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            # The WebSocket transport asked for over plain HTTP.
            r = await client.get("?EIO=4&transport=websocket")
            assert error_of(r) == (400, 3, "Bad request")
            sid, _ = await handshake(client)
            r = await client.put(query(sid), content="4x")
            assert error_of(r) == (400, 3, "Bad request")

    async def test_4_forbidden_by_allow_request(self, start: EngineFactory) -> None:
        from starlette.requests import HTTPConnection

        from realtime.exceptions import EngineRequestError

        async def allow_request(conn: HTTPConnection) -> None:
            if conn.headers.get("x-token") != "secret":
                raise EngineRequestError(4, "Not allowed", status=403)

        engine = start(allow_request=allow_request)
        async with http(engine) as client:
            assert error_of(await client.get(query())) == (403, 4, "Not allowed")
            assert not engine.app.sessions
            sid, _ = await handshake(client, **{"x-token": "secret"})
            # The hook guards handshakes, not the session's later requests.
            assert (await post(client, sid, "4x")).text == "ok"
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(engine):
                pass
        assert_ws_refused(info.value, 403, 4)
        async with ws_connect(engine, additional_headers={"x-token": "secret"}) as ws:
            await ws_open(ws)

    async def test_4_forbidden_foreign_origin(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            r = await client.get(query(), headers={"origin": "https://evil.example"})
            assert error_of(r) == (403, 4, "Forbidden")
            assert "access-control-allow-origin" not in r.headers
            assert not engine.app.sessions

    async def test_5_unsupported_protocol_version(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            for qs in ("?EIO=3&transport=polling", "?transport=polling", "?EIO=&transport=polling"):
                r = await client.get(qs)
                assert error_of(r) == (400, 5, "Unsupported protocol version")

    @pytest.mark.parametrize(
        ("qs", "code"),
        [
            ("?EIO=4&transport=polling", 0),
            ("?EIO=3&transport=websocket", 5),
            ("?EIO=4&transport=flash", 0),
            ("", 0),
        ],
    )
    async def test_websocket_with_bad_query_is_refused(
        self, start: EngineFactory, qs: str, code: int
    ) -> None:
        from websockets.asyncio.client import connect

        engine = start()
        with pytest.raises(InvalidStatus) as info:
            async with connect(engine.ws_url + qs, open_timeout=STEP):
                pass
        assert_ws_refused(info.value, 400, code)

    async def test_other_paths_are_404(self, start: EngineFactory) -> None:
        engine = start()
        async with httpx.AsyncClient(base_url=engine.url, timeout=STEP) as client:
            assert (await client.get("/other/?EIO=4&transport=polling")).status_code == 404


# -- limits -----------------------------------------------------------------------


class TestMaxPayload:
    async def test_polling_at_the_limit_and_over(self, start: EngineFactory) -> None:
        engine = start(max_payload=1000)
        async with http(engine) as client:
            sid, _ = await handshake(client)
            at_limit = "4" + "x" * 499 + SEP + "4" + "é" * 249  # 500 + 1 + 1 + 498 bytes
            assert len(at_limit.encode()) == 1000
            assert (await post(client, sid, at_limit)).text == "ok"
            assert (await get(client, sid)).text == at_limit
            r = await post(client, sid, "4" + "x" * 1000)
            assert error_of(r) == (413, 3, "Payload too large")
            await wait_until(lambda: engine.recorder.reasons.get(sid) == "transport error")
            assert error_of(await get(client, sid)) == (400, 1, "Session ID unknown")
            assert engine.recorder.messages[sid] == ["x" * 499, "é" * 249]

    @pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
    async def test_websocket_at_the_limit_and_over(
        self, start: EngineFactory, binary: bool
    ) -> None:
        engine = start(max_payload=1000)
        async with ws_connect(engine) as ws:
            sid = (await ws_open(ws))["sid"]
            at_limit: str | bytes = b"\x01" * 1000 if binary else "4" + "é" * 499 + "x"
            assert len(at_limit if binary else at_limit.encode()) == 1000  # type: ignore[union-attr]
            await ws.send(at_limit)
            assert await ws_recv(ws) == at_limit
            await ws.send(b"\x01" * 1001 if binary else "4" + "x" * 1000)
            assert await closes(ws) == 1009
        await wait_until(lambda: engine.recorder.reasons.get(sid) == "transport error")

    async def test_websocket_multibyte_over_the_limit(self, start: EngineFactory) -> None:
        # 601 characters, 1201 bytes: over the limit only when counted in bytes.
        engine = start(max_payload=1000)
        async with ws_connect(engine) as ws:
            await ws_open(ws)
            await ws.send("4" + "é" * 600)
            assert await closes(ws) == 1009


class TestConcurrentRequests:
    async def test_second_get(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            sid, _ = await handshake(client)
            first: list[httpx.Response] = []
            async with anyio.create_task_group() as tg:

                async def long_poll() -> None:
                    first.append(await get(client, sid))

                tg.start_soon(long_poll)
                await wait_until(lambda: engine.session(sid).poll_pending)
                assert error_of(await get(client, sid)) == (400, 3, "Bad request")
            assert first[0].status_code == 200
            assert first[0].text == "1"
            assert error_of(await get(client, sid)) == (400, 1, "Session ID unknown")
            await wait_until(lambda: engine.recorder.reasons.get(sid) == "transport error")

    async def test_second_post(self, start: EngineFactory) -> None:
        engine = start()
        release = anyio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            yield b"4first"
            await release.wait()
            yield b"\x1e4second"

        async with http(engine) as client:
            sid, _ = await handshake(client)
            first: list[httpx.Response] = []
            async with anyio.create_task_group() as tg:

                async def slow_post() -> None:
                    first.append(await client.post(query(sid), content=slow_body()))

                tg.start_soon(slow_post)
                await wait_until(lambda: engine.session(sid).post_active)
                r = await post(client, sid, "4other")
                assert error_of(r) == (400, 3, "Bad request")
                release.set()
            assert first[0].status_code in (200, 400)
            await wait_until(lambda: engine.recorder.reasons.get(sid) == "transport error")
            assert error_of(await get(client, sid)) == (400, 1, "Session ID unknown")
            assert "other" not in engine.recorder.messages[sid]


# -- CORS and Origin ----------------------------------------------------------------

GOOD = "http://good.example"
EVIL = "https://evil.example"


class TestCors:
    async def test_off_by_default(self, start: EngineFactory) -> None:
        engine = start()
        same = engine.url
        async with http(engine) as client:
            for headers in ({}, {"origin": same}):
                r = await client.get(query(), headers=headers)
                assert r.status_code == 200
                assert not [h for h in r.headers if h.startswith("access-control-")]
            r = await client.get(query(), headers={"origin": EVIL})
            assert error_of(r) == (403, 4, "Forbidden")
            r = await client.options(query(), headers={"origin": EVIL})
            assert error_of(r) == (403, 4, "Forbidden")
            # A session's own requests are refused from a foreign origin too.
            sid, _ = await handshake(client)
            r = await client.post(query(sid), content="4x", headers={"origin": EVIL})
            assert error_of(r) == (403, 4, "Forbidden")
            assert engine.recorder.messages[sid] == []

    async def test_allow_list_with_credentials(self, start: EngineFactory) -> None:
        engine = start(cors_origins=[GOOD], cors_credentials=True)
        async with http(engine, headers={"origin": GOOD}) as client:
            r = await client.get(query())
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == GOOD
            assert r.headers["access-control-allow-credentials"] == "true"
            assert r.headers["vary"] == "Origin"
            sid = json.loads(r.text[1:])["sid"]
            r = await post(client, sid, "4x")
            assert r.text == "ok"
            assert r.headers["access-control-allow-origin"] == GOOD
            r = await client.options(
                query(sid),
                headers={
                    "access-control-request-method": "POST",
                    "access-control-request-headers": "content-type",
                },
            )
            assert r.status_code == 204
            assert r.headers["access-control-allow-origin"] == GOOD
            assert r.headers["access-control-allow-credentials"] == "true"
            assert "POST" in r.headers["access-control-allow-methods"]
            assert r.headers["access-control-allow-headers"] == "content-type"
            # Errors carry the CORS headers too, so the page can read them.
            r = await get(client, "nope")
            assert error_of(r) == (400, 1, "Session ID unknown")
            assert r.headers["access-control-allow-origin"] == GOOD
        async with http(engine, headers={"origin": EVIL}) as client:
            r = await client.get(query())
            assert error_of(r) == (403, 4, "Forbidden")
            assert "access-control-allow-origin" not in r.headers
            r = await client.options(query(), headers={"access-control-request-method": "POST"})
            assert r.status_code == 403
            assert "access-control-allow-origin" not in r.headers

    async def test_any_origin(self, start: EngineFactory) -> None:
        engine = start(cors_origins="*")
        async with http(engine, headers={"origin": EVIL}) as client:
            r = await client.get(query())
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == "*"
            assert "access-control-allow-credentials" not in r.headers
            r = await client.options(query(), headers={"access-control-request-method": "POST"})
            assert r.status_code == 204
            assert r.headers["access-control-allow-origin"] == "*"

    async def test_websocket_from_foreign_origin_refused(self, start: EngineFactory) -> None:
        engine = start()
        with pytest.raises(InvalidStatus) as info:
            async with ws_connect(engine, origin=EVIL):
                pass
        assert_ws_refused(info.value, 403, 4)
        assert not engine.app.sessions
        async with ws_connect(engine, origin=engine.url) as ws:
            await ws_open(ws)

    async def test_upgrade_from_foreign_origin_refused(self, start: EngineFactory) -> None:
        engine = start(cors_origins=[GOOD])
        async with http(engine) as client:
            sid, _ = await handshake(client)
            with pytest.raises(InvalidStatus) as info:
                async with ws_connect(engine, sid, origin=EVIL):
                    pass
            assert_ws_refused(info.value, 403, 4)
            # The session is untouched and still on polling.
            assert (await post(client, sid, "4still")).text == "ok"
            assert (await get(client, sid)).text == "4still"
            async with ws_connect(engine, sid, origin=GOOD) as ws:
                await ws.send("2probe")
                assert await ws_recv(ws) == "3probe"


# -- many tiny packets -------------------------------------------------------------------


class TestTinyPackets:
    async def test_big_body_of_tiny_packets_does_not_block_others(
        self, start: EngineFactory
    ) -> None:
        """100k ``4x`` records in one POST: all delivered, and while they are
        dispatched another session's pending GET is answered (the server checks,
        when the last record is dispatched, that the other GET already left)."""
        count = 100_000
        recorder = Recorder()
        recorder.echo = False
        engine = start(recorder)
        seen: dict[str, bool] = {}
        async with http(engine) as client:
            sid_a, _ = await handshake(client)
            sid_b, _ = await handshake(client)
            session_b = engine.session(sid_b)

            def hook(session: EngineSession, data: str | bytes) -> None:
                if session.sid != sid_a:
                    return
                received = len(recorder.messages[sid_a])
                if received == count // 2:
                    session_b.send("while-busy")
                elif received == count:
                    seen["other GET answered meanwhile"] = not session_b.poll_pending

            recorder.hook = hook
            polled: list[httpx.Response] = []
            async with anyio.create_task_group() as tg:

                async def poll_b() -> None:
                    polled.append(await get(client, sid_b))

                tg.start_soon(poll_b)
                await wait_until(lambda: session_b.poll_pending)
                body = SEP.join(["4x"] * count)
                assert len(body) < engine.app.config.max_payload
                r = await post(client, sid_a, body)
                assert r.text == "ok"
            assert polled[0].text == "4while-busy"
        assert len(recorder.messages[sid_a]) == count
        assert set(recorder.messages[sid_a]) == {"x"}
        assert seen == {"other GET answered meanwhile": True}


# -- closing ---------------------------------------------------------------------------


class TestClose:
    async def test_server_close_on_polling_delivers_queued_then_close(
        self, start: EngineFactory
    ) -> None:
        engine = start()
        async with http(engine) as client:
            sid, _ = await handshake(client)
            assert (await post(client, sid, "4cmd:close")).text == "ok"
            r = await get(client, sid)
            assert split(r.text) == ["4bye1", "4bye2", "1"]
            assert error_of(await get(client, sid)) == (400, 1, "Session ID unknown")
        await wait_until(lambda: engine.recorder.reasons.get(sid) == "forced close")

    async def test_server_api_by_sid(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            sid, _ = await handshake(client)
            assert (await post(client, sid, "4cmd:api")).text == "ok"
            assert split((await get(client, sid)).text) == ["4api1", "1"]
            assert error_of(await get(client, sid)) == (400, 1, "Session ID unknown")
        await wait_until(lambda: engine.recorder.reasons.get(sid) == "forced close")

    async def test_server_close_with_a_get_pending(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            sid, _ = await handshake(client)
            polled: list[httpx.Response] = []
            async with anyio.create_task_group() as tg:

                async def long_poll() -> None:
                    polled.append(await get(client, sid))

                tg.start_soon(long_poll)
                await wait_until(lambda: engine.session(sid).poll_pending)
                assert (await post(client, sid, "4cmd:close")).text == "ok"
            assert split(polled[0].text) == ["4bye1", "4bye2", "1"]
            assert error_of(await get(client, sid)) == (400, 1, "Session ID unknown")
        await wait_until(lambda: engine.recorder.reasons.get(sid) == "forced close")

    async def test_server_close_on_websocket(self, start: EngineFactory) -> None:
        engine = start()
        async with ws_connect(engine) as ws:
            sid = (await ws_open(ws))["sid"]
            await ws.send("4cmd:close")
            assert await ws_recv(ws) == "4bye1"
            assert await ws_recv(ws) == "4bye2"
            assert await closes(ws) == 1000
        await wait_until(lambda: engine.recorder.reasons.get(sid) == "forced close")

    async def test_client_close_on_polling(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            sid, _ = await handshake(client)
            assert (await post(client, sid, "1")).text == "ok"
            await wait_until(lambda: engine.recorder.reasons.get(sid) == "transport close")
            assert error_of(await get(client, sid)) == (400, 1, "Session ID unknown")

    async def test_client_close_with_a_get_pending(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            sid, _ = await handshake(client)
            polled: list[httpx.Response] = []
            async with anyio.create_task_group() as tg:

                async def long_poll() -> None:
                    polled.append(await get(client, sid))

                tg.start_soon(long_poll)
                await wait_until(lambda: engine.session(sid).poll_pending)
                assert (await post(client, sid, "1")).text == "ok"
            assert polled[0].text == "6"
        await wait_until(lambda: engine.recorder.reasons.get(sid) == "transport close")

    async def test_client_close_on_websocket(self, start: EngineFactory) -> None:
        engine = start()
        async with ws_connect(engine) as ws:
            sid = (await ws_open(ws))["sid"]
            await ws.send("1")
            await closes(ws)
        await wait_until(lambda: engine.recorder.reasons.get(sid) == "transport close")

    async def test_lifespan_shutdown_closes_sessions(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            sids = [(await handshake(client))[0] for _ in range(3)]
        await anyio.to_thread.run_sync(engine.stop)
        assert not engine.app.running
        assert engine.recorder.reasons == dict.fromkeys(sids, "server shutting down")


# -- malformed input ------------------------------------------------------------------


async def still_serving(engine: Running) -> None:
    """A fresh polling session and a fresh WebSocket session both echo."""
    async with http(engine) as client:
        sid, _ = await handshake(client)
        assert (await post(client, sid, "4alive")).text == "ok"
        assert (await get(client, sid)).text == "4alive"
    async with ws_connect(engine) as ws:
        await ws_open(ws)
        await ws.send("4alive")
        assert await ws_recv(ws) == "4alive"


class TestMalformedInput:
    @pytest.mark.parametrize(
        "body",
        [b"", b"zzz", b"4a\x1e", b"\x1e", b"b!!!", b"bAQIDBA", b"\xff\xfe", b"4k\x1e9", b"2", b"0"],
    )
    async def test_garbage_post_body(self, start: EngineFactory, body: bytes) -> None:
        engine = start()
        async with http(engine) as client:
            other, _ = await handshake(client)
            sid, _ = await handshake(client)
            r = await post(client, sid, body)
            assert error_of(r) == (400, 3, "Bad request")
            # A client PING is the reference server's "invalid heartbeat direction".
            reason = "transport error" if body == b"2" else "parse error"
            await wait_until(lambda: engine.recorder.reasons.get(sid) == reason)
            assert error_of(await get(client, sid)) == (400, 1, "Session ID unknown")
            # Another session is unaffected.
            assert (await post(client, other, "4fine")).text == "ok"
            assert (await get(client, other)).text == "4fine"

    async def test_post_aborted_mid_body_is_a_transport_error(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            other, _ = await handshake(client)
            sid, _ = await handshake(client)
            host, port = engine.host.split(":")
            stream = await anyio.connect_tcp(host, int(port))
            async with stream:
                head = (
                    f"POST {PATH}?{query(sid)[1:]} HTTP/1.1\r\nHost: {engine.host}\r\n"
                    "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: 1000\r\n\r\n"
                )
                await stream.send(head.encode() + b"4only part of the bo")
            # The client went away before the body was whole: not a parse error.
            await wait_until(lambda: engine.recorder.reasons.get(sid) == "transport error")
            assert (await post(client, other, "4fine")).text == "ok"
            assert (await get(client, other)).text == "4fine"

    async def test_binary_content_type(self, start: EngineFactory) -> None:
        engine = start()
        async with http(engine) as client:
            sid, _ = await handshake(client)
            r = await client.post(
                query(sid), content=b"4x", headers={"content-type": "application/octet-stream"}
            )
            assert error_of(r) == (400, 3, "Bad request")
            assert engine.recorder.messages[sid] == []
        await still_serving(engine)

    @pytest.mark.parametrize(
        ("qs", "code"),
        [
            ("", 0),
            ("?", 0),
            ("?%%%&&==", 0),
            ("?EIO=4&transport=polling%00", 0),
            ("?EIO=%ff&transport=polling", 5),
            ("?EIO=4&transport=polling&sid=%00%ff%fe", 1),
            ("?EIO=4&transport=polling&sid=" + "a" * 4000, 1),
        ],
    )
    async def test_bad_query_strings(self, start: EngineFactory, qs: str, code: int) -> None:
        engine = start()
        async with http(engine) as client:
            for method in ("GET", "POST"):
                r = await client.request(method, engine.http_url + qs, content=b"4x")
                status, got, _ = error_of(r)
                assert (status, got) == (400, code)
        assert not engine.app.sessions
        await still_serving(engine)

    @pytest.mark.parametrize(
        "frame",
        ["", "x", "9", "\x00garbage", "0", "0{}"],
    )
    async def test_bad_websocket_frames(self, start: EngineFactory, frame: str) -> None:
        engine = start()
        async with ws_connect(engine) as other:
            other_sid = (await ws_open(other))["sid"]
            async with ws_connect(engine) as ws:
                sid = (await ws_open(ws))["sid"]
                await ws.send(frame)
                await closes(ws)
            await wait_until(lambda: engine.recorder.reasons.get(sid) == "parse error")
            await other.send("4fine")
            assert await ws_recv(other) == "4fine"
            assert other_sid not in engine.recorder.reasons

    async def test_random_binary_frames_are_just_messages(self, start: EngineFactory) -> None:
        engine = start()
        blobs = [bytes(range(256)), b"\xff" * 10, b"\x1e4x\x1e", b"0{}", b""]
        async with ws_connect(engine) as ws:
            sid = (await ws_open(ws))["sid"]
            for blob in blobs:
                await ws.send(blob)
                assert await ws_recv(ws) == blob
        assert engine.recorder.messages[sid] == blobs

    async def test_invalid_utf8_text_frame(self, start: EngineFactory) -> None:
        engine = start()
        async with ws_connect(engine) as ws:
            sid = (await ws_open(ws))["sid"]
            await ws.send(b"4\xff\xfe", text=True)
            await closes(ws)
        await wait_until(lambda: sid in engine.recorder.reasons)
        await still_serving(engine)

    async def test_random_bytes_on_the_socket(self, start: EngineFactory) -> None:
        engine = start()
        host, port = engine.host.split(":")
        async with http(engine) as client:
            sid, _ = await handshake(client)
            for junk in (bytes(range(256)) * 4, b"GET / HTTP/9.9\r\n\r\n", b"\r\n\r\n\x00"):
                async with await anyio.connect_tcp(host, int(port)) as stream:
                    await stream.send(junk)
                    # The HTTP server answers 400 and hangs up, or waits for more;
                    # either way the sessions below must not notice.
                    with anyio.move_on_after(0.5):
                        try:
                            while await stream.receive():
                                pass
                        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                            pass
            assert (await post(client, sid, "4fine")).text == "ok"
            assert (await get(client, sid)).text == "4fine"
        await still_serving(engine)
