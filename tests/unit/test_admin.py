"""The Admin UI's monitor: its options, what it counts for the charts, what it tells the UI
as it happens, and the observer interface it shares with the metrics."""

from __future__ import annotations

import copy
import inspect
import json
import logging
from typing import Any

import pytest

from realtime import Server
from realtime.adapters import SocketId
from realtime.admin import AdminConfigError, Monitor
from realtime.admin_wire import WatchedData
from realtime.engineio import CloseReason, OutPacket
from realtime.engineio.observer import EngineObserver
from realtime.engineio.packets import PacketType, message_size, utf8_size
from realtime.socketio.observer import ObserverGroup, SocketObserver
from tests.servers import require
from tests.unit.test_socketio_server import Peer

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


def test_refuses_a_queue_bound_below_one() -> None:
    with pytest.raises(AdminConfigError):
        Server().instrument(auth=False, max_queued=0)


# -- what the charts count, as the reference server counts it --------------------------
# The reference counts each Engine.IO packet with data its engine creates (packetsOut,
# bytesOut) and receives (packetsIn, bytesIn): Buffer.byteLength(data), the packet's
# data without its type character. The byte counts below are Node's own.


@pytest.mark.parametrize(
    ("packet", "size"),
    [
        (OutPacket.message('2["news","ça va? 👋"]'), 24),
        (OutPacket.message('51-["echo","héllo 🎉",{"_placeholder":true,"num":0}]'), 55),
        (OutPacket.message("\ud800"), 3),  # a lone surrogate: U+FFFD in Node, 3 bytes
        (OutPacket.message(b"\x00\x01\x02"), 3),
        (OutPacket.message(b""), 0),  # a Buffer is data, even empty
        (OutPacket.message(""), None),  # "" is not
        (OutPacket.of(PacketType.PING), None),
        (OutPacket.of(PacketType.OPEN, '{"sid":"x"}'), None),  # never counted by the reference
        (OutPacket.of(PacketType.NOOP), None),
    ],
)
def test_message_size_is_what_buffer_bytelength_counts(packet: OutPacket, size: int | None) -> None:
    assert message_size(packet) == size


def test_utf8_size() -> None:
    assert [utf8_size(s) for s in ("", "abc", "é", "✓", "🎉", "\udc00")] == [0, 3, 2, 3, 4, 3]


def totals(monitor: Monitor) -> dict[str, int]:
    counted: dict[str, int] = {}
    for (_, kind, _), n in monitor.events.items():
        counted[kind] = counted.get(kind, 0) + n
    return counted


def test_counts_each_packet_with_data_once_per_recipient() -> None:
    monitor = Server().instrument(auth=False)
    news = OutPacket.message('2["news","ça va? 👋"]')
    # A broadcast hands the same packet to each recipient's session: counted for each.
    monitor.packets_queued([news])
    monitor.packets_queued([news])
    monitor.packets_queued(
        [
            OutPacket.message('51-["echo","héllo 🎉",{"_placeholder":true,"num":0}]'),
            OutPacket.message(b"\x00\x01\x02"),
        ]
    )
    monitor.packets_queued([OutPacket.message("")])
    monitor.message_in('2["shout","ü"]')
    monitor.message_in(b"")
    monitor.message_in("")
    assert totals(monitor) == {
        "packetsOut": 4,
        "bytesOut": 24 + 24 + 55 + 3,
        "packetsIn": 2,
        "bytesIn": 15,
    }


def test_socket_data_watched_reports_top_level_changes() -> None:
    changes: list[dict[str, Any]] = []
    data = WatchedData({"a": 1}, lambda changed: changes.append(dict(changed)))
    data["b"] = 2
    data.update(c=3)
    data.setdefault("a", 9)  # present: no change
    data.setdefault("d", 4)
    data.pop("zz", None)  # absent: no change
    del data["a"]
    data |= {"e": 5}
    data.clear()
    assert [sorted(c) for c in changes] == [
        ["a", "b"],
        ["a", "b", "c"],
        ["a", "b", "c", "d"],
        ["b", "c", "d"],
        ["b", "c", "d", "e"],
        [],
    ]
    assert type(copy.deepcopy(WatchedData({"x": [1]}, changes.append))) is dict
    assert type(copy.copy(WatchedData({"x": [1]}, changes.append))) is dict


# -- one observer interface for the Admin UI and the metrics -------------------------------


