"""The ``realtime`` target for ``benchmarks.instructions``: no timers in the way.

The same three events as :mod:`benchmarks.targets.realtime_app`, but with a
heartbeat too slow to fire during a run (pings and the heartbeat's sweep over
every session are work that depends on how long a run takes, not on how many
messages it carries, and a run under callgrind is slow). It uses only the API
that every compared commit has, and is imported from this tree whichever
``realtime`` runs it.
"""

from __future__ import annotations

from typing import Any

import realtime

#: Far longer than any counted run (an hour), for both commits alike; the
#: sweep of connections that join no namespace runs every QUIET / 10 seconds.
QUIET = 3600.0

sio = realtime.Server(ping_interval=QUIET, ping_timeout=QUIET, connect_timeout=QUIET)


@sio.on("echo")
async def echo(socket: Any, *args: Any) -> None:
    await socket.emit("echo", *args)


@sio.on("ack")
async def ack(socket: Any, *args: Any) -> Any:
    return args


@sio.on("bcast")
async def bcast(socket: Any, *args: Any) -> None:
    await sio.emit("bcast", *args)


app = sio.asgi_app()
