"""The broker-independent parts of a multi-node adapter (realtime/adapters/cluster.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from realtime.adapters.base import SocketId
from realtime.adapters.cluster import PendingReplies, RemoteAcks, backoff_delay, new_uid
from realtime.exceptions import ClusterTimeoutError

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_ids_look_like_node_ids() -> None:
    ids = {new_uid() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 6 for i in ids)


def test_backoff_grows_and_is_capped() -> None:
    for attempt in range(12):
        delay = backoff_delay(attempt, base=0.1, maximum=5)
        ceiling = min(5, 0.1 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling


async def test_replies_complete_when_all_arrived() -> None:
    pending = PendingReplies(2)
    pending.add("a")
    pending.add("b")
    assert await pending.wait(5, "x") == ["a", "b"]


async def test_missing_replies_end_at_the_timeout_with_the_partial_answers() -> None:
    pending = PendingReplies(3)
    pending.add("a")
    with pytest.raises(ClusterTimeoutError) as caught:
        await pending.wait(0.05, "fetchSockets response")
    assert caught.value.responses == ["a"]
    assert (caught.value.expected, caught.value.received) == (3, 1)
    assert "1 of 3 nodes answered" in str(caught.value)


async def test_no_other_node_means_no_wait() -> None:
    with anyio.fail_after(1):
        assert await PendingReplies(0).wait(60, "x") == []


def test_remote_acks_count_then_answer() -> None:
    seen: list[tuple[list[SocketId], bool]] = []
    acks: list[tuple[SocketId, Any]] = []

    def on_recipients(sids: Sequence[SocketId], /, *, complete: bool = True) -> None:
        seen.append((list(sids), complete))

    remote = RemoteAcks("rq", on_recipients, lambda sid, args: acks.append((sid, args)))
    remote.client_count(2)  # a node's count may come before the server count is known
    assert seen == [(["rq:0", "rq:1"], False)]
    remote.set_servers(2)
    assert not remote.complete
    remote.client_count(0)
    assert remote.complete
    assert seen[-1] == ([], True)
    remote.ack("x")
    remote.ack("y")
    assert acks == [("rq:0", ["x"]), ("rq:1", ["y"])]


def test_an_answer_ahead_of_its_count_is_counted() -> None:
    seen: list[list[SocketId]] = []

    def on_recipients(sids: Sequence[SocketId], /, *, complete: bool = True) -> None:
        seen.append(list(sids))

    remote = RemoteAcks("rq", on_recipients, lambda sid, args: None)
    remote.ack("early")
    assert seen == [["rq:0"]]


async def test_a_count_reply_without_its_count_is_no_answer() -> None:
    """A peer's BROADCAST_CLIENT_COUNT lacking ``clientCount`` counts no client; it is
    not taken for a client's answer (on either Redis wire)."""
    from realtime.adapters.redis import RedisAdapter, RedisLink, RedisOptions
    from realtime.adapters.redis_streams import RedisStreamsAdapter
    from realtime.adapters.redis_streams_wire import MessageType, encode_message
    from tests.unit.test_adapter_memory import RecordingNamespace

    classic = RedisAdapter(RecordingNamespace(), RedisLink(RedisOptions()))
    streams = RedisStreamsAdapter.factory()(RecordingNamespace())
    replies: list[tuple[Any, ...]] = [
        (classic, classic._on_response, b'{"type":8,"requestId":"rq"}'),
        (
            streams,
            streams._on_pubsub,
            encode_message("peer", "/", MessageType.BROADCAST_CLIENT_COUNT, {"requestId": "rq"}),
        ),
    ]
    for adapter, on_message, raw in replies:
        answers: list[Any] = []
        counted: list[Sequence[SocketId]] = []
        remote = RemoteAcks(
            "rq",
            lambda sids, complete=True, counted=counted: counted.append(list(sids)),
            lambda sid, args, answers=answers: answers.append(args),
        )
        adapter._ack_requests["rq"] = remote
        on_message("channel", raw)
        assert (answers, remote.counts, remote.issued) == ([], 1, 0)
