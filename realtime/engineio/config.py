"""Engine.IO server options: every limit is named here, with a safe default."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from starlette.requests import HTTPConnection

Transport = Literal["polling", "websocket"]

#: ``async def allow_request(conn) -> None``; raise :class:`~realtime.EngineRequestError`
#: (e.g. ``EngineRequestError(4, "Not allowed", status=403)``) to refuse a handshake.
AllowRequest = Callable[[HTTPConnection], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Options of an :class:`~realtime.engineio.EngineServer`. Times are in seconds.

    Parameters
    ----------
    path
        URL path the engine answers on; anything else gets 404.
    ping_interval
        The server sends a ping every ``ping_interval``.
    ping_timeout
        The session is closed ("ping timeout") when no pong arrives within
        ``ping_timeout`` after a ping.
    upgrade_timeout
        How long a WebSocket opened to upgrade a polling session may take to
        complete the ``2probe``/``3probe``/``5`` exchange before it is dropped.
    max_payload
        Largest polling body or WebSocket message accepted, in bytes. Enforced
        while the body is read: 413 on polling, close code 1009 on WebSocket.
    max_buffer_bytes
        Cap on bytes queued for one session that the client has not taken yet.
        Reaching it closes that session ("transport error"): a client that
        cannot keep up must not grow the server's memory without bound.
    close_timeout
        How long a server-closed polling session waits for the client's next
        GET to deliver the remaining packets and the CLOSE packet.
    heartbeat_ticks
        The heartbeat checks deadlines this many times per
        ``min(ping_interval, ping_timeout)``, so a ping or a timeout is late by
        at most that fraction of it (a tenth by default).
    packets_per_checkpoint
        A polling body may hold many tiny packets; the server yields to other
        tasks after this many, so one body never stalls the event loop.
    shutdown_timeout
        How long shutdown waits for disconnect handlers (run concurrently,
        one per session) before cancelling those still running.
    transports
        Which transports are offered. ``("websocket",)`` refuses polling.
    cors_origins
        ``None`` (default): no CORS headers, and requests from a foreign
        ``Origin`` are refused, WebSocket upgrades included. ``"*"``: any origin
        (never together with credentials). A list: exactly those origins.
    cors_credentials
        Send ``Access-Control-Allow-Credentials: true`` (needs a list of origins).
    allow_request
        Async hook run before a handshake; raise ``EngineRequestError`` to refuse.
    relay_window
        With a session relay (the Redis adapter's), how many messages of one
        tunnelled connection may be on their way in each direction before the
        sender waits for the other end to take them (as many again may wait
        to be published). Bounds a tunnel's memory the way a TCP window does.
    relay_upgrade_wait
        With a session relay: how long a session made over polling keeps the
        client's first messages from the layer above, waiting for its
        WebSocket upgrade to start (a probe under way is waited for). If the
        upgrade reaches another node, the session moves there (no relay for
        its life); otherwise the messages go up when the wait ends. Only
        polling-only clients wait it out; 0 turns moves off.
    relay_check_interval
        How often a tunnel that has heard nothing for that long asks whether
        the node at its other end is still there (one ``PUBSUB NUMSUB`` per
        node, not per tunnel). A node that died is noticed within about this.
    """

    path: str = "/engine.io/"
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    upgrade_timeout: float = 10.0
    max_payload: int = 1_000_000
    max_buffer_bytes: int = 16 * 1024 * 1024
    close_timeout: float = 5.0
    heartbeat_ticks: int = 10
    packets_per_checkpoint: int = 256
    shutdown_timeout: float = 10.0
    transports: Sequence[Transport] = ("polling", "websocket")
    cors_origins: Sequence[str] | Literal["*"] | None = None
    cors_credentials: bool = False
    allow_request: AllowRequest | None = None
    relay_window: int = 16
    relay_upgrade_wait: float = 0.3
    relay_check_interval: float = 2.0

    def __post_init__(self) -> None:
        if self.cors_origins == "*" and self.cors_credentials:
            raise ValueError("cors_credentials cannot be used with cors_origins='*'")
        if self.ping_interval <= 0 or self.ping_timeout <= 0:
            raise ValueError("ping_interval and ping_timeout must be positive")
        if self.heartbeat_ticks < 1:
            raise ValueError("heartbeat_ticks must be at least 1")
        if self.max_payload <= 0 or self.max_buffer_bytes <= 0:
            raise ValueError("max_payload and max_buffer_bytes must be positive")
        if self.relay_upgrade_wait < 0:
            raise ValueError("relay_upgrade_wait cannot be negative")
        if self.relay_window < 1 or self.relay_check_interval <= 0:
            raise ValueError("relay_window and relay_check_interval must be positive")
        if not self.transports or not set(self.transports) <= {"polling", "websocket"}:
            raise ValueError("transports must be a non-empty subset of ('polling', 'websocket')")
        if not self.path.endswith("/"):
            object.__setattr__(self, "path", self.path + "/")

    def handshake(self, sid: str, transport: Transport) -> dict[str, object]:
        """The OPEN packet's payload; upgrades are only offered from polling."""
        upgrades = (
            ["websocket"] if transport == "polling" and "websocket" in self.transports else []
        )
        return {
            "sid": sid,
            "upgrades": upgrades,
            "pingInterval": round(self.ping_interval * 1000),
            "pingTimeout": round(self.ping_timeout * 1000),
            "maxPayload": self.max_payload,
        }
