"""Our target: ``realtime.Server`` served by uvicorn.

Same events as every Socket.IO target: ``echo`` emits its arguments back,
``ack`` returns them as the acknowledgement, ``bcast`` emits them to every
connected socket.

With ``BENCH_REDIS_URL`` set (scenario ``fanout-redis``) the server is one node
of a cluster through :class:`realtime.adapters.redis.RedisAdapter`, on the
channel prefix ``BENCH_REDIS_KEY``. With ``BENCH_QUIET=1`` no timer fires
during a run (see ``QUIET``). ``BENCH_OPTIONS`` (JSON) adds Server options.
"""

from __future__ import annotations

import json
import os
from typing import Any

import realtime

#: ``BENCH_QUIET=1`` (benchmarks.instructions): heartbeat and the connect-timeout
#: sweep at an hour, far longer than any counted run, so that no work that
#: grows with a run's duration rather than its messages is counted. It uses only
#: options that every compared commit has.
QUIET = 3600.0
options: dict[str, Any] = {}
if os.environ.get("BENCH_QUIET") == "1":
    options = {"ping_interval": QUIET, "ping_timeout": QUIET, "connect_timeout": QUIET}

REDIS_URL = os.environ.get("BENCH_REDIS_URL")
if REDIS_URL:
    from realtime.adapters.redis import RedisAdapter

    key = os.environ.get("BENCH_REDIS_KEY", "socket.io")
    options["adapter"] = RedisAdapter.factory(url=REDIS_URL, key=key)
# ``BENCH_OPTIONS``: more Server options as JSON, e.g. '{"async_handlers": false}'
# (benchmarks.instructions --now-env compares a setting against the default).
options.update(json.loads(os.environ.get("BENCH_OPTIONS", "{}")))
sio = realtime.Server(**options)


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
