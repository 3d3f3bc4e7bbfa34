"""The emitters' own behaviour: chains, and failing fast when Redis is not there."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

import realtime
from realtime import AsyncEmitter, Emitter, PublishError
from tests.servers import free_port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (into the backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_chains_are_new_emitters_sharing_the_client() -> None:
    root = Emitter(f"redis://127.0.0.1:{free_port()}")  # connects on first publish only
    room = root.of("chat").to("a").except_(["b"]).volatile
    assert room.namespace == "/chat"
    assert root.namespace == "/"
    assert room._selection.rooms == ("a",)
    assert root._selection.rooms == ()
    assert room._client is root._client
    root.close()


def test_the_emitters_load_from_the_package() -> None:
    assert realtime.Emitter is Emitter
    assert realtime.AsyncEmitter is AsyncEmitter
    with pytest.raises(AttributeError):
        _ = realtime.NoSuchThing  # type: ignore[attr-defined]


def test_an_unreachable_redis_is_a_publish_error() -> None:
    with Emitter(f"redis://127.0.0.1:{free_port()}", timeout=2) as emitter:
        with pytest.raises(PublishError):
            emitter.emit("news", 1)
        with pytest.raises(PublishError):
            emitter.server_side_emit("note")


def test_a_redis_that_never_answers_is_a_publish_error(silent_port: int) -> None:
    emitter = Emitter(f"redis://127.0.0.1:{silent_port}", timeout=0.3)
    with emitter, pytest.raises(PublishError):
        emitter.emit("news", 1)


@pytest.mark.anyio
async def test_an_unreachable_redis_is_a_publish_error_async() -> None:
    async with AsyncEmitter(f"redis://127.0.0.1:{free_port()}", timeout=2) as emitter:
        with pytest.raises(PublishError):
            await emitter.emit("news", 1)
        with pytest.raises(PublishError):
            await emitter.to("r").sockets_join("s")


@pytest.mark.anyio
async def test_a_redis_that_never_answers_is_a_publish_error_async(silent_port: int) -> None:
    async with AsyncEmitter(f"redis://127.0.0.1:{silent_port}", timeout=0.3) as emitter:
        with pytest.raises(PublishError):
            await emitter.emit("news", 1)
