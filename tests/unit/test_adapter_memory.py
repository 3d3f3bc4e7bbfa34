"""The in-memory adapter against a recording namespace: rooms, selectors, one encoding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from realtime.adapters import BroadcastOptions, InMemoryAdapter, SocketId
from realtime.adapters.base import AckCallback
from realtime.adapters.recovery import RecoveryOptions
from realtime.engineio import OutPacket
from realtime.socketio.packets import Packet, PacketType

pytestmark = pytest.mark.anyio

Options = BroadcastOptions
Setup = tuple[InMemoryAdapter, "RecordingNamespace"]

A, B, C = SocketId("a"), SocketId("b"), SocketId("c")


@dataclass
class FakeSocket:
    id: SocketId
    rooms: frozenset[str] = frozenset()
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecordingNamespace:
    name: str = "/"
    delivered: list[tuple[SocketId, Sequence[OutPacket], bool]] = field(default_factory=list)
    acks: dict[tuple[SocketId, int], AckCallback] = field(default_factory=dict)
    disconnected: list[tuple[SocketId, bool]] = field(default_factory=list)
    refuse: set[SocketId] = field(default_factory=set)
    room_changes: list[tuple[str, SocketId, str]] = field(default_factory=list)
    recovery: RecoveryOptions | None = None

    def room_joined(self, sid: SocketId, room: str) -> None:
        self.room_changes.append(("joined", sid, room))

    def room_left(self, sid: SocketId, room: str) -> None:
        self.room_changes.append(("left", sid, room))

    def deliver(self, sid: SocketId, frames: Sequence[OutPacket], *, volatile: bool) -> bool:
        self.delivered.append((sid, frames, volatile))
        return sid not in self.refuse

    def expect_ack(self, sid: SocketId, ack_id: int, callback: AckCallback) -> None:
        self.acks[(sid, ack_id)] = callback

    def forget_ack(self, sid: SocketId, ack_id: int) -> None:
        del self.acks[(sid, ack_id)]

    def local_socket(self, sid: SocketId) -> FakeSocket:
        return FakeSocket(sid)

    async def disconnect_socket(self, sid: SocketId, *, close: bool) -> None:
        self.disconnected.append((sid, close))


@pytest.fixture
async def setup() -> tuple[InMemoryAdapter, RecordingNamespace]:
    ns = RecordingNamespace()
    adapter = InMemoryAdapter(ns)
    for sid in (A, B, C):
        await adapter.add_all(sid, [sid])
    await adapter.add_all(A, ["red", "blue"])
    await adapter.add_all(B, ["red"])
    return adapter, ns


def opts(
    rooms: Sequence[str] = (), except_rooms: Sequence[str] = (), **kw: Any
) -> BroadcastOptions:
    return BroadcastOptions(frozenset(rooms), frozenset(except_rooms), **kw)


async def test_each_room_change_is_reported_once(setup: Setup) -> None:
    """Whoever changes a socket's rooms (itself, a selector, a peer node through a cluster
    adapter, its disconnection), the namespace hears of each real change, once."""
    adapter, ns = setup
    assert ns.room_changes[:2] == [("joined", A, "a"), ("joined", B, "b")]
    ns.room_changes.clear()
    await adapter.add_all(A, ["red", "green"])  # already in red
    adapter.add_sockets_now(opts(["red"]), ["green"])  # A already in green
    adapter.del_sockets_now(opts(["green"]), ["red"])
    await adapter.delete(C, "red")  # not in it
    # a selector reaches its sockets in no particular order
    assert ns.room_changes[0] == ("joined", A, "green")
    assert sorted(ns.room_changes[1:]) == [
        ("joined", B, "green"),
        ("left", A, "red"),
        ("left", B, "red"),
    ]
    ns.room_changes.clear()
    await adapter.delete_all(A)
    assert sorted(ns.room_changes) == [("left", A, r) for r in ("a", "blue", "green")]
    ns.room_changes.clear()
    await adapter.delete_all(A)  # gone already
    assert ns.room_changes == []


async def test_a_namespace_without_room_reports_is_fine() -> None:
    class Quiet:
        name = "/"

    adapter = InMemoryAdapter(Quiet())  # type: ignore[arg-type]
    await adapter.add_all(A, ["red"])
    await adapter.delete_all(A)
    assert adapter.rooms() == {}


async def test_rooms_are_kept_in_step(setup: Setup) -> None:
    adapter, _ = setup
    assert adapter.socket_rooms(A) == {"a", "red", "blue"}
    assert adapter.rooms()["red"] == {A, B}
    await adapter.delete(A, "red")
    assert adapter.rooms()["red"] == {B}
    await adapter.delete(B, "red")
    assert "red" not in adapter.rooms()  # empty rooms do not linger
    await adapter.delete_all(A)
    assert adapter.socket_rooms(A) == frozenset()
    assert set(adapter.rooms()) == {"b", "c"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (opts(), {A, B, C}),
        (opts(["red"]), {A, B}),
        (opts(["red", "c"]), {A, B, C}),
        (opts(["red"], ["blue"]), {B}),
        (opts(except_rooms=["red"]), {C}),
        (opts(["nowhere"]), set()),
    ],
)
async def test_broadcast_selects_and_shares_one_encoding(
    setup: Setup,
    selector: BroadcastOptions,
    expected: set[SocketId],
) -> None:
    adapter, ns = setup
    await adapter.broadcast(Packet(PacketType.EVENT, data=["x", b"\x01"]), selector)
    assert {sid for sid, _, _ in ns.delivered} == expected
    assert len(ns.delivered) == len(expected)  # nobody twice, even in two selected rooms
    frames = [f for _, f, _ in ns.delivered]
    assert all(f is frames[0] for f in frames)
    if frames:
        assert [p.ws for p in frames[0]] == ['451-["x",{"_placeholder":true,"num":0}]', b"\x01"]


async def test_volatile_is_passed_to_delivery(
    setup: Setup,
) -> None:
    adapter, ns = setup
    await adapter.broadcast(Packet(PacketType.EVENT, data=["x"]), opts(["red"], volatile=True))
    assert all(volatile for _, _, volatile in ns.delivered)


async def test_broadcast_with_ack(setup: Setup) -> None:
    adapter, ns = setup
    ns.refuse.add(B)
    recipients: list[Sequence[SocketId]] = []
    answers: list[tuple[SocketId, Any]] = []
    packet = Packet(PacketType.EVENT, data=["q"], id=7)
    await adapter.broadcast_with_ack(
        packet, opts(["red"]), recipients.append, lambda sid, args: answers.append((sid, args))
    )
    assert [sorted(r) for r in recipients] == [[A]]  # B's transport refused the frames
    # B's callback is unregistered: a failed delivery leaves nothing waiting.
    assert set(ns.acks) == {(A, 7)}
    ns.acks[(A, 7)](["yes"])
    assert answers == [(A, ["yes"])]


async def test_socket_operations(setup: Setup) -> None:
    adapter, ns = setup
    assert sorted(s.id for s in await adapter.fetch_sockets(opts(["red"]))) == [A, B]
    await adapter.add_sockets(opts(["red"]), ["green"])
    assert adapter.rooms()["green"] == {A, B}
    await adapter.del_sockets(opts(except_rooms=["blue"]), ["green", "red"])
    assert adapter.rooms()["green"] == {A}
    assert adapter.rooms()["red"] == {A}
    await adapter.disconnect_sockets(opts(["green"]), close=True)
    assert ns.disconnected == [(A, True)]
    assert await adapter.server_side_emit("hello", []) == 0
