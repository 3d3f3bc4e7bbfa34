"""Which WebSocket sends the engine may begin in one task and let another finish."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

from realtime.engineio.websocket import resumable


class OwnSend(WebSocketsSansIOProtocol):
    async def send(self, message: Any) -> None:  # type: ignore[override]
        await super().send(message)


def bound_send(cls: type) -> Any:
    # The method as the ASGI server hands it to the app, on an instance not set up.
    return cls.send.__get__(object.__new__(cls), cls)


def test_uvicorn_sans_io_and_wsproto_sends_are_resumable() -> None:
    assert resumable(bound_send(WebSocketsSansIOProtocol))
    assert resumable(bound_send(WSProtocol))


def test_a_subclass_with_its_own_send_is_not() -> None:
    assert not resumable(bound_send(OwnSend))


def test_a_wrapping_function_is_not() -> None:
    inner = bound_send(WebSocketsSansIOProtocol)

    async def send(message: Any) -> None:
        await inner(message)

    assert not resumable(send)
