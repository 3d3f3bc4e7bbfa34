"""Binary attachments: swap bytes for placeholders on the way out, and back on the way in.

Spec: socket.io-protocol v5, "Packet encoding". A packet whose payload holds
binary data is sent as one text packet where each bytes object is replaced by
``{"_placeholder": true, "num": <n>}``, followed by ``n`` binary frames in order.
"""

from __future__ import annotations

from typing import Any

from realtime.exceptions import EncodeError, SocketIOPacketError

BINARY_TYPES = (bytes, bytearray, memoryview)


def has_binary(data: Any) -> bool:
    """True if ``data`` holds a bytes-like object anywhere inside lists, tuples or dicts.

    Each container is looked into once, so circular data ends the walk (the JSON
    encoder then refuses it) instead of growing the stack without end.
    """
    stack = [data]
    seen: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, BINARY_TYPES):
            return True
        if isinstance(item, list | tuple | dict):
            if id(item) in seen:
                continue
            seen.add(id(item))
            stack.extend(item.values() if isinstance(item, dict) else item)
    return False


def deconstruct(data: Any) -> tuple[Any, list[bytes]]:
    """Return ``data`` with every bytes object replaced by a placeholder, and the bytes in order."""
    attachments: list[bytes] = []
    path: set[int] = set()  # the containers being walked: one seen again is a cycle

    def walk(item: Any) -> Any:
        if isinstance(item, BINARY_TYPES):
            placeholder = {"_placeholder": True, "num": len(attachments)}
            attachments.append(bytes(item))
            return placeholder
        if not isinstance(item, list | tuple | dict):
            return item
        if id(item) in path:
            raise EncodeError("data cannot be sent as JSON: circular reference")
        path.add(id(item))
        if isinstance(item, dict):
            copy: Any = {key: walk(value) for key, value in item.items()}
        else:
            copy = [walk(x) for x in item]
        path.discard(id(item))
        return copy

    return walk(data), attachments


def _placeholder_index(item: dict[str, Any], count: int) -> int:
    num = item.get("num")
    # bool is an int subclass in Python; ``true`` is not a valid attachment index.
    if type(num) is not int or not 0 <= num < count:
        raise SocketIOPacketError(f"illegal attachment placeholder num {num!r}")
    return num


def reconstruct(data: Any, attachments: list[bytes]) -> Any:
    """Replace each placeholder in ``data`` with its attachment.

    Raises :class:`SocketIOPacketError` for a placeholder whose ``num`` is not
    an integer index into ``attachments``.
    """

    def walk(item: Any) -> Any:
        if isinstance(item, list):
            return [walk(x) for x in item]
        if isinstance(item, dict):
            if item.get("_placeholder") is True:
                return attachments[_placeholder_index(item, len(attachments))]
            return {key: walk(value) for key, value in item.items()}
        return item

    return walk(data)
