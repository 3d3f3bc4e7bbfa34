"""A Socket.IO client that sends events as fast as it can, for the flood test.

Run as ``python -m tests.live.flooder URL EVENT COUNT SECONDS``, in its own
process so that its sending does not share an interpreter (and its lock) with
the server and the clients under test. It joins the main namespace over a bare
WebSocket, prints the engine sid on the first line of stdout, then sends
``42["EVENT",i]`` for i = 0, 1, ... until its stdin closes, it has sent
COUNT events, SECONDS have passed, or the server closes. It answers the
heartbeat like any client (flooding is its only fault), and then prints the
number of events it sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


async def _answer_pings(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for frame in ws:
            if frame == "2":
                await ws.send("3")


async def _send(ws: ClientConnection, event: str, count: int, sent: list[int]) -> None:
    with contextlib.suppress(ConnectionClosed):
        while sent[0] < count:
            await ws.send(f'42["{event}",{sent[0]}]')
            sent[0] += 1
            if sent[0] % 64 == 0:
                await asyncio.sleep(0)  # let the heartbeat answer go out


async def flood(url: str, event: str, count: int, seconds: float) -> int:
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with connect(ws_url, max_size=None, open_timeout=10, compression=None) as ws:
        opened = await ws.recv()
        assert isinstance(opened, str), opened
        assert opened.startswith("0"), opened
        await ws.send("40")
        joined = await ws.recv()
        assert isinstance(joined, str), joined
        assert joined.startswith("40"), joined
        print(json.loads(opened[1:])["sid"], flush=True)
        pings = asyncio.create_task(_answer_pings(ws))
        sent = [0]
        sender = asyncio.create_task(_send(ws, event, count, sent))
        loop = asyncio.get_running_loop()

        def until_stdin_closes() -> None:
            sys.stdin.read()
            loop.call_soon_threadsafe(sender.cancel)

        # A send blocked by the server's backpressure is cancelled, not waited for.
        threading.Thread(target=until_stdin_closes, daemon=True).start()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(sender, seconds)
        pings.cancel()
        # Reported before the close handshake, which waits for the server to
        # read everything still buffered on its way.
        print(sent[0], flush=True)
        return sent[0]


def main() -> None:
    url, event, count, seconds = sys.argv[1:5]
    asyncio.run(flood(url, event, int(count), float(seconds)))


if __name__ == "__main__":
    main()
