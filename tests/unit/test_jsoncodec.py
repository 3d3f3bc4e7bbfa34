"""The compiled JSON codec writes and reads exactly what the stdlib did, or leaves it to it.

The reference is the codec as it was before orjson: ``json.dumps`` with
JavaScript's separators, non-ASCII kept, NaN refused, lone surrogates escaped;
``json.loads`` refusing NaN, Infinity and numbers out of double range. Every
case where orjson differs is pinned here, once with orjson and once with the
stdlib alone (orjson hidden, as on a platform without its wheel).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import importlib
import json
import math
import re
import sys
import types
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime import jsoncodec
from realtime.adapters import redis_streams_wire, redis_wire
from realtime.engineio import EngineConfig
from realtime.exceptions import EncodeError, SocketIOPacketError
from realtime.socketio import packets
from realtime.socketio.packets import Decoder, DecoderLimits, Packet, PacketType, dumps, encode
from tests.unit.test_codec_properties import PROPERTIES, json_values, keys

# -- the reference: the codec before the compiled one --------------------------------

_SURROGATE = re.compile("[\ud800-\udfff]")


def reference_dumps(data: Any) -> str:
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise EncodeError(f"data cannot be sent as JSON: {exc}") from None
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def reference_loads(text: str) -> Any:
    return packets._stdlib_loads(text)


def typed(value: Any) -> Any:
    """``value`` with its types spelled out: 1, 1.0 and True are equal in Python, not here."""
    if isinstance(value, list):
        return ["list", [typed(v) for v in value]]
    if isinstance(value, dict):
        return ["dict", [(k, typed(v)) for k, v in value.items()]]
    if isinstance(value, float):
        return ["float", repr(value)]
    return [type(value).__name__, value]


def outcome(fn: Any, arg: Any) -> Any:
    try:
        return typed(fn(arg))
    except Exception as exc:  # the same class and message, or not the same codec
        return ["raised", type(exc).__name__, str(exc)]


# -- both codecs ---------------------------------------------------------------------


@pytest.fixture(params=["orjson", "stdlib"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each test twice: with orjson, and with orjson hidden (its import fails)."""
    if request.param == "stdlib":
        monkeypatch.setitem(sys.modules, "orjson", None)
        importlib.reload(jsoncodec)
        assert not jsoncodec.COMPILED
    else:
        assert jsoncodec.COMPILED, "orjson is a test dependency: pip install -e '.[test]'"
    yield request.param
    monkeypatch.undo()
    importlib.reload(jsoncodec)


class Color(enum.Enum):
    RED = "red"
    LEVEL = 2


class Size(enum.IntEnum):
    BIG = 3


class Tag(enum.StrEnum):
    NEW = "new"


class Ordered(OrderedDict[str, Any]):
    pass


class Text(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


# Each value with the exact text it has always been sent as.
SENT_AS = [
    # floats: Python's repr, which orjson does not follow below 1e-4
    (1e16, "1e+16"),
    (1e22, "1e+22"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (1.0, "1.0"),
    (-0.0, "-0.0"),
    (0.0001, "0.0001"),
    (5e-05, "5e-05"),
    (-1.5e-05, "-1.5e-05"),
    (1e-07, "1e-07"),
    (5e-324, "5e-324"),
    (123456789012345.6, "123456789012345.6"),
    ({"x": [1e-10]}, '{"x":[1e-10]}'),
    # integers: every digit, beyond 64 bits too (orjson refuses those)
    (2**63, "9223372036854775808"),
    (2**64 - 1, "18446744073709551615"),
    (2**64, "18446744073709551616"),
    (-(2**63) - 1, "-9223372036854775809"),
    (10**30, "1000000000000000000000000000000"),
    # strings: UTF-8 kept, controls escaped as the stdlib does, lone surrogates escaped
    ("é€😀", '"é€😀"'),
    ("\x00\x08\t\n\x1f\x7f\u2028", '"\\u0000\\b\\t\\n\\u001f\x7f\u2028"'),
    ('"\\/', '"\\"\\\\/"'),
    ("a\ud800b", '"a\\ud800b"'),
    (["\udfff", "x"], '["\\udfff","x"]'),
    # objects: insertion order; keys of other types as the stdlib writes them
    ({"b": 1, "a": 2}, '{"b":1,"a":2}'),
    ({1: "a", 2.5: "b", False: "c", None: "d"}, '{"1":"a","2.5":"b","false":"c","null":"d"}'),
    # null, and tuples as arrays
    ([None, {"ok": None}], '[null,{"ok":null}]'),
    ((1, (2, 3)), "[1,[2,3]]"),
    # subclasses of built-in types: what they are, as the stdlib writes them
    (Size.BIG, "3"),
    (Tag.NEW, '"new"'),
    (Text("t"), '"t"'),
    (Ordered(a=1), '{"a":1}'),
    # the two types orjson writes: the same with the stdlib alone
    (Color.RED, '"red"'),
    ([Color.LEVEL], "[2]"),
    (uuid.UUID(int=1), '"00000000-0000-0000-0000-000000000001"'),
]


@pytest.mark.parametrize(("value", "text"), SENT_AS)
@pytest.mark.usefixtures("codec")
def test_values_are_sent_as_always(value: Any, text: str) -> None:
    assert dumps(value) == text
    [frame] = encode(Packet(PacketType.EVENT, data=["e", value]))
    assert frame == f'2["e",{text}]'


class NanEnum(enum.Enum):
    X = math.nan


def _cycle() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, [1, {"x": -math.inf}], NanEnum.X, _cycle()]
)
@pytest.mark.usefixtures("codec")
def test_nan_infinity_and_cycles_are_refused(value: Any) -> None:
    with pytest.raises(EncodeError, match="cannot be sent as JSON"):
        dumps(["e", value])
    with pytest.raises(EncodeError, match="cannot be sent as JSON"):
        encode(Packet(PacketType.CONNECT_ERROR, data={"x": value}))


