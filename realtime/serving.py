"""Run an app on uvicorn with the settings a realtime server wants.

``permessage-deflate`` is off, as in the reference Socket.IO server: most
realtime messages are small, compressing each one costs CPU per message and
per recipient, and a compressing client may deliver a frame later than an HTTP
request it started afterwards. A graceful-shutdown timeout bounds how long a
pending long-poll GET can hold up a restart.
"""

from __future__ import annotations

from typing import Any

import uvicorn

DEFAULTS: dict[str, Any] = {
    "ws_per_message_deflate": False,
    "timeout_graceful_shutdown": 5,
    "log_level": "info",
}


def run(app: Any, *, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """``uvicorn.run(app, ...)`` with :data:`DEFAULTS`; ``options`` override them."""
    uvicorn.run(app, host=host, port=port, **{**DEFAULTS, **options})
