"""Connection state recovery in one process, with the official ``socket.io-client``.

Each test runs a scenario of ``tests/node/recovery.mjs`` against a real server
(uvicorn) with recovery on: the client's connection is lost, other clients and
the server send meanwhile, and the client comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from realtime import Server, Socket
from realtime.adapters.recovery import RecoveryFailure, RecoveryOptions
from tests.live.test_socketio_node_client import run_scenario
from tests.servers import serve

pytestmark = [pytest.mark.live, pytest.mark.node, pytest.mark.timeout(40)]

TRANSPORTS = {"websocket": "websocket", "polling": "polling", "upgrade": "polling,websocket"}


class Recorder:
    """What the server saw of each connection: recovered or not, and why not."""

    def __init__(self) -> None:
        self.connects: list[dict[str, Any]] = []
        self.middleware_runs = 0


def make_server(recovery: RecoveryOptions, recorder: Recorder) -> Server:
    sio = Server(connection_state_recovery=recovery)
    by_name: dict[str, Socket] = {}

    @sio.use
    def middleware(socket: Socket) -> None:
        recorder.middleware_runs += 1

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        failure = socket.recovery_failure
        recorder.connects.append(
            {
                "name": auth.get("name"),
                "recovered": socket.recovered,
                "failure": failure.value if failure else None,
                "data": dict(socket.data),
            }
        )
        socket.data.setdefault("name", auth.get("name"))
        by_name[auth["name"]] = socket

    @sio.on("join")
    async def join(socket: Socket, room: str) -> bool:
        await socket.join(room)
        return True

    @sio.on("rooms")
    def rooms(socket: Socket) -> list[str]:
        return sorted(socket.rooms - {socket.id})

    @sio.on("to-room")
    async def to_room(socket: Socket, room: str, text: str) -> bool:
        await sio.to(room).emit("room-message", text)
        return True

    @sio.on("to-all")
    async def to_all(socket: Socket, text: str) -> bool:
        await sio.emit("news", text)
        return True

    @sio.on("poke")
    async def poke(socket: Socket, name: str, text: str) -> bool:
        # The Socket object of a client that is away: what it is sent is kept.
        await by_name[name].emit("direct", text)
        return True

    return sio


def run(scenario: str, url: str, transports: str, **env: str) -> Any:
    return run_scenario(scenario, url, transports, script="recovery.mjs", env=env)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    with serve(make_server(RecoveryOptions(), recorder).asgi_app()) as url:
        yield url, recorder


def strip_offsets(seen: list[list[Any]]) -> tuple[list[list[Any]], list[str]]:
    """Events without their offset (the last argument), and the offsets."""
    return [event[:-1] for event in seen], [event[-1] for event in seen]


@pytest.mark.parametrize("setup", list(TRANSPORTS))
def test_missed_events_arrive_once_in_order(served: tuple[str, Recorder], setup: str) -> None:
    url, recorder = served
    result = run("missed", url, TRANSPORTS[setup])
    assert result["reason"] == "forced close"  # the client's engine closed, not the socket
    assert result["recovered"] is True
    assert result["id"] == result["idBefore"]
    events, offsets = strip_offsets(result["seen"])
    assert events == [
        ["room-message", "before"],
        ["room-message", "gap-1"],
        ["news", "gap-2"],
        ["direct", "gap-3"],
        ["room-message", "gap-4"],
        ["room-message", "after"],
    ]
    assert all(isinstance(offset, str) for offset in offsets)
    assert len(set(offsets)) == len(offsets)
    assert result["rooms"] == ["r"]
    back = [c for c in recorder.connects if c["name"] == "a" and c["recovered"]][-1]
    assert back["data"] == {"name": "a"}  # socket.data came back with it


def test_a_client_that_had_received_nothing_still_recovers(served: tuple[str, Recorder]) -> None:
    url, _ = served
    result = run("noEventYet", url, "websocket")
    assert result["recovered"] is True
    events, _ = strip_offsets(result["seen"])
    assert events == [["room-message", "gap"]]


def test_a_session_taken_up_while_its_old_connection_lingers(served: tuple[str, Recorder]) -> None:
    url, recorder = served
    result = run("takeover", url, "websocket")
    assert result["oldReason"] == "io server disconnect"
    assert result["idMatches"] is True
    assert result["rooms"] == ["r"]  # the old socket's cleanup left them alone
    events, _ = strip_offsets(result["seenByNew"])
    assert events == [["room-message", "after"]]
    old_events, _ = strip_offsets(result["seenByOld"])
    assert old_events == [["room-message", "before"]]
    assert recorder.connects[-1]["recovered"] is True


def test_recovered_sockets_skip_middleware(served: tuple[str, Recorder]) -> None:
    url, recorder = served
    before = recorder.middleware_runs
    result = run("noEventYet", url, "websocket")
    assert result["recovered"] is True
    assert recorder.middleware_runs - before == 2  # the two first connects, not the return


def test_a_client_that_left_on_purpose_gets_a_new_session(served: tuple[str, Recorder]) -> None:
    url, recorder = served
    result = run("leftOnPurpose", url, "websocket")
    assert result["recovered"] is False
    assert result["id"] != result["idBefore"]
    assert recorder.connects[-1]["failure"] == RecoveryFailure.UNKNOWN_SESSION.value


def test_past_the_window_the_client_gets_a_new_session_and_the_log_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = Recorder()
    sio = make_server(RecoveryOptions(max_disconnection_duration=1.0), recorder)
    with caplog.at_level(logging.INFO, logger="realtime.socketio"), serve(sio.asgi_app()) as url:
        result = run("expired", url, "websocket", WAIT_MS="1500")
    assert result["recovered"] is False
    assert result["id"] != result["idBefore"]
    assert result["seen"] == []
    assert recorder.connects[-1]["failure"] == RecoveryFailure.UNKNOWN_SESSION.value
    assert "connection state not recovered in /: unknown session" in caplog.text


def test_recovery_is_off_by_default() -> None:
    sio = Server()
    assert sio.recovery is None
    assert Server(connection_state_recovery=True).recovery == RecoveryOptions()


def test_a_client_that_missed_more_than_is_kept_gets_a_new_session() -> None:
    recorder = Recorder()
    sio = make_server(RecoveryOptions(max_stored_packets=2), recorder)
    with serve(sio.asgi_app()) as url:
        result = run("missed", url, "websocket")
    assert result["recovered"] is False
    assert result["id"] != result["idBefore"]
    assert result["rooms"] == []
    events, _ = strip_offsets(result["seen"])
    assert events == [["room-message", "before"]]
    assert recorder.connects[-1]["failure"] == RecoveryFailure.UNKNOWN_OFFSET.value