def test_metrics_and_the_admin_ui_share_one_observer() -> None:
    from prometheus_client import CollectorRegistry

    sio = Server()
    assert sio.observer is None
    assert sio.engine.observer is None
    monitor = sio.instrument(auth=False)
    assert sio.observer is monitor
    metrics = sio.instrument_metrics(registry=CollectorRegistry())
    assert isinstance(sio.observer, ObserverGroup)
    assert sio.observer.members == (monitor, metrics)
    assert sio.engine.observer is sio.observer


def test_observer_group_passes_every_hook_to_every_member() -> None:
    hooks = sorted(
        name
        for name, value in vars(SocketObserver).items() | vars(EngineObserver).items()
        if callable(value) and not name.startswith("_")
    )
    calls: list[tuple[int, str]] = []

    def recorder(n: int) -> SocketObserver:
        class Recorder(SocketObserver):
            pass

        for name in hooks:
            setattr(Recorder, name, lambda self, *args, name=name: calls.append((n, name)))
        return Recorder()

    group = ObserverGroup([recorder(1), recorder(2)])
    for name in hooks:
        assert name in vars(ObserverGroup), f"ObserverGroup does not pass on {name}"
        method = getattr(group, name)
        method(*[None] * len(inspect.signature(method).parameters))
    assert calls == [(n, name) for name in hooks for n in (1, 2)]


# -- what the UI is told as it happens -----------------------------------------------------


async def admin_events(peer: Peer) -> list[list[Any]]:
    found = []
    for message in await peer.take():
        assert isinstance(message, str)
        if message.startswith("2/admin,"):
            found.append(json.loads(message[len("2/admin,") :]))
    return found


@pytest.mark.anyio
async def test_room_changes_reach_the_ui_without_waiting_for_a_tick() -> None:
    sio = Server()
    monitor = sio.instrument(auth=False, stats_interval=3600.0)
    async with sio.lifespan():
        ui = await Peer(sio).open()
        await ui.join("/admin")
        user = await Peer(sio).open()
        sid = await user.join("/")
        socket = sio.main.sockets[SocketId(sid)]
        await admin_events(ui)
        await socket.join("kitchen")
        await sio.in_(sid).sockets_leave("kitchen")
        socket.data["nick"] = "ann"
        await user.drop(CloseReason.TRANSPORT_CLOSE)
        events = await admin_events(ui)
        assert monitor.running
    shapes = [[e[0], *e[1:-1]] if e[0].startswith("room") else e[:3] for e in events]
    assert shapes[:4] == [
        ["room_joined", "/", "kitchen", sid],
        ["room_left", "/", "kitchen", sid],
        ["socket_updated", {"id": sid, "nsp": "/", "data": {"nick": "ann"}}],
        ["socket_disconnected", "/", sid],
    ]
    assert shapes[4:] == [["room_left", "/", sid, sid]]
    assert not any(e[0] == "server_stats" for e in events)


@pytest.mark.anyio
async def test_production_mode_sends_only_stats() -> None:
    sio = Server()
    sio.instrument(auth=False, mode="production", stats_interval=3600.0)
    async with sio.lifespan():
        ui = await Peer(sio).open()
        await ui.join("/admin")
        user = await Peer(sio).open()
        sid = await user.join("/")
        await sio.main.sockets[SocketId(sid)].join("kitchen")
        await user.drop(CloseReason.TRANSPORT_CLOSE)
        # The stats come hourly here: nothing else is sent in production mode.
        assert await admin_events(ui) == []


@pytest.mark.anyio
async def test_a_full_queue_drops_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    sio = Server()
    monitor = sio.instrument(auth=False, stats_interval=3600.0, max_queued=2)
    async with sio.lifespan():
        ui = await Peer(sio).open()
        await ui.join("/admin")
        await admin_events(ui)
        with caplog.at_level(logging.WARNING, logger="realtime.admin"):
            # No await: the queue's task cannot run. It waits for one event (taken at
            # once), two wait in the queue, the rest are dropped.
            for room in ("a", "b", "c", "d", "e"):
                monitor.room_joined("/", room, "s")
        assert monitor.dropped == 2
        assert len(caplog.records) == 1
        assert [e[2] for e in await admin_events(ui)] == ["a", "b", "c"]
        monitor.room_joined("/", "f", "s")  # drained: taken again
        assert [e[2] for e in await admin_events(ui)] == ["f"]
        assert monitor.dropped == 2
