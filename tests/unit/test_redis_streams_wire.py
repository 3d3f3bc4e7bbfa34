"""The Redis Streams adapter wire against what the Node adapter itself writes.

tests/node/redis_streams_wire_vectors.mjs runs the real
@socket.io/redis-streams-adapter 0.3 (@msgpack/msgpack 2.8) with a stand-in Redis
client and prints its stream entries, publishes and persisted session; every
Python encoder must produce the same bytes from the same inputs.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from realtime.adapters import redis_streams_wire as wire
from realtime.adapters.base import BroadcastOptions, SocketId
from realtime.adapters.recovery import SessionRecord
from realtime.adapters.redis_wire import WireDecodeError
from realtime.socketio.packets import Packet, PacketType
from tests.servers import node_json

UID = "nodeAA"
T = wire.MessageType
R1 = BroadcastOptions(rooms=frozenset({"r1"}))
NOT_R2 = BroadcastOptions(except_rooms=frozenset({"r2"}))


@pytest.fixture(scope="module")
def node_out() -> dict[str, Any]:
    out = node_json("redis_streams_wire_vectors.mjs", package="@socket.io/redis-streams-adapter")
    return dict(out)


@pytest.fixture(scope="module")
def vectors(node_out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for vector in node_out["out"]:
        if "hex" in vector:
            vector["raw"] = bytes.fromhex(vector["hex"])
        found[vector["name"]] = vector
    return found


def entry(vector: dict[str, Any]) -> dict[str, str]:
    assert vector["kind"] == "xadd"
    assert vector["stream"] == "sio-stream"
    assert vector["maxLen"] == 500
    assert vector["id"] == "*"
    return dict(vector["fields"])


def fields_in_order(vector: dict[str, Any]) -> list[str]:
    return [name for name, _ in vector["fields"]]


def test_broadcast_entries(vectors: dict[str, dict[str, Any]]) -> None:
    data = ["ev", 1, -2, "é", None, {"a": True}, 1.5, [300, 70000]]
    packet = Packet(PacketType.EVENT, "/", data)
    ours = wire.encode_entry(UID, "/", T.BROADCAST, wire.broadcast_data(packet, BroadcastOptions()))
    assert ours == entry(vectors["broadcast_json"])
    assert list(ours) == fields_in_order(vectors["broadcast_json"])

    opts = BroadcastOptions(rooms=frozenset({"r1"}), except_rooms=frozenset({"r2"}))
    binary = Packet(PacketType.EVENT, "/", ["bin", b"\x01\x02\x03", {"n": 1}])
    ours = wire.encode_entry(UID, "/", T.BROADCAST, wire.broadcast_data(binary, opts))
    assert ours == entry(vectors["broadcast_binary"])  # base64 msgpack, as Node
    decoded = wire.decode_broadcast(wire.decode_entry(ours))
    assert (decoded.packet, decoded.opts, decoded.request_id) == (binary, opts, None)

    volatile = BroadcastOptions(rooms=frozenset({"r1"}), volatile=True)
    ours = wire.encode_entry(
        UID, "/", T.BROADCAST, wire.broadcast_data(Packet(PacketType.EVENT, "/", ["v"]), volatile)
    )
    assert ours == entry(vectors["broadcast_volatile"])


def test_only_plaintext_writes_binary_as_node_json_buffers() -> None:
    binary = Packet(PacketType.EVENT, "/", ["bin", b"\x01\x02"])
    data = wire.broadcast_data(binary, BroadcastOptions())
    ours = wire.encode_entry(UID, "/", T.BROADCAST, data, only_plaintext=True)
    assert json.loads(ours["data"])["packet"]["data"][1] == {"type": "Buffer", "data": [1, 2]}


def test_room_and_disconnect_entries(vectors: dict[str, dict[str, Any]]) -> None:
    join = wire.encode_entry(UID, "/", T.SOCKETS_JOIN, wire.sockets_join_data(R1, ["r9"]))
    assert join == entry(vectors["sockets_join"])
    leave = wire.encode_entry(UID, "/", T.SOCKETS_LEAVE, wire.sockets_join_data(NOT_R2, ["r9"]))
    assert leave == entry(vectors["sockets_leave"])
    gone = wire.encode_entry(UID, "/", T.DISCONNECT_SOCKETS, wire.disconnect_data(R1, close=True))
    assert gone == entry(vectors["disconnect_sockets"])


def request_id(vector: dict[str, Any]) -> str:
    rid = wire.decode_message(vector["raw"]).data["requestId"]
    assert isinstance(rid, str)
    return rid


def test_ephemeral_requests(vectors: dict[str, dict[str, Any]]) -> None:
    public = wire.Channels("sio-ch", "/").public
    for name in ("broadcast_ack", "fetch_sockets", "server_side_emit", "server_side_emit_ack"):
        assert (vectors[name]["kind"], vectors[name]["channel"]) == ("publish", public), name

    vector = vectors["broadcast_ack"]
    packet = Packet(PacketType.EVENT, "/", ["question", 7])
    data = wire.broadcast_with_ack_data(packet, request_id(vector), BroadcastOptions(), 2.0)
    assert wire.is_ephemeral(T.BROADCAST, data)
    assert wire.encode_message(UID, "/", T.BROADCAST, data) == vector["raw"]

    vector = vectors["fetch_sockets"]
    opts = BroadcastOptions(rooms=frozenset({"r1"}), except_rooms=frozenset({"r2"}))
    data = wire.fetch_sockets_data(opts, request_id(vector))
    assert wire.encode_message(UID, "/", T.FETCH_SOCKETS, data) == vector["raw"]

    data = wire.server_side_emit_data(["hello", 1, "two"])
    assert (
        wire.encode_message(UID, "/", T.SERVER_SIDE_EMIT, data)
        == vectors["server_side_emit"]["raw"]
    )
    vector = vectors["server_side_emit_ack"]
    data = wire.server_side_emit_data(["who"], request_id(vector))
    assert wire.encode_message(UID, "/", T.SERVER_SIDE_EMIT, data) == vector["raw"]


def test_responses_go_to_the_requester(vectors: dict[str, dict[str, Any]]) -> None:
    private = wire.Channels("sio-ch", "/").private("peerBB")
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
    socket = {
        "id": "sidA",
        "handshake": handshake,
        "rooms": ["sidA", "r1"],
        "data": {"name": "ann"},
    }
    expected = {
        "fetch_sockets_response": wire.encode_message(
            UID, "/", T.FETCH_SOCKETS_RESPONSE, wire.fetch_sockets_response_data("rqFETC", [socket])
        ),
        "server_side_emit_response": wire.encode_message(
            UID,
            "/",
            T.SERVER_SIDE_EMIT_RESPONSE,
            wire.server_side_emit_response_data("rqSSEA", "node-a"),
        ),
        "client_count_response": wire.encode_message(
            UID, "/", T.BROADCAST_CLIENT_COUNT, wire.client_count_data("rqBACK", 1)
        ),
        "broadcast_ack_response": wire.encode_message(
            UID,
            "/",
            T.BROADCAST_ACK,
            wire.broadcast_ack_data("rqBACK", {"answer": b"\x09", "n": None}),
        ),
    }
    for name, raw in expected.items():
        assert vectors[name]["channel"] == private, name
        assert raw == vectors[name]["raw"], name


def test_every_node_message_decodes(vectors: dict[str, dict[str, Any]]) -> None:
    for vector in vectors.values():
        if vector["kind"] == "xadd":
            message = wire.decode_entry(entry(vector))
        elif vector["kind"] == "publish":
            message = wire.decode_message(vector["raw"])
        else:
            continue
        assert (message.uid, message.nsp) == (UID, "/"), vector["name"]
        if message.type == T.BROADCAST:
            wire.decode_broadcast(message)


def test_sessions_as_node_persists_them(vectors: dict[str, dict[str, Any]], node_out: Any) -> None:
    vector = vectors["persist_session"]
    assert (vector["key"], vector["px"], vector["ms"]) == ("sio:session:pidA", "PX", 120000)
    record = SessionRecord(SocketId("sidA"), "pidA", ["sidA", "r1"], {"name": "ann", "n": 3})
    assert wire.session_key("sio:session:", "pidA") == vector["key"]
    assert wire.encode_session(record) == vector["value"]
    assert wire.decode_session(vector["value"]) == record
    assert wire.decode_session(node_out["session"]) == SessionRecord(SocketId("s"), "p", ["s"], {})
    # ours carries the offset too, which Node's msgpack decoder simply keeps aside
    record.offset = "1700000000000-3"
    assert wire.decode_session(wire.encode_session(record)) == record


def test_owner_key_shares_the_session_key_slot() -> None:
    assert wire.owner_key("sio:session:", "p1") == "{sio:session:p1}owner"


def test_hash_code_and_stream_routing(node_out: dict[str, Any]) -> None:
    for name, expected in node_out["hashes"].items():
        assert wire.hash_code(name) == expected, name
    assert wire.stream_name("/chat", "s", 1) == "s"
    assert wire.stream_name("/chat", "s", 3) == f"s-{46457863 % 3}"
    # JavaScript's % keeps the dividend's sign: Node writes this namespace to "s--2"
    assert node_out["hashes"]["/notifications"] < 0
    assert wire.stream_name("/notifications", "s", 3) == "s--2"


def test_offsets() -> None:
    assert wire.next_offset("1700000000000-9") == "1700000000000-10"
    assert wire.parse_offset("5-1") < wire.parse_offset("5-10") < wire.parse_offset("6-0")
    for bad in ("", "5", "5-", "-1", "a-1", "5-1-2", "5-1\n"):
        with pytest.raises(WireDecodeError):
            wire.parse_offset(bad)


def test_malformed_input_raises_the_wire_error() -> None:
    for fields in ({"type": "x"}, {"type": "3", "data": "{nope"}, {"type": "3", "data": "%%%"}):
        with pytest.raises(WireDecodeError):
            wire.decode_entry(fields)
    for raw in (b"\xc1", b"\x93\x01\x02\x03", b"\x81\xa4type\xa1x"):
        with pytest.raises(WireDecodeError):
            wire.decode_message(raw)
    with pytest.raises(WireDecodeError):
        wire.decode_broadcast(wire.Message("u", "/", 3, {"packet": {"data": []}}))
    with pytest.raises(WireDecodeError):
        wire.decode_session(base64.b64encode(b"\x91\x01"))
