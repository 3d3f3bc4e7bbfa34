"""The codec's answers to hostile input, one case each, and the limits ``run`` sets."""

from __future__ import annotations

import math
import resource

import pytest

from realtime import Server
from realtime.engineio import EngineConfig, EngineServer
from realtime.exceptions import EncodeError, SocketIOPacketError
from realtime.serving import MAX_CONNECTIONS, default_limit_concurrency, uvicorn_options
from realtime.socketio.packets import (
    MAX_ACK_ID,
    Decoder,
    DecoderLimits,
    Packet,
    PacketType,
    dumps,
    encode,
)


@pytest.mark.parametrize(
    "text",
    ['2["e",1e400]', '2["e",-1e400]', '2["e",{"a":[1E999]}]', "3/x,1[1e309]", '0/x,{"n":1e400}'],
)
def test_numbers_out_of_double_range_are_refused(text: str) -> None:
    with pytest.raises(SocketIOPacketError, match="out of range"):
        Decoder().feed(text)


def test_numbers_in_range_are_kept() -> None:
    packet = Decoder().feed('2["e",1e308,-1.5e-320,12345678901234567890123]')
    assert packet is not None
    assert packet.data == ["e", 1e308, -1.5e-320, 12345678901234567890123]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1, {"x": math.inf}]])
def test_encoder_refuses_nan_and_infinity(value: object) -> None:
    with pytest.raises(EncodeError, match="cannot be sent as JSON"):
        dumps(["e", value])
    with pytest.raises(ValueError, match="cannot be sent as JSON"):  # EncodeError is one
        encode(Packet(PacketType.EVENT, data=["e", value]))


def test_ack_ids_up_to_max_safe_integer() -> None:
    packet = Decoder().feed(f'2{MAX_ACK_ID}["e"]')
    assert packet is not None
    assert packet.id == 2**53 - 1
    with pytest.raises(SocketIOPacketError, match="above 2"):
        Decoder().feed(f'2{MAX_ACK_ID + 1}["e"]')
    with pytest.raises(SocketIOPacketError, match="above 2"):
        Decoder().feed(f'3{MAX_ACK_ID + 1}["e"]')


def test_namespace_length_limit_does_not_echo_the_name() -> None:
    limits = DecoderLimits(max_namespace_length=10)
    assert Decoder(limits).feed("0/" + "a" * 9 + ",") == Packet(PacketType.CONNECT, "/" + "a" * 9)
    for text in ("0/" + "a" * 10 + ",", "2/" + "a" * 10 + ',["e"]', "0/" + "a" * 10):
        with pytest.raises(SocketIOPacketError) as info:
            Decoder(limits).feed(text)
        assert "aaaaaaaaaa" not in str(info.value)


def test_default_namespace_limit() -> None:
    assert DecoderLimits().max_namespace_length == 256
    Decoder().feed("0/" + "a" * 255 + ",")
    with pytest.raises(SocketIOPacketError):
        Decoder().feed("0/" + "a" * 256 + ",")


def test_lone_surrogates_are_escaped_on_encode() -> None:
    packet = Decoder().feed('2["e","a\\ud800b","\\ud83d\\ude00",{"\\udfff":1}]')
    assert packet is not None
    [text] = encode(Packet(PacketType.EVENT, data=packet.data))
    assert text == '2["e","a\\ud800b","😀",{"\\udfff":1}]'
    text.encode("utf-8")


def test_run_sets_ws_max_size_to_max_payload() -> None:
    sio = Server(max_payload=12_345)
    for app in (sio, sio.asgi_app(), sio.engine):
        assert uvicorn_options(app)["ws_max_size"] == 12_345
    engine = EngineServer(handler=sio, config=EngineConfig(max_payload=777))
    assert uvicorn_options(engine)["ws_max_size"] == 777
    assert uvicorn_options(object())["ws_max_size"] == EngineConfig().max_payload


def test_run_sets_the_other_limits_and_lets_options_override() -> None:
    options = uvicorn_options(Server())
    assert options["h11_max_incomplete_event_size"] == 16 * 1024
    assert options["timeout_keep_alive"] == 5
    assert options["limit_concurrency"] == default_limit_concurrency()
    assert options["ws_per_message_deflate"] is False
    assert uvicorn_options(Server(), limit_concurrency=7)["limit_concurrency"] == 7


def test_limit_concurrency_stays_under_the_file_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = default_limit_concurrency()
    assert limit <= MAX_CONNECTIONS
    if soft != resource.RLIM_INFINITY:
        assert limit < soft or soft <= 100