@pytest.mark.parametrize(
    "value",
    [{1, 2}, datetime.date(2020, 1, 1), Point(1), object(), b"raw", Color],
)
@pytest.mark.usefixtures("codec")
def test_other_types_are_refused_as_always(value: Any) -> None:
    with pytest.raises(TypeError, match="is not JSON serializable"):
        dumps(["e", value])


@pytest.mark.usefixtures("codec")
def test_binary_data_is_found_whichever_codec_runs() -> None:
    frames = encode(Packet(PacketType.EVENT, "/n", ["e", {1: b"\x01"}, b"\x02"], 7))
    assert frames == [
        '52-/n,7["e",{"1":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1}]',
        b"\x01",
        b"\x02",
    ]
    frames = encode(Packet(PacketType.BINARY_ACK, data=[1], id=2))
    assert frames == ["60-2[1]"]


# Each text with the exact value it has always been read as.
READ_AS = [
    ('["e",18446744073709551615]', ["e", 18446744073709551615]),
    ('["e",18446744073709551616]', ["e", 18446744073709551616]),
    ('["e",-9223372036854775809]', ["e", -9223372036854775809]),
    ('["e",12345678901234567890123]', ["e", 12345678901234567890123]),
    ('["e",1.5e-320,-0,-0.0,1E2]', ["e", 1.5e-320, 0, -0.0, 100.0]),
    ('["e",0.12345678901234567890123]', ["e", 0.12345678901234568]),
    ('["e","\\ud800","\\udfff\\ud83d\\ude00"]', ["e", "\ud800", "\udfff😀"]),
    ('["e",{"a":1,"b":2,"a":3}]', ["e", {"a": 3, "b": 2}]),
    ('\t["e", "\\u0000" ]\r\n', ["e", "\x00"]),
]


@pytest.mark.parametrize(("text", "value"), READ_AS)
@pytest.mark.usefixtures("codec")
def test_texts_are_read_as_always(text: str, value: Any) -> None:
    packet = Decoder().feed("2" + text)
    assert packet is not None
    assert typed(packet.data) == typed(value)


# Texts the stdlib's json refuses; the nesting one only up to Python 3.12 (3.13
# reads it: its C recursion limit is not the interpreter's).
REFUSED = [
    pytest.param('["e",1e400]', id="float out of range"),
    pytest.param('["e",-1E999]', id="negative float out of range"),
    pytest.param('["e",NaN]', id="NaN"),
    pytest.param('["e",-Infinity]', id="-Infinity"),
    pytest.param('\ufeff["e"]', id="byte order mark"),
    pytest.param('["e",1,]', id="trailing comma"),
    pytest.param('["e","\x01"]', id="control character"),
    pytest.param('["e",' + "1" * 5000 + "]", id="integer over the digit limit"),
    pytest.param('["e"]x', id="extra data"),
    pytest.param("[" * 2000 + "]" * 2000, id="nesting past the recursion limit"),
]


@pytest.mark.parametrize("text", REFUSED)
@pytest.mark.usefixtures("codec")
def test_texts_are_refused_as_the_stdlib_refuses_them(text: str) -> None:
    """Refused with the stdlib's own message, whichever codec reads; the messages are
    those of the running Python (3.13 says "Illegal trailing comma" where 3.11 says
    "Expecting value")."""
    try:
        reference_loads(text)
    except SocketIOPacketError as exc:  # the parse_float/parse_constant hooks raise it as is
        expected = str(exc)
    except (ValueError, RecursionError) as exc:
        expected = f"invalid JSON payload: {exc}"
    else:
        # Python 3.13 reads the deep nesting: then the codec reads it too.
        assert text.startswith("[[")
        assert sys.version_info >= (3, 13)
        assert jsoncodec.loads(text, reference_loads) == reference_loads(text)
        return
    with pytest.raises(SocketIOPacketError) as info:
        Decoder(DecoderLimits(max_json_depth=5000)).feed("2" + text)
    assert str(info.value) == expected


