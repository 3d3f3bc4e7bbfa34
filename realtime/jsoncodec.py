"""Compiled JSON on the hot path: orjson where installed, the stdlib's bytes and refusals kept.

Encoding and decoding JSON is a large part of the CPU each message costs, and
orjson does it in a tenth of the instructions of the stdlib ``json`` module.
It is an optional dependency (``pip install realtime[fast]``): it has no wheel
for some platforms CPython runs on. Without it every function here does what
the stdlib does; with it, the results are the same, because orjson's answer
is used only where it is known to equal the stdlib's:

* encoding: orjson writes NaN and Infinity as ``null``, so output with
  ``null`` is used only once a walk of the data has found neither; it writes
  floats below 1e-4 in another form (``1e-7``, ``0.00001`` where Python
  writes ``1e-07``, ``1e-05``), so output with such a number is left to the
  stdlib. Everything orjson refuses (integers beyond 64 bits, lone
  surrogates, non-string keys, subclasses of built-in types, unknown types,
  cycles) is left to the stdlib too, which answers as it always did.
* decoding: orjson reads integers beyond 64 bits as floats, so text with a
  run of 19 or more digits is left to the stdlib (found by a bytes
  translation and a substring search: a regular expression costs more than
  orjson's parse). Anything orjson refuses (lone surrogate escapes,
  out-of-range numbers, bad syntax) is left to the stdlib, which accepts or
  refuses it with its own message.

One difference cannot be routed away: orjson writes ``uuid.UUID`` (as its
string) and ``enum.Enum`` members (as their value) where the stdlib raises
``TypeError``. The stdlib path here writes them the same way, so a server
accepts the same data whether orjson is installed or not.

Callers use these functions through the module (``jsoncodec.compact(...)``),
never imported by name, so that reloading the module switches the codec.
"""

from __future__ import annotations

import enum
import json
import re
import uuid
from collections.abc import Callable
from math import isfinite
from typing import Any

try:
    import orjson
except ImportError:  # no wheel for this platform: the stdlib does everything
    orjson = None  # type: ignore[assignment]

#: True when orjson is installed and used.
COMPILED = orjson is not None

SEPARATORS = (",", ":")


def _default(value: Any) -> Any:
    """What orjson writes for the two types it takes and the stdlib refuses."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


#: JavaScript's ``JSON.stringify`` form: compact, non-ASCII kept, no NaN/Infinity.
stdlib_encode = json.JSONEncoder(
    separators=SEPARATORS, ensure_ascii=False, allow_nan=False, default=_default
).encode

# A float orjson writes differently from Python's repr: below 1e-4 in magnitude.
# Only searched for when a cheap substring test has hinted at one.
_SMALL_FLOAT = re.compile(r"(?:^|[\[,:])-?(?:\d(?:\.\d+)?e-|0\.0000)")
# An integer orjson would read as a float has at least 19 digits: translated by
# _DIGITS_TO_ZERO (digits to "0", anything else to " "), its text holds _LONG_RUN.
_DIGITS_TO_ZERO = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_RUN = b"0" * 19
# What the NaN walk skips at once: the types of JSON's other leaves.
_SCALARS = frozenset({str, int, bool, type(None)})

# Values whose text orjson must write exactly as the stdlib does; a version that
# writes one differently is not used (the property tests pin the rest).
_PROBES: list[Any] = [
    [1e16, 1e22, 1.7976931348623157e308, 123456789012345.6, 0.0001, 0.1, -0.0, 1.0, 5e-324],
    [2**63, 2**64 - 1, -(2**63), True, False, 'é\x00\x1f\x7f\u2028"\\/', {"b": 1, "a": []}],
]
if orjson is not None and any(orjson.dumps(v).decode() != stdlib_encode(v) for v in _PROBES):
    orjson = None  # type: ignore[assignment]
    COMPILED = False

if orjson is not None:
    _dumps = orjson.dumps
    _loads = orjson.loads
    _DecodeError = orjson.JSONDecodeError
    # Subclasses, datetimes and dataclasses go to the stdlib, which refuses or
    # writes them as it always did (no ``default`` here: orjson raises TypeError).
    _OPTIONS = (
        orjson.OPT_PASSTHROUGH_SUBCLASS
        | orjson.OPT_PASSTHROUGH_DATETIME
        | orjson.OPT_PASSTHROUGH_DATACLASS
    )

    def compact(data: Any) -> str | None:
        """``data`` as :data:`stdlib_encode` writes it, or ``None`` where only it can say.

        ``None`` also when ``data`` holds something orjson cannot write at all
        (bytes, for example): callers that look for binary data only walk it then.
        """
        try:
            text = _dumps(data, option=_OPTIONS).decode()
        except TypeError:  # orjson.JSONEncodeError is one
            return None
        if ("e-" in text or "0.0000" in text) and _SMALL_FLOAT.search(text):
            return None
        if "null" in text and not _finite(data):
            return None  # the stdlib refuses NaN and Infinity
        return text

    def _finite(data: Any) -> bool:
        """False if ``data`` holds NaN or an infinity (orjson wrote ``null`` for them).

        Only data orjson has written comes here, so no subclasses of built-in
        types (orjson passed them to the stdlib) but enum members, written as
        their value.
        """
        stack = [data]
        pop, extend = stack.pop, stack.extend
        while stack:
            item = pop()
            kind = type(item)
            if kind in _SCALARS:
                continue
            if kind is float:
                if not isfinite(item):
                    return False
            elif kind is list or kind is tuple:
                extend(item)
            elif kind is dict:
                extend(item.values())
            elif isinstance(item, enum.Enum):
                stack.append(item.value)
        return True

    def loads(text: str, fallback: Callable[[str], Any]) -> Any:
        """``fallback(text)``'s value, computed by orjson where it gives the same."""
        try:
            raw = text.encode()
        except UnicodeEncodeError:  # a lone surrogate: orjson refuses it
            return fallback(text)
        if raw.translate(_DIGITS_TO_ZERO).find(_LONG_RUN) < 0:
            try:
                return _loads(raw)
            except _DecodeError:
                pass
        return fallback(text)

    def loads_bytes(raw: bytes, fallback: Callable[[bytes], Any]) -> Any:
        """:func:`loads` for bytes (orjson reads UTF-8 only; the fallback, any)."""
        if raw.translate(_DIGITS_TO_ZERO).find(_LONG_RUN) < 0:
            try:
                return _loads(raw)
            except _DecodeError:
                pass
        return fallback(raw)

else:

    def compact(data: Any) -> str | None:
        """Always ``None``: without orjson, :data:`stdlib_encode` writes everything."""
        return None

    def loads(text: str, fallback: Callable[[str], Any]) -> Any:
        """``fallback(text)``."""
        return fallback(text)

    def loads_bytes(raw: bytes, fallback: Callable[[bytes], Any]) -> Any:
        """``fallback(raw)``."""
        return fallback(raw)


def dumps_ascii(data: Any) -> str:
    """``json.dumps(data, separators=(",", ":"))``: compact, non-ASCII escaped."""
    text = compact(data)
    if text is not None and text.isascii():
        return text
    return json.dumps(data, separators=SEPARATORS, default=_default)
