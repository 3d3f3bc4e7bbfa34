"""The one-process recovery store: offsets, replay rules, and its bounds (a clock in hand)."""

from __future__ import annotations

from typing import Any

import pytest

from realtime.adapters import BroadcastOptions, SocketId
from realtime.adapters.recovery import (
    RecoveryError,
    RecoveryFailure,
    RecoveryOptions,
    RestoredSession,
    SessionRecord,
)
from realtime.adapters.session_memory import SessionAwareAdapter
from realtime.socketio.packets import Packet, PacketType
from tests.unit.test_adapter_memory import RecordingNamespace

pytestmark = pytest.mark.anyio

A, B = SocketId("a"), SocketId("b")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**options: Any) -> tuple[SessionAwareAdapter, RecordingNamespace, Clock]:
    clock = Clock()
    namespace = RecordingNamespace(recovery=RecoveryOptions(**options))
    return SessionAwareAdapter(namespace, clock=clock), namespace, clock


def event(*args: Any, ack: int | None = None) -> Packet:
    return Packet(PacketType.EVENT, "/", ["e", *args], ack)


async def restore(adapter: SessionAwareAdapter, pid: str, offset: str | None) -> RestoredSession:
    attached: list[RestoredSession] = []
    restored = await adapter.restore_session(pid, offset, attached.append)
    assert attached == [restored]
    return restored


async def test_offsets_are_appended_to_recoverable_events_only() -> None:
    adapter, namespace, _ = make()
    await adapter.add_all(A, [A])
    await adapter.broadcast(event(1), BroadcastOptions())
    await adapter.broadcast(event(2, ack=7), BroadcastOptions())
    await adapter.broadcast(event(3), BroadcastOptions(volatile=True))
    frames = [frames[0].ws for _, frames, _ in namespace.delivered]
    first = adapter.recovery_offset()
    assert frames == [f'42["e",1,"{first}"]', '427["e",2]', '42["e",3]']


async def test_replay_follows_the_offset_and_the_session_rooms() -> None:
    adapter, _, _ = make()
    start = adapter.recovery_offset()
    await adapter.broadcast(event("to-r"), BroadcastOptions(rooms=frozenset({"r"})))
    seen = adapter.recovery_offset()
    await adapter.broadcast(event("to-x"), BroadcastOptions(rooms=frozenset({"x"})))
    await adapter.broadcast(event("all-but-r"), BroadcastOptions(except_rooms=frozenset({"r"})))
    await adapter.broadcast(event("to-a"), BroadcastOptions(rooms=frozenset({A})))
    await adapter.broadcast(event("all"), BroadcastOptions())
    record = SessionRecord(sid=A, pid="p", rooms=[A, "r"], data={"k": 1}, offset=start)
    await adapter.save_session(record, connected=False)
    restored = await restore(adapter, "p", seen)
    assert [args[1] for args in restored.missed] == ["to-a", "all"]
    assert restored.record.data == {"k": 1}
    assert adapter.socket_rooms(A) == {A, "r"}  # joined in the same step


async def test_without_an_offset_replay_starts_where_the_session_started() -> None:
    adapter, _, _ = make()
    await adapter.broadcast(event("before"), BroadcastOptions())
    start = adapter.recovery_offset()
    await adapter.broadcast(event("after"), BroadcastOptions())
    await adapter.save_session(SessionRecord(A, "p", [A], {}, start), connected=False)
    restored = await restore(adapter, "p", None)
    assert [args[1] for args in restored.missed] == ["after"]


async def test_a_session_is_taken_once() -> None:
    adapter, _, _ = make()
    await adapter.save_session(
        SessionRecord(A, "p", [A], {}, adapter.recovery_offset()), connected=False
    )
    await restore(adapter, "p", None)
    with pytest.raises(RecoveryError) as caught:
        await restore(adapter, "p", None)
    assert caught.value.failure is RecoveryFailure.UNKNOWN_SESSION


@pytest.mark.parametrize("offset", ["nope", "deadbeef-1", "", "x-"])
async def test_an_offset_this_process_did_not_give_is_refused(offset: str) -> None:
    adapter, _, _ = make()
    await adapter.save_session(SessionRecord(A, "p", [A], {}, None), connected=False)
    with pytest.raises(RecoveryError) as caught:
        await restore(adapter, "p", offset)
    assert caught.value.failure is RecoveryFailure.UNKNOWN_OFFSET


async def test_events_past_the_count_limit_are_gone_and_so_is_recovery_from_before_them() -> None:
    adapter, _, _ = make(max_stored_packets=3)
    start = adapter.recovery_offset()
    for n in range(5):
        await adapter.broadcast(event(n), BroadcastOptions())
    assert len(adapter._events) == 3
    await adapter.save_session(SessionRecord(A, "p", [A], {}, start), connected=False)
    with pytest.raises(RecoveryError) as caught:
        await restore(adapter, "p", None)
    assert caught.value.failure is RecoveryFailure.UNKNOWN_OFFSET


async def test_sessions_and_events_expire_after_the_window() -> None:
    adapter, _, clock = make(max_disconnection_duration=10)
    await adapter.broadcast(event("old"), BroadcastOptions())
    await adapter.save_session(SessionRecord(A, "p", [A], {}, None), connected=False)
    clock.now += 11
    await adapter.broadcast(event("new"), BroadcastOptions())
    assert [kept.args[1] for kept in adapter._events] == ["new"]
    with pytest.raises(RecoveryError) as caught:
        await restore(adapter, "p", None)
    assert caught.value.failure is RecoveryFailure.UNKNOWN_SESSION


async def test_memory_stays_flat_under_churn() -> None:
    adapter, _, clock = make(max_disconnection_duration=10, max_stored_packets=100)
    for n in range(10_000):
        clock.now += 0.01
        sid = SocketId(f"s{n}")
        await adapter.add_all(sid, [sid])
        await adapter.broadcast(event(n), BroadcastOptions())
        await adapter.save_session(SessionRecord(sid, f"p{n}", [sid], {}, None), connected=False)
        await adapter.delete_all(sid)
    # 10 s of sessions at 100 per second; events capped at 100; no room left behind.
    assert len(adapter._sessions) <= 1001
    assert len(adapter._events) == 100
    assert adapter.rooms() == {}
