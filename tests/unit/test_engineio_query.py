"""``parse_query`` gives what ``dict(parse_qsl(...))`` gives, for any query string."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from realtime.engineio.server import parse_query

# Characters that matter to a query parser, and a few that don't.
_PIECES = st.sampled_from(
    ["&", "=", "%", "+", "%20", "%zz", "%e2%82%ac", "sid", "EIO", "4", "a", "é", ""]
)


def _reference(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("latin-1")))


@given(st.lists(_PIECES, max_size=12).map("".join))
def test_same_as_parse_qsl(text: str) -> None:
    raw = text.encode("utf-8")
    assert parse_query(raw) == _reference(raw)
    assert list(parse_query(raw)) == list(_reference(raw))  # the same order


@given(st.binary(max_size=40))
def test_same_as_parse_qsl_on_any_bytes(raw: bytes) -> None:
    assert parse_query(raw) == _reference(raw)


def test_engineio_queries() -> None:
    for raw in (
        b"EIO=4&transport=polling",
        b"EIO=4&transport=polling&sid=abc-_x&t=PlK3x1a",
        b"EIO=4&transport=websocket&sid=",
        b"EIO=4&&transport=polling&flag&=x&EIO=3",
        b"",
        b"sid=a%2Bb+c",
    ):
        assert parse_query(raw) == _reference(raw), raw
