"""Every error the package raises, in one hierarchy.

The split says who is at fault. A :class:`ProtocolError` is a peer that broke
the protocol: it carries what to answer with (an Engine.IO HTTP error code, or
a close reason) and is translated once, at the transport boundary. Anything
else is a local error: a caller bug or a state the application can handle.

::

    RealtimeError
    ├── ProtocolError                 a peer broke the protocol
    │   ├── EngineRequestError        an HTTP request refused with 400/403/413 + {code, message}
    │   ├── PacketDecodeError         an Engine.IO packet or payload that does not parse
    │   ├── PayloadTooLarge           a body or frame over ``max_payload``
    │   └── SocketIOPacketError       a Socket.IO packet that does not parse or breaks a limit
    ├── ConnectionRefusedError        raised by middleware/connect handlers to refuse a client
    ├── SessionClosedError            sending to an engine session that is gone
    ├── BufferFullError               a session's outbound buffer is over its cap
    ├── AckTimeoutError               an acknowledgement did not arrive in time
    ├── ReservedEventError            the application tried to emit a reserved event name
    ├── MissingTimeoutError           a broadcast with acknowledgements without a timeout
    ├── EncodeError                   the application tried to send data JSON cannot carry
    ├── NotRunningError               the server is used outside its lifespan
    └── ClusterError                  a multi-process adapter could not do its part
        ├── ClusterUnavailableError   the broker (Redis) is unreachable: nothing was published
        │   └── PublishError          an emitter's publish to Redis failed or timed out
        └── ClusterTimeoutError       some nodes did not answer a cluster request in time
"""

from __future__ import annotations

from typing import Any


class RealtimeError(Exception):
    """Base class of every error raised by ``realtime``."""


class ProtocolError(RealtimeError):
    """A peer sent something the protocol does not allow."""


class EngineRequestError(ProtocolError):
    """An HTTP request the Engine.IO layer refuses.

    ``code`` and ``message`` are the JSON body the reference server sends
    (``{"code": 1, "message": "Session ID unknown"}``); ``status`` is the HTTP status.
    """

    UNKNOWN_TRANSPORT = 0
    UNKNOWN_SID = 1
    BAD_HANDSHAKE_METHOD = 2
    BAD_REQUEST = 3
    FORBIDDEN = 4
    UNSUPPORTED_PROTOCOL_VERSION = 5

    MESSAGES = {
        0: "Transport unknown",
        1: "Session ID unknown",
        2: "Bad handshake method",
        3: "Bad request",
        4: "Forbidden",
        5: "Unsupported protocol version",
    }

    def __init__(self, code: int, message: str | None = None, *, status: int = 400) -> None:
        self.code = code
        self.message = message if message is not None else self.MESSAGES.get(code, "Bad request")
        self.status = status
        super().__init__(f"{self.status} {self.message} (code {code})")


class PacketDecodeError(ProtocolError):
    """Bytes that are not a valid Engine.IO packet or polling payload."""


class PayloadTooLarge(ProtocolError):
    """A request body or WebSocket message over ``max_payload`` bytes."""


class SocketIOPacketError(ProtocolError):
    """A Socket.IO packet that does not parse or breaks a configured limit."""


class ConnectionRefusedError(RealtimeError):
    """Raise from middleware or a connect handler to refuse a client.

    The client receives CONNECT_ERROR with ``{"message": message, "data": data}``.
    """

    def __init__(self, message: str = "Connection refused", data: Any = None) -> None:
        self.message = message
        self.data = data
        super().__init__(message)


class SessionClosedError(RealtimeError):
    """The engine session is closed or was never known."""


class BufferFullError(RealtimeError):
    """A session's outbound buffer reached its cap; the session is being closed."""


class AckTimeoutError(RealtimeError):
    """No acknowledgement arrived within the timeout.

    For a broadcast, ``responses`` holds what did arrive and ``missing`` the
    socket ids that did not answer.
    """

    def __init__(
        self,
        message: str = "operation has timed out",
        *,
        responses: list[Any] | None = None,
        missing: list[str] | None = None,
    ) -> None:
        self.responses = responses or []
        self.missing = missing or []
        super().__init__(message)


class ReservedEventError(RealtimeError, ValueError):
    """The application tried to emit one of Socket.IO's reserved event names."""


class MissingTimeoutError(RealtimeError, ValueError):
    """A broadcast awaited acknowledgements without ``timeout(seconds)``.

    A broadcast may reach clients that never answer; without a bound the
    caller would wait forever (the reference server needs a timeout too).
    """


class EncodeError(RealtimeError, ValueError):
    """The application tried to send data JSON cannot carry (NaN, infinities, cycles).

    Raised before anything is queued, so no peer ever receives ``NaN`` or
    ``Infinity``, which ``JSON.parse`` refuses.
    """


class NotRunningError(RealtimeError, RuntimeError):
    """The server was used outside its lifespan (no task group to run sessions in)."""


class ClusterError(RealtimeError):
    """A multi-process adapter (Redis) could not reach its peers as asked."""


class RedisURLError(ClusterError, ValueError):
    """A Redis URL the adapter or an emitter cannot read (see :mod:`realtime.redis_topology`)."""


class ClusterUnavailableError(ClusterError):
    """The broker is unreachable, so nothing was published to the other nodes.

    Raised at once (never after waiting for a reconnect). Local sockets were
    still served: only the other nodes missed it. Pub/sub keeps no history,
    so what is published while the broker is down is lost, not replayed.
    """


class ClusterTimeoutError(ClusterError):
    """Not every node answered a cluster request before its timeout.

    ``responses`` holds what the live nodes answered (for ``fetch_sockets``:
    the sockets they reported, the local ones included); ``expected`` and
    ``received`` count the answers.
    """

    def __init__(self, message: str, *, responses: list[Any], expected: int, received: int) -> None:
        self.responses = responses
        self.expected = expected
        self.received = received
        super().__init__(message)


class PublishError(ClusterUnavailableError):
    """An emitter could not publish to Redis (unreachable, refused, or past its timeout).

    Nothing was delivered: Redis pub/sub keeps no backlog to retry from.
    """
