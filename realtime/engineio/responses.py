"""Raw ASGI HTTP responses: the engine's hot paths skip Starlette's Response objects."""

from __future__ import annotations

import json

from starlette.types import Send

from realtime.exceptions import EngineRequestError

Header = tuple[bytes, bytes]
Headers = list[Header]

TEXT = (b"content-type", b"text/plain; charset=UTF-8")
JSON = (b"content-type", b"application/json")
NO_STORE = (b"cache-control", b"no-store")


async def send_response(
    send: Send, status: int, body: bytes, headers: Headers, first: tuple[Header, ...] = ()
) -> None:
    """``first``, then ``headers``: one list built per response (a hot path for polling)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*first, *headers, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


_TEXT_FIRST = (TEXT, NO_STORE)


async def send_text(send: Send, text: str, headers: Headers, status: int = 200) -> None:
    await send_response(send, status, text.encode("utf-8"), headers, _TEXT_FIRST)


async def send_error(send: Send, error: EngineRequestError, headers: Headers) -> None:
    """The reference server's error body: ``{"code": n, "message": "..."}``."""
    body = json.dumps({"code": error.code, "message": error.message}).encode("utf-8")
    await send_response(send, error.status, body, headers, (JSON,))
