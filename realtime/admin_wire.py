"""The Admin UI's shapes: sockets as it lists them, times as it reads them, and
``socket.data`` watched for the UI's ``socket_updated`` (development mode)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from realtime.adapters.cluster import RemoteSocket
    from realtime.socketio.socket import Socket


def now_iso() -> str:
    """A JavaScript ``Date`` as JSON.stringify writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def serialize_remote(socket: RemoteSocket, nsp: str) -> dict[str, Any]:
    """A socket of another node (from ``fetch_sockets``), in the same shape.

    Its client id and transport travel in ``data["_admin"]``, where its own
    node put them, as the reference server does.
    """
    hs = socket.handshake
    raw_headers = hs.get("headers")
    headers: dict[str, Any] = raw_headers if isinstance(raw_headers, dict) else {}
    raw_admin = socket.data.get("_admin")
    admin: dict[str, Any] = raw_admin if isinstance(raw_admin, dict) else {}
    address = headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or hs.get("address")
    return {
        "id": socket.id,
        "clientId": admin.get("clientId"),
        "transport": admin.get("transport"),
        "nsp": nsp,
        "data": {k: v for k, v in socket.data.items() if k != "_admin"},
        "handshake": {
            "address": address,
            "headers": headers,
            "query": hs.get("query"),
            "issued": hs.get("issued"),
            "secure": hs.get("secure"),
            "time": hs.get("time"),
            "url": hs.get("url"),
            "xdomain": hs.get("xdomain"),
        },
        "rooms": sorted(socket.rooms),
    }


def serialize(socket: Socket) -> dict[str, Any]:
    """A socket in the shape of the UI's ``SerializedSocket``."""
    hs = socket.handshake
    headers = dict(hs.headers.items())
    address = headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or hs.address
    return {
        "id": socket.id,
        "clientId": socket.connection.session.sid[:12],
        "transport": socket.transport,
        "nsp": socket.namespace.name,
        "data": {k: v for k, v in socket.data.items() if k != "_admin"},
        "handshake": {
            "address": address,
            "headers": headers,
            "query": hs.query,
            "issued": int(hs.time * 1000),
            "secure": hs.secure,
            "time": datetime.fromtimestamp(hs.time, UTC).strftime("%a %b %d %Y %H:%M:%S GMT+0000"),
            "url": hs.url,
            "xdomain": hs.xdomain,
        },
        "rooms": sorted(socket.rooms),
    }


class WatchedData(dict[str, Any]):
    """``socket.data`` in development mode: reports each change of a top-level key.

    The reference server wraps ``socket.data`` in a proxy for the same purpose
    (the UI's ``socket_updated`` with the new data). A change inside a nested
    value is not seen: assign the key again to report it. Copies and pickles
    are plain dicts.
    """

    _changed: Callable[[dict[str, Any]], None] | None = None

    def __init__(self, data: dict[str, Any], changed: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(data)
        #: Called with this dict after each change (it must not hold the socket: no cycle).
        self._changed = changed

    def _report(self) -> None:
        if self._changed is not None:
            self._changed(self)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._report()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._report()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._report()

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        super().__setitem__(key, default)
        self._report()
        return default

    def pop(self, key: str, *default: Any) -> Any:
        missing = key not in self
        value = super().pop(key, *default)
        if not missing:
            self._report()
        return value

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self._report()
        return item

    def clear(self) -> None:
        super().clear()
        self._report()

    def __ior__(self, other: Any) -> WatchedData:  # type: ignore[misc,override]
        super().update(other)
        self._report()
        return self

    def __reduce__(self) -> tuple[type[dict[str, Any]], tuple[dict[str, Any]]]:
        return dict, (dict(self),)
