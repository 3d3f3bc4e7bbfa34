"""The pure session state machine: outbox and heartbeat, driven by a fake clock."""

from __future__ import annotations

import pytest

from realtime.engineio.config import EngineConfig
from realtime.engineio.packets import PING, OutPacket
from realtime.engineio.session import CloseReason, SessionState, TimerAction

T0 = 1000.0


def make(now: float = T0, **options: object) -> SessionState:
    config = EngineConfig(**{"ping_interval": 25.0, "ping_timeout": 20.0, **options})  # type: ignore[arg-type]
    return SessionState("sid", "polling", config, now)


class TestHeartbeat:
    def test_first_ping_due_at_open_plus_interval(self) -> None:
        state = make()
        assert state.deadline() == T0 + 25.0
        assert state.on_timer(T0 + 24.999) is TimerAction.NOTHING
        assert not state.outbox
        assert state.on_timer(T0 + 25.0) is TimerAction.PING_SENT
        assert list(state.outbox) == [PING]
        assert state.outbox_bytes == 1

    def test_timed_out_at_ping_plus_timeout(self) -> None:
        state = make()
        assert state.on_timer(T0 + 25.0) is TimerAction.PING_SENT
        assert state.deadline() == T0 + 45.0
        assert state.on_timer(T0 + 44.999) is TimerAction.NOTHING
        assert state.on_timer(T0 + 45.0) is TimerAction.TIMED_OUT

    def test_a_slightly_late_check_keeps_to_the_schedule(self) -> None:
        # Checked at +27 instead of +25: the pong is still due at +25 + 20.
        state = make()
        assert state.on_timer(T0 + 27.0) is TimerAction.PING_SENT
        assert state.deadline() == T0 + 45.0

    def test_a_very_late_ping_leaves_half_the_timeout(self) -> None:
        # Checked at +40 (the loop stalled): the client still gets 10 of the 20 s.
        state = make()
        assert state.on_timer(T0 + 40.0) is TimerAction.PING_SENT
        assert state.deadline() == T0 + 50.0
        assert state.on_timer(T0 + 49.9) is TimerAction.NOTHING
        assert state.on_timer(T0 + 50.0) is TimerAction.TIMED_OUT

    def test_only_one_ping_per_interval(self) -> None:
        state = make()
        state.on_timer(T0 + 25.0)
        assert state.on_timer(T0 + 25.0) is TimerAction.NOTHING
        assert state.on_timer(T0 + 30.0) is TimerAction.NOTHING
        assert list(state.outbox) == [PING]

    def test_pong_reschedules_from_the_pong(self) -> None:
        state = make()
        state.on_timer(T0 + 25.0)
        state.on_pong(T0 + 27.0)
        assert state.deadline() == T0 + 52.0
        # The old pong deadline no longer applies.
        assert state.on_timer(T0 + 45.0) is TimerAction.NOTHING
        assert state.on_timer(T0 + 51.9) is TimerAction.NOTHING
        assert state.on_timer(T0 + 52.0) is TimerAction.PING_SENT
        assert state.deadline() == T0 + 72.0
        assert state.on_timer(T0 + 72.0) is TimerAction.TIMED_OUT

    def test_many_rounds(self) -> None:
        state = make()
        now = T0
        for _ in range(5):
            now = state.deadline()
            assert state.on_timer(now) is TimerAction.PING_SENT
            now += 1.0
            state.on_pong(now)
        assert state.deadline() == now + 25.0
        assert [p.ws for p in state.take()] == ["2"] * 5

    def test_ping_goes_out_even_when_the_buffer_is_full(self) -> None:
        state = make(max_buffer_bytes=4)
        assert state.enqueue([OutPacket.message("abc")])
        assert not state.enqueue([OutPacket.message("")])
        assert state.on_timer(T0 + 25.0) is TimerAction.PING_SENT
        assert [p.ws for p in state.outbox] == ["4abc", "2"]


