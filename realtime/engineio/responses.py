"""Raw ASGI HTTP responses: the engine's hot paths skip Starlette's Response objects."""

from __future__ import annotations

import json

from starlette.types import Send

from realtime.exceptions import EngineRequestError

Headers = list[tuple[bytes, bytes]]

TEXT = (b"content-type", b"text/plain; charset=UTF-8")
JSON = (b"content-type", b"application/json")
NO_STORE = (b"cache-control", b"no-store")


async def send_response(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_text(send: Send, text: str, headers: Headers, status: int = 200) -> None:
    """``send_response`` for a text body, with the header list built once (hot path)."""
    body = text.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [TEXT, NO_STORE, *headers, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: EngineRequestError, headers: Headers) -> None:
    """The reference server's error body: ``{"code": n, "message": "..."}``."""
    body = json.dumps({"code": error.code, "message": error.message}).encode("utf-8")
    await send_response(send, error.status, body, [JSON, *headers])
