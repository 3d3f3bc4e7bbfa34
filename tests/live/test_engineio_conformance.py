"""Engine.IO v4 conformance, case by case, against a live echo server.

One test per case of the public engine.io-protocol test suite, same names and
the same requests and expectations. The server under test is
``examples/conformance/engineio_server.py`` (an echo server at ``/engine.io/``
with pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6), or whatever
``CONFORMANCE_EIO_URL`` / ``CONFORMANCE_URL`` points at.

Where the suite's outcome depends on timing, these tests follow the order a
real client follows instead (noted on each such test); assertions are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import httpx
import pytest

from tests.live.conformance_client import (
    STEP,
    Conn,
    conformance_server,
    get_once_sent,
    http_client,
    init_polling_session,
    open_ws,
    polling_forceful_close,
    polling_opens_a_session,
    polling_ping_pong,
    polling_ping_timeout,
    polling_rejects_bad_eio,
    polling_rejects_bad_method,
    polling_rejects_bad_transport,
    post_expecting_failure,
    websocket_forceful_close,
    websocket_opens_a_session,
    websocket_ping_pong,
    websocket_ping_timeout,
    websocket_rejects_bad_eio,
    websocket_rejects_bad_transport,
    ws_refused,
    ws_url,
)

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(5)]

PATH = "/engine.io/"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    yield from conformance_server("engineio_server.py", "CONFORMANCE_EIO_URL")


def session_url(sid: str) -> str:
    return f"{PATH}?EIO=4&transport=polling&sid={sid}"


async def push_then_poll(client: httpx.AsyncClient, body: str) -> None:
    sid = await init_polling_session(client, PATH)
    push = await client.post(session_url(sid), content=body)
    assert push.status_code == 200
    assert push.text == "ok"
    poll = await client.get(session_url(sid))
    assert poll.status_code == 200
    assert poll.text == body


class TestHandshakeHttpLongPolling:
    async def test_successfully_opens_a_session(self, base_url: str) -> None:
        await polling_opens_a_session(base_url, PATH)

    async def test_fails_with_an_invalid_eio_query_parameter(self, base_url: str) -> None:
        await polling_rejects_bad_eio(base_url, PATH)

    async def test_fails_with_an_invalid_transport_query_parameter(self, base_url: str) -> None:
        await polling_rejects_bad_transport(base_url, PATH)

    async def test_fails_with_an_invalid_request_method(self, base_url: str) -> None:
        await polling_rejects_bad_method(base_url, PATH)


class TestHandshakeWebSocket:
    async def test_successfully_opens_a_session(self, base_url: str) -> None:
        await websocket_opens_a_session(base_url, PATH)

    async def test_fails_with_an_invalid_eio_query_parameter(self, base_url: str) -> None:
        await websocket_rejects_bad_eio(base_url, PATH)

    async def test_fails_with_an_invalid_transport_query_parameter(self, base_url: str) -> None:
        await websocket_rejects_bad_transport(base_url, PATH)


class TestMessageHttpLongPolling:
    async def test_sends_and_receives_a_payload_containing_one_plain_text_packet(
        self, base_url: str
    ) -> None:
        async with http_client(base_url) as client:
            await push_then_poll(client, "4hello")

    async def test_sends_and_receives_a_payload_containing_several_plain_text_packets(
        self, base_url: str
    ) -> None:
        async with http_client(base_url) as client:
            await push_then_poll(client, "4test1\x1e4test2\x1e4test3")

    async def test_sends_and_receives_a_payload_containing_plain_text_and_binary_packets(
        self, base_url: str
    ) -> None:
        async with http_client(base_url) as client:
            await push_then_poll(client, "4hello\x1ebAQIDBA==")

    async def test_closes_the_session_upon_invalid_packet_format(self, base_url: str) -> None:
        async with http_client(base_url) as client:
            sid = await init_polling_session(client, PATH)
            await post_expecting_failure(client, session_url(sid), "abc")
            poll = await client.get(session_url(sid))
            assert poll.status_code == 400

    async def test_closes_the_session_upon_duplicate_poll_requests(self, base_url: str) -> None:
        async with http_client(base_url) as client:
            sid = await init_polling_session(client, PATH)
            responses: dict[int, httpx.Response] = {}

            sent = anyio.Event()

            async def first() -> None:
                responses[0] = await get_once_sent(client, session_url(sid), sent)

            async def second() -> None:
                # The suite waits 5 ms; here the first GET is on the wire first.
                with anyio.fail_after(STEP):
                    await sent.wait()
                responses[1] = await client.get(session_url(sid) + "&t=burst")

            async with anyio.create_task_group() as tg:
                tg.start_soon(first)
                tg.start_soon(second)

            assert responses[0].status_code == 200
            assert responses[0].text == "1"
            # the reference server answers 500, 400 is more fitting: both are accepted
            assert responses[1].status_code in (400, 500)
            poll = await client.get(session_url(sid))
            assert poll.status_code == 400


class TestMessageWebSocket:
    async def test_sends_and_receives_a_plain_text_packet(self, base_url: str) -> None:
        async with open_ws(ws_url(base_url, PATH, "EIO=4&transport=websocket")) as conn:
            await conn.recv()  # handshake
            await conn.send("4hello")
            assert await conn.recv() == "4hello"

    async def test_sends_and_receives_a_binary_packet(self, base_url: str) -> None:
        async with open_ws(ws_url(base_url, PATH, "EIO=4&transport=websocket")) as conn:
            await conn.recv()  # handshake
            await conn.send(bytes([1, 2, 3, 4]))
            assert await conn.recv() == bytes([1, 2, 3, 4])

    async def test_closes_the_session_upon_invalid_packet_format(self, base_url: str) -> None:
        async with open_ws(ws_url(base_url, PATH, "EIO=4&transport=websocket")) as conn:
            await conn.recv()  # handshake
            await conn.send("abc")
            # pings are answered, so only the bad packet can close the session
            await conn.wait_closed(answer_pings=True)


class TestHeartbeatHttpLongPolling:
    async def test_sends_ping_pong_packets(self, base_url: str) -> None:
        await polling_ping_pong(base_url, PATH)

    async def test_closes_the_session_upon_ping_timeout(self, base_url: str) -> None:
        await polling_ping_timeout(base_url, PATH)


class TestHeartbeatWebSocket:
    async def test_sends_ping_pong_packets(self, base_url: str) -> None:
        await websocket_ping_pong(base_url, PATH)

    async def test_closes_the_session_upon_ping_timeout(self, base_url: str) -> None:
        await websocket_ping_timeout(base_url, PATH)


class TestCloseHttpLongPolling:
    async def test_forcefully_closes_the_session(self, base_url: str) -> None:
        await polling_forceful_close(base_url, PATH)


class TestCloseWebSocket:
    async def test_forcefully_closes_the_session(self, base_url: str) -> None:
        await websocket_forceful_close(base_url, PATH)


async def probe_and_upgrade(conn: Conn) -> None:
    """Send "2probe" and "5" back to back, as the suite does."""
    await conn.send("2probe")
    await conn.send("5")


async def expect_probe_then_echo(conn: Conn) -> None:
    """Echo "4hello" over the upgraded WebSocket.

    The suite's next listener usually misses the "3probe" answer (it arrives
    while nobody listens); here every frame is seen, so it must come first.
    """
    await conn.send("4hello")
    assert await conn.recv() == "3probe"
    assert await conn.recv() == "4hello"


class TestUpgrade:
    async def test_successfully_upgrades_from_http_long_polling_to_websocket(
        self, base_url: str
    ) -> None:
        async with http_client(base_url) as client:
            sid = await init_polling_session(client, PATH)
            url = ws_url(base_url, PATH, f"EIO=4&transport=websocket&sid={sid}")
            async with open_ws(url) as conn:
                await conn.send("2probe")
                assert await conn.recv() == "3probe"

                poll = await client.get(session_url(sid))
                assert poll.status_code == 200
                assert poll.text == "6"  # noop ends the pending long-polling cycle

                await conn.send("5")
                await conn.send("4hello")
                assert await conn.recv() == "4hello"

    async def test_ignores_http_requests_with_same_sid_after_upgrade(self, base_url: str) -> None:
        async with http_client(base_url) as client:
            sid = await init_polling_session(client, PATH)
            url = ws_url(base_url, PATH, f"EIO=4&transport=websocket&sid={sid}")
            async with open_ws(url) as conn:
                await probe_and_upgrade(conn)
                # The suite polls right after sending "5", so whether the GET lands
                # before or after the server handled "5" (a GET during the upgrade
                # gets a "6" noop) is left to timing across two connections. An
                # echo on the WebSocket first proves "5" was handled.
                await expect_probe_then_echo(conn)

                poll = await client.get(session_url(sid))
                assert poll.status_code == 400

                await conn.send("4hello")
                assert await conn.recv() == "4hello"

    async def test_ignores_websocket_connection_with_same_sid_after_upgrade(
        self, base_url: str
    ) -> None:
        async with http_client(base_url) as client:
            sid = await init_polling_session(client, PATH)
            url = ws_url(base_url, PATH, f"EIO=4&transport=websocket&sid={sid}")
            async with open_ws(url) as conn:
                await probe_and_upgrade(conn)

                # refused whether it arrives during or after the upgrade
                await ws_refused(url)

                await expect_probe_then_echo(conn)

    async def test_ignores_websocket_connection_with_same_sid_during_upgrade(
        self, base_url: str
    ) -> None:
        """Not a suite case: the one above, with the second WebSocket surely mid-upgrade.

        The suite's second WebSocket usually arrives before the server has handled
        "2probe" and "5"; this pins that moment down: the first WebSocket is open
        but has not probed yet.
        """
        async with http_client(base_url) as client:
            sid = await init_polling_session(client, PATH)
            url = ws_url(base_url, PATH, f"EIO=4&transport=websocket&sid={sid}")
            async with open_ws(url) as conn:
                await ws_refused(url)

                await conn.send("2probe")
                assert await conn.recv() == "3probe"
                await conn.send("5")
                await conn.send("4hello")
                assert await conn.recv() == "4hello"