class TestOutbox:
    def test_enqueue_in_order_and_take_empties(self) -> None:
        state = make()
        a, b, c = OutPacket.message("a"), OutPacket.message(b"\x01"), OutPacket.message("c")
        assert state.enqueue([a, b])
        assert state.enqueue([c])
        assert state.outbox_bytes == 2 + 1 + 2
        assert state.take() == [a, b, c]
        assert not state.outbox
        # Taken is not yet written: the bytes count until the writer says so.
        assert state.outbox_bytes == 5
        state.written(5)
        assert state.outbox_bytes == 0
        assert state.take() == []

    def test_enqueue_accepts_a_generator(self) -> None:
        state = make()
        assert state.enqueue(OutPacket.message(str(i)) for i in range(3))
        assert [p.ws for p in state.take()] == ["40", "41", "42"]

    def test_up_to_the_cap_is_accepted(self) -> None:
        state = make(max_buffer_bytes=10)
        assert state.enqueue([OutPacket.message("x" * 9)])  # 10 bytes
        assert state.outbox_bytes == 10

    def test_over_the_cap_refused_and_nothing_partial_queued(self) -> None:
        state = make(max_buffer_bytes=10)
        first = OutPacket.message("abcd")  # 5 bytes
        assert state.enqueue([first])
        # 3 + 3 would fit; the whole batch (3 + 3 + 3) does not: none of it is queued.
        batch = [OutPacket.message("xy"), OutPacket.message("zw"), OutPacket.message("uv")]
        assert not state.enqueue(batch)
        assert list(state.outbox) == [first]
        assert state.outbox_bytes == 5
        # A batch that does fit still goes in afterwards.
        assert state.enqueue(batch[:1])
        assert state.outbox_bytes == 8

    def test_only_written_bytes_free_room_in_the_buffer(self) -> None:
        # A writer stuck on a client that stopped reading holds what it took:
        # the cap counts it, so the memory held is the cap, not twice it.
        state = make(max_buffer_bytes=5)
        assert state.enqueue([OutPacket.message("abcd")])
        assert not state.enqueue([OutPacket.message("e")])
        (taken,) = state.take()
        assert not state.enqueue([OutPacket.message("e")])
        state.written(taken.size)
        assert state.enqueue([OutPacket.message("e")])

    def test_paused_inbound_is_not_a_missed_pong(self) -> None:
        state = make(ping_interval=10, ping_timeout=5)
        assert state.on_timer(T0 + 10) is TimerAction.PING_SENT
        state.take()
        state.inbound_paused = True
        assert state.on_timer(T0 + 14.9) is TimerAction.NOTHING
        # Past the deadline while paused: ping again (the client's heartbeat drops a
        # server that stops pinging), every timeout, instead of timing the client out.
        assert state.on_timer(T0 + 15) is TimerAction.PING_SENT
        assert list(state.outbox) == [PING]
        assert state.on_timer(T0 + 19.9) is TimerAction.NOTHING
        assert state.on_timer(T0 + 20) is TimerAction.PING_SENT
        state.resume_inbound(T0 + 21)
        # The pong that waited unread gets half a timeout to be read.
        assert state.on_timer(T0 + 23) is TimerAction.NOTHING
        assert state.on_timer(T0 + 25) is TimerAction.TIMED_OUT

    def test_refused_when_closing_but_queued_packets_stay(self) -> None:
        state = make()
        queued = OutPacket.message("before")
        assert state.enqueue([queued])
        state.close_reason = CloseReason.FORCED_CLOSE
        assert not state.enqueue([OutPacket.message("after")])
        assert state.take() == [queued]

    def test_shared_packet_in_two_sessions(self) -> None:
        one, two = make(), make()
        shared = OutPacket.message("broadcast")
        assert one.enqueue([shared])
        assert two.enqueue([shared])
        assert one.take()[0] is two.take()[0]


class TestInitialState:
    def test_fresh_session(self) -> None:
        state = SessionState("abc", "websocket", EngineConfig(), 5.0)
        assert state.sid == "abc"
        assert state.transport == "websocket"
        assert state.close_reason is None
        assert not state.upgrading
        assert state.pong_deadline is None
        assert state.deadline() == 5.0 + EngineConfig().ping_interval

    @pytest.mark.parametrize(
        ("reason", "text"),
        [
            (CloseReason.TRANSPORT_CLOSE, "transport close"),
            (CloseReason.PING_TIMEOUT, "ping timeout"),
            (CloseReason.PARSE_ERROR, "parse error"),
            (CloseReason.FORCED_CLOSE, "forced close"),
            (CloseReason.TRANSPORT_ERROR, "transport error"),
            (CloseReason.SERVER_SHUTDOWN, "server shutting down"),
        ],
    )
    def test_close_reasons_are_socketio_names(self, reason: CloseReason, text: str) -> None:
        assert str(reason) == text
