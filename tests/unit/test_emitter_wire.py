"""The emitter's bytes against those ``@socket.io/redis-emitter`` 5 published.

The vectors in ``emitter_vectors.json`` were recorded from the Node emitter
through a real Redis (``tests/emitter_vectors.py``; the live test
``test_emitter_cluster.py`` records them again and checks the file is current).
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgpack
import pytest

from realtime import EncodeError, ReservedEventError
from realtime import emitter_wire as wire
from tests import emitter_vectors

VECTORS = emitter_vectors.load()


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_same_bytes_as_the_node_emitter(vector: dict[str, Any]) -> None:
    published = emitter_vectors.encode(vector["op"])
    assert published.channel == vector["channel"]
    assert published.payload.hex() == vector["payload"]


def test_the_vectors_cover_every_operation() -> None:
    assert {v["op"]["op"] for v in VECTORS} == {
        "emit",
        "sockets-join",
        "sockets-leave",
        "disconnect-sockets",
        "server-side-emit",
    }


def test_a_broadcast_decodes_to_the_adapter_message() -> None:
    chosen = wire.Selection("/chat").to(["a", "b", "a"]).except_("c")
    published = wire.broadcast("k", chosen, "news", [b"\x00", None, {"x": 1.5}])
    assert published.channel == "k#/chat#"  # two rooms: the namespace channel
    uid, packet, opts = msgpack.unpackb(published.payload)
    assert uid == wire.EMITTER_UID
    assert packet == {"type": 2, "data": ["news", b"\x00", None, {"x": 1.5}], "nsp": "/chat"}
    assert opts == {"rooms": ["a", "b"], "flags": {}, "except": ["c"]}


def test_one_room_has_its_own_channel() -> None:
    published = wire.broadcast("k", wire.Selection().to("lobby"), "e", [])
    assert published.channel == "k#/#lobby#"


def test_a_server_side_emit_with_bytes_goes_as_msgpack() -> None:
    # JSON has no bytes; the adapters decode a request not starting with "{" as msgpack.
    published = wire.server_side_emit("k", wire.Selection(), "note", [b"\x01\x02"])
    assert published.channel == "k-request#/#"
    assert not published.payload.startswith(b"{")
    assert msgpack.unpackb(published.payload) == {
        "uid": "emitter",
        "type": 6,
        "data": ["note", b"\x01\x02"],
    }


def test_requests_are_json_as_javascript_writes_it() -> None:
    published = wire.sockets_join("k", wire.Selection().to("a"), "b")
    assert published.payload == b'{"type":2,"opts":{"rooms":["a"],"except":[]},"rooms":["b"]}'
    lone = wire.server_side_emit("k", wire.Selection(), "note", ["\ud800"])
    assert json.loads(lone.payload) == {"uid": "emitter", "type": 6, "data": ["note", "\ud800"]}
    assert b"\\ud800" in lone.payload  # escaped as JSON.stringify does: valid UTF-8


@pytest.mark.parametrize("value", [math.nan, math.inf, [{"x": -math.inf}]])
def test_non_finite_numbers_are_refused(value: Any) -> None:
    with pytest.raises(EncodeError):
        wire.broadcast("k", wire.Selection(), "e", [value])
    with pytest.raises(EncodeError):
        wire.server_side_emit("k", wire.Selection(), "e", [value])


def test_values_msgpack_cannot_carry_are_refused() -> None:
    with pytest.raises(EncodeError):
        wire.broadcast("k", wire.Selection(), "e", [object()])
    with pytest.raises(EncodeError):
        wire.broadcast("k", wire.Selection(), "e", [2**64])


@pytest.mark.parametrize("event", ["connect", "disconnect", "newListener"])
def test_reserved_events_are_refused(event: str) -> None:
    with pytest.raises(ReservedEventError):
        wire.broadcast("k", wire.Selection(), event, [])


def test_room_names_are_strings() -> None:
    with pytest.raises(TypeError):
        wire.Selection().to([1])  # type: ignore[list-item]


def test_namespace_names_get_their_slash() -> None:
    assert wire.namespace_name("chat") == "/chat"
    assert wire.namespace_name("/chat") == "/chat"