@pytest.mark.usefixtures("codec")
def test_depth_limit_holds_whichever_codec_runs() -> None:
    deep = '["e",' + "[" * 32 + "]" * 32 + "]"
    with pytest.raises(SocketIOPacketError, match="deeper than 32"):
        Decoder().feed("2" + deep)
    assert Decoder(DecoderLimits(max_json_depth=33)).feed("2" + deep) is not None


@pytest.mark.usefixtures("codec")
def test_handshake_and_cluster_json_are_unchanged() -> None:
    config = EngineConfig()
    handshake = config.handshake("sid-é", "polling")
    assert jsoncodec.dumps_ascii(handshake) == json.dumps(handshake, separators=(",", ":"))
    assert jsoncodec.dumps_ascii({"a": 1e16, "b": None}) == '{"a":1e+16,"b":null}'
    raw = b'{"requestId":"r","n":12345678901234567890123,"x":NaN,"s":"\\ud800"}'
    assert outcome(redis_wire.decode, raw) == outcome(json.loads, raw)
    entry = redis_streams_wire.decode_entry({b"type": b"3", b"data": raw})
    assert typed(entry.data) == typed(json.loads(raw))
    assert outcome(redis_wire.decode, b'{"a":') == [
        "raised",
        "WireDecodeError",
        "malformed JSON message: Expecting value: line 1 column 6 (char 5)",
    ]


def test_the_compiled_codec_takes_the_common_payloads() -> None:
    """The fast path is taken where it should be, and left where it must be."""
    assert jsoncodec.COMPILED
    common: list[Any] = [
        ["echo", 1, "x" * 32],
        {"a": [1.5, True, "é"]},
        ["e", 2**64 - 1, 1e300],
        [None, {"ok": None, "at": (1.5, [0.25])}],  # null, once a walk found no NaN
        [None, Color.LEVEL, Size.BIG],
    ]
    for value in common:
        assert jsoncodec.compact(value) == packets._stdlib_dumps(value)
    routed: list[Any] = [
        [1e-5],
        [2**64],
        ["\ud800"],
        {1: 2},
        [b"x"],
        [Tag],
        [math.nan],
        [None, {"a": (1, [math.inf])}],
        [None, NanEnum.X],
    ]
    for value in routed:
        assert jsoncodec.compact(value) is None


def test_an_orjson_that_writes_otherwise_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """A version of orjson that writes a probe value unlike the stdlib is left unused."""
    real = importlib.import_module("orjson")
    fake = types.ModuleType("orjson")
    fake.__dict__.update(real.__dict__)

    def dumps(value: Any, option: int = 0) -> bytes:  # 1e16 as "1e16", as msgspec writes it
        return real.dumps(value, option=option).replace(b"e+", b"e")

    fake.dumps = dumps  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "orjson", fake)
    try:
        importlib.reload(jsoncodec)
        assert not jsoncodec.COMPILED
        assert dumps([1e16]) == b"[1e16]"
        assert packets.dumps([1e16]) == "[1e+16]"
    finally:
        monkeypatch.undo()
        importlib.reload(jsoncodec)
    assert jsoncodec.COMPILED


# -- the differential properties: compiled against the reference ---------------------

floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.sampled_from([1e16, 1e-5, 9.999e-5, -1e-7, 1e21, 5e-324, math.nan, math.inf]),
)
big_ints = st.integers(min_value=-(2**70), max_value=2**70)
values = st.recursive(
    st.one_of(json_values(with_binary=False), floats, big_ints, st.none()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=16,
)


@PROPERTIES
@given(values)
def test_compiled_dumps_is_the_reference(value: Any) -> None:
    assert outcome(dumps, value) == outcome(reference_dumps, value)


@PROPERTIES
@given(values)
def test_compiled_loads_reads_the_reference_texts(value: Any) -> None:
    try:
        text = reference_dumps(value)
    except EncodeError:
        return
    assert outcome(lambda t: jsoncodec.loads(t, reference_loads), text) == outcome(
        reference_loads, text
    )


json_alphabet = st.sampled_from([*'[]{},:"\\ -+.eE0123456789aflnrstu', "\ud800", "é"])


@PROPERTIES
@given(st.one_of(st.text(json_alphabet, max_size=40), st.text(max_size=20)))
def test_compiled_loads_refuses_what_the_reference_refuses(text: str) -> None:
    assert outcome(lambda t: jsoncodec.loads(t, reference_loads), text) == outcome(
        reference_loads, text
    )
