"""Calling application handlers, sync or async, and shaping their results."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias

#: An event handler: ``(socket, *args)`` for namespace handlers, ``(*args)`` for
#: handlers registered on one socket. Plain functions and coroutine functions both work.
Handler: TypeAlias = Callable[..., Any]

#: Connect middleware: ``(socket) -> None``; raise ConnectionRefusedError to refuse.
Middleware: TypeAlias = Callable[..., Awaitable[None] | None]


class _NoAck:
    """Return this from a handler to leave the event unacknowledged (the client's timeout fires)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_ACK"


NO_ACK: Final = _NoAck()


async def call(handler: Callable[..., Any], *args: Any) -> Any:
    """Call ``handler`` and await its result if it is awaitable.

    Sync handlers run on the event loop: they must not block.
    """
    result = handler(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def ack_args(result: Any) -> list[Any]:
    """A handler's return value as ACK arguments: ``None`` -> none, tuple -> several."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]


def ack_value(args: list[Any]) -> Any:
    """ACK arguments as one value for the awaiting emitter: none -> ``None``, one -> it,
    several -> a tuple (the mirror of :func:`ack_args`)."""
    if not args:
        return None
    if len(args) == 1:
        return args[0]
    return tuple(args)
