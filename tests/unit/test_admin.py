"""``instrument()`` options: what it refuses, and what an uninstrumented server holds."""

from __future__ import annotations

from typing import Any

import pytest

from realtime import Server
from realtime.admin import AdminConfigError
from tests.servers import require

try:
    import bcrypt
except ImportError:  # a test dependency: skipped locally, a failure under CI=true
    require(False, "bcrypt is not installed: pip install -e '.[test]'")

HASH = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()


def test_uninstrumented_server_has_no_monitor() -> None:
    sio = Server()
    assert sio.monitor is None
    assert "/admin" not in sio.namespaces


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "basic", "username": "a", "password": "plain text"},
        {"type": "basic", "username": "a", "password": HASH[:-1]},
        {"type": "token", "username": "a", "password": HASH},
        None,
    ],
)
def test_refuses_unusable_auth(auth: Any) -> None:
    sio = Server()
    with pytest.raises(AdminConfigError):
        sio.instrument(auth=auth)
    assert sio.monitor is None


def test_refuses_unknown_mode_and_bad_limits() -> None:
    with pytest.raises(AdminConfigError):
        Server().instrument(auth=False, mode="debug")
    with pytest.raises(AdminConfigError):
        Server().instrument(auth=False, stats_interval=0)
    with pytest.raises(AdminConfigError):
        Server().instrument(auth=False, max_sessions=0)


def test_instrument_serves_the_namespace_given() -> None:
    sio = Server()
    auth = {"type": "basic", "username": "a", "password": HASH}
    monitor = sio.instrument(auth=auth, namespace="/ops")
    assert sio.monitor is monitor
    assert "/ops" in sio.namespaces
    assert "DISCONNECT" in monitor.features()
    assert Server().instrument(auth=False, read_only=True, mode="production").features() == [
        "AGGREGATED_EVENTS"
    ]
