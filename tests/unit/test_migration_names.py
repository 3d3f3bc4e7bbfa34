"""The names docs/migrating.md maps between exist on both sides.

python-socketio's side is checked against the installed package (the test extra), so a table row
that names a call or parameter it does not have fails here; ours against this package.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import engineio
import socketio

import realtime
from realtime.adapters.redis import RedisAdapter


def params(func: Callable[..., Any]) -> set[str]:
    return set(inspect.signature(func).parameters)


def test_python_socketio_side() -> None:
    server = socketio.AsyncServer
    assert {"to", "room", "skip_sid", "namespace", "callback"} <= params(server.emit)
    assert {"to", "timeout"} <= params(server.call)
    for name in [
        "enter_room",
        "leave_room",
        "close_room",
        "rooms",
        "disconnect",
        "session",
        "save_session",
        "get_session",
        "get_environ",
        "transport",
        "register_namespace",
        "start_background_task",
        "sleep",
        "shutdown",
        "instrument",
        "event",
        "on",
    ]:
        assert callable(getattr(server, name)), name
    engine = params(engineio.AsyncServer.__init__)
    assert {
        "cors_allowed_origins",
        "max_http_buffer_size",
        "ping_interval",
        "ping_timeout",
    } <= engine
    assert "transports" in engine
    assert "async_handlers" in params(server.__init__)
    assert {"other_asgi_app", "socketio_path"} <= params(socketio.ASGIApp.__init__)
    assert "write_only" in params(socketio.RedisManager.__init__)
    assert socketio.AsyncRedisManager
    assert socketio.AsyncNamespace
    assert socketio.exceptions.ConnectionRefusedError
    assert {"auth", "mode", "read_only", "server_stats_interval"} <= params(server.instrument)


def test_realtime_side() -> None:
    options = params(realtime.Server.__init__)
    assert {
        "path",
        "cors_origins",
        "cors_credentials",
        "max_payload",
        "ping_interval",
        "ping_timeout",
        "transports",
        "async_handlers",
        "connect_timeout",
        "max_inflight_events",
    } <= options
    sio = realtime.Server()
    for name in [
        "of",
        "on",
        "use",
        "to",
        "in_",
        "except_",
        "timeout",
        "emit",
        "fetch_sockets",
        "sockets_join",
        "sockets_leave",
        "disconnect_sockets",
        "on_server",
        "server_side_emit",
        "asgi_app",
        "lifespan",
    ]:
        assert callable(getattr(sio, name)), name
    assert isinstance(sio.volatile, realtime.BroadcastOperator)
    assert isinstance(sio.local, realtime.BroadcastOperator)
    assert callable(sio.timeout(1).emit_with_ack)
    for name in ["emit", "emit_with_ack", "to", "in_", "except_", "join", "leave", "disconnect"]:
        assert callable(getattr(realtime.Socket, name)), name
    for name in ["on_any", "on_any_outgoing", "on", "off"]:
        assert callable(getattr(realtime.Socket, name)), name
    assert "timeout" in params(realtime.Socket.emit_with_ack)
    assert "close" in params(realtime.Socket.disconnect)
    assert {"broadcast", "volatile", "rooms", "transport"} <= set(dir(realtime.Socket))
    assert {"headers", "query", "auth", "address", "url", "secure", "time"} <= set(
        realtime.Handshake.__annotations__
    )
    assert {"message", "data"} <= params(realtime.ConnectionRefusedError.__init__)
    assert {"url", "options"} <= params(RedisAdapter.factory)
    assert callable(realtime.Emitter)
    assert callable(realtime.AsyncEmitter)
    from realtime.admin import instrument

    assert {"auth", "mode", "read_only", "stats_interval", "server_id"} <= params(instrument)
