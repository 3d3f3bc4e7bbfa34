"""The Redis adapter wire against the bytes the Node adapter itself publishes.

tests/node/redis_wire_vectors.mjs runs the real @socket.io/redis-adapter 8.3
(notepack.io msgpack) with stand-in Redis clients and prints what it publishes;
every Python encoder must produce the same bytes from the same inputs.
"""

from __future__ import annotations

from typing import Any

import pytest

from realtime.adapters import redis_wire as wire
from realtime.adapters.base import BroadcastOptions
from realtime.socketio.packets import Packet, PacketType
from tests.servers import node_json

UID = "nodeAA"


@pytest.fixture(scope="module")
def vectors() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for vector in node_json("redis_wire_vectors.mjs", package="@socket.io/redis-adapter"):
        vector["raw"] = bytes.fromhex(vector["hex"])
        found[vector["name"]] = vector
    return found


def request_id(vector: dict[str, Any]) -> str:
    rid = wire.decode(vector["raw"])["requestId"]
    assert isinstance(rid, str)
    return rid


CH = wire.Channels(wire.DEFAULT_KEY, "/")


def test_channel_names() -> None:
    admin = wire.Channels("app", "/admin")
    assert admin.broadcast == "app#/admin#"
    assert admin.pattern == "app#/admin#*"
    assert admin.room("r") == "app#/admin#r#"
    assert admin.request == "app-request#/admin#"
    assert admin.response == "app-response#/admin#"
    assert admin.specific_response("u1") == "app-response#/admin#u1#"
    assert admin.room_of("app#/admin#") == ""
    assert admin.room_of("app#/admin#r#") == "r"
    assert admin.room_of("app#/other#r#") is None


def test_broadcast_to_all(vectors: dict[str, dict[str, Any]]) -> None:
    vector = vectors["broadcast_all"]
    data = ["ev", 1, -2, "é", b"\x01\x02\x03", None, {"a": True}, 1.5, [300, 70000]]
    packet = Packet(PacketType.EVENT, "/", data)
    assert vector["channel"] == wire.broadcast_channel(CH, BroadcastOptions()) == CH.broadcast
    assert wire.encode_broadcast(UID, packet, BroadcastOptions()) == vector["raw"]
    decoded = wire.decode_broadcast(vector["raw"])
    assert decoded.uid == UID
    assert decoded.packet == packet  # binary comes back as bytes, nil as None


def test_broadcast_to_one_room_with_flags(vectors: dict[str, dict[str, Any]]) -> None:
    vector = vectors["broadcast_room"]
    opts = BroadcastOptions(rooms=frozenset({"r1"}), except_rooms=frozenset({"r2"}), volatile=True)
    assert vector["channel"] == wire.broadcast_channel(CH, opts) == CH.room("r1")
    packet = Packet(PacketType.EVENT, "/", ["ev", "x"])
    assert wire.encode_broadcast(UID, packet, opts) == vector["raw"]
    decoded = wire.decode_broadcast(vector["raw"])
    assert decoded.opts == opts
    assert decoded.flags == {"volatile": True}


def test_a_node_date_arrives_as_its_json_string(vectors: dict[str, dict[str, Any]]) -> None:
    decoded = wire.decode_broadcast(vectors["broadcast_date"]["raw"])
    assert decoded.packet.data == ["when", "2024-01-02T03:04:05.678Z"]


def test_broadcast_with_ack_request(vectors: dict[str, dict[str, Any]]) -> None:
    vector = vectors["broadcast_ack_request"]
    assert vector["channel"] == CH.request
    packet = Packet(PacketType.EVENT, "/", ["question", 7])
    raw = wire.broadcast_ack_request(UID, request_id(vector), packet, BroadcastOptions(), 2.0)
    assert raw == vector["raw"]


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("all_rooms_request", lambda rid: wire.all_rooms_request(UID, rid)),
        (
            "fetch_request",
            lambda rid: wire.fetch_request(
                UID, rid, BroadcastOptions(frozenset({"r1"}), frozenset({"r2"}))
            ),
        ),
        (
            "server_side_emit_ack_request",
            lambda rid: wire.server_side_emit_request(UID, ["who"], rid),
        ),
    ],
)
def test_requests_with_ids(vectors: dict[str, dict[str, Any]], name: str, build: Any) -> None:
    vector = vectors[name]
    assert vector["channel"] == CH.request
    assert build(request_id(vector)) == vector["raw"]


def test_requests_without_ids(vectors: dict[str, dict[str, Any]]) -> None:
    r1 = BroadcastOptions(rooms=frozenset({"r1"}))
    not_r2 = BroadcastOptions(except_rooms=frozenset({"r2"}))
    assert wire.join_request(UID, r1, ["r9"], leave=False) == vectors["join_request"]["raw"]
    assert wire.join_request(UID, not_r2, ["r9"], leave=True) == vectors["leave_request"]["raw"]
    assert wire.disconnect_request(UID, r1, close=True) == vectors["disconnect_request"]["raw"]
    expected = vectors["server_side_emit_request"]["raw"]
    assert wire.server_side_emit_request(UID, ["hello", 1, "two"]) == expected


def test_responses(vectors: dict[str, dict[str, Any]]) -> None:
    for name in (
        "rooms_response",
        "fetch_response",
        "sockets_response",
        "server_side_emit_response",
        "client_count_response",
        "broadcast_ack_response",
    ):
        assert vectors[name]["channel"] == CH.response, name
    assert wire.rooms_response("rqALLR", ["sidA", "r1"]) == vectors["rooms_response"]["raw"]
    assert wire.sockets_response("rqSOCK", ["sidA"]) == vectors["sockets_response"]["raw"]
    assert (
        wire.server_side_emit_response("rqSSEA", "node-a")
        == vectors["server_side_emit_response"]["raw"]
    )
    assert wire.client_count_response("rqBACK", 1) == vectors["client_count_response"]["raw"]
    assert (
        wire.broadcast_ack_response("rqBACK", {"answer": b"\x09", "n": None})
        == vectors["broadcast_ack_response"]["raw"]
    )
    handshake = {
        "headers": {"host": "h"},
        "time": "T",
        "address": "127.0.0.1",
        "xdomain": False,
        "secure": False,
        "issued": 1700000000000,
        "url": "/socket.io/?EIO=4",
        "query": {"EIO": "4"},
        "auth": {"token": "x"},
    }
    socket = {"id": "sidA", "handshake": handshake, "rooms": ["sidA", "r1"]}
    socket["data"] = {"name": "ann"}
    assert wire.fetch_response("rqFETC", [socket]) == vectors["fetch_response"]["raw"]


def test_every_node_message_decodes(vectors: dict[str, dict[str, Any]]) -> None:
    for vector in vectors.values():
        if vector["channel"] in (CH.broadcast, CH.room("r1")):
            wire.decode_broadcast(vector["raw"])
            continue
        message = wire.decode(vector["raw"])
        assert isinstance(message, dict), vector["name"]


def test_malformed_messages_raise_the_wire_error() -> None:
    for raw in (b"{not json", b"\xc1", b"\x93\xa1x\xc0"):
        with pytest.raises(wire.WireDecodeError):
            wire.decode_broadcast(raw) if raw[:1] != b"{" else wire.decode(raw)


def test_unencodable_data_is_an_encode_error() -> None:
    from realtime.exceptions import EncodeError

    with pytest.raises(EncodeError):
        wire.pack({"x": object()})
