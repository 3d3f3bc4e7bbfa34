"""Run an app on uvicorn with the settings and limits a realtime server wants.

``permessage-deflate`` is off, as in the reference Socket.IO server: most
realtime messages are small, compressing each one costs CPU per message and
per recipient, and a compressing client may deliver a frame later than an HTTP
request it started afterwards. A graceful-shutdown timeout bounds how long a
pending long-poll GET can hold up a restart.

The limits (see :data:`LIMITS`) are uvicorn's own; uvicorn has no timeout for
reading request headers or bodies, and its default parser (httptools) no cap on
header size, so a public server needs a proxy in front (README, "Behind a proxy").
"""

from __future__ import annotations

import resource
from typing import Any

import uvicorn

from realtime.engineio.config import EngineConfig

DEFAULTS: dict[str, Any] = {
    "ws_per_message_deflate": False,
    "timeout_graceful_shutdown": 5,
    "log_level": "info",
}

#: Most connections (HTTP and WebSocket) the server holds before it answers new
#: HTTP requests with 503, leaving file descriptors for the rest of the process.
MAX_CONNECTIONS = 10_000
#: File descriptors kept free for logs, Redis, outgoing requests...
SPARE_FDS = 100

#: uvicorn limits ``run`` sets (``options`` override each):
#:
#: ``h11_max_incomplete_event_size``
#:     Bytes of request line + headers the h11 parser buffers before it answers
#:     400 (used when uvicorn runs with ``http="h11"``; httptools has no cap).
#: ``timeout_keep_alive``
#:     Seconds an idle keep-alive HTTP connection stays open between requests.
#:     Polling clients send their next request at once, so a few seconds is plenty.
#: ``limit_concurrency``
#:     See :func:`default_limit_concurrency`.
#: ``ws_max_size``
#:     Set per app to the engine's ``max_payload`` (see :func:`uvicorn_options`),
#:     so an oversized WebSocket message is refused while it is read, not after.
LIMITS: dict[str, Any] = {
    "h11_max_incomplete_event_size": 16 * 1024,
    "timeout_keep_alive": 5,
}


def default_limit_concurrency() -> int:
    """:data:`MAX_CONNECTIONS`, or fewer when the process may not open that many files.

    uvicorn counts WebSockets and HTTP connections alike but refuses only new
    HTTP requests (503) past the limit; WebSocket upgrades are not counted
    against it, so the file-descriptor limit stays the last bound for those.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(SPARE_FDS, min(MAX_CONNECTIONS, soft - SPARE_FDS))


def max_payload_of(app: Any) -> int:
    """The engine's ``max_payload`` for a ``Server``, ``SocketIOApp`` or ``EngineServer``.

    Another app (one that mounts realtime inside it) gets the default.
    """
    for owner in (app, getattr(app, "server", None)):
        engine = getattr(owner, "engine", owner)
        config = getattr(engine, "config", None)
        if isinstance(config, EngineConfig):
            return config.max_payload
    return EngineConfig().max_payload


def uvicorn_options(app: Any, **options: Any) -> dict[str, Any]:
    """The keyword arguments ``run`` passes to uvicorn: defaults, limits, then ``options``."""
    return {
        **DEFAULTS,
        **LIMITS,
        "limit_concurrency": default_limit_concurrency(),
        "ws_max_size": max_payload_of(app),
        **options,
    }


def run(app: Any, *, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """``uvicorn.run(app, ...)`` with :func:`uvicorn_options`; ``options`` override them."""
    uvicorn.run(app, host=host, port=port, **uvicorn_options(app, **options))
