"""JSON codecs on Socket.IO payloads: instructions per call, counted by callgrind.

    .venv/bin/python -m benchmarks.codec                 # stdlib, orjson, msgspec, realtime's codec
    .venv/bin/python -m benchmarks.codec --base main     # + whole packets, this tree against main

How ``realtime/jsoncodec.py`` was chosen. Each codec runs in its own process
under ``valgrind --tool=callgrind``, counting only inside ``functools.reduce``
(the loop that calls the codec a fixed number of times per payload) and
dumping after each loop, so imports and set-up are not counted. Codecs: the
stdlib as ``realtime`` used it before (``json.dumps`` with JavaScript's
separators, ``json.loads`` refusing NaN and out-of-range numbers), plain
orjson and plain msgspec (either skipped if not installed), ``realtime`` (the
codec as the server calls it, guards included) and, with ``--base``, the
whole Socket.IO packet encode (``encode(Packet)``, which also looks for binary
data) and decode (``Decoder.feed``) of this tree and of ``--base``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.run import ROOT, base_target

CALLGRIND = [
    "valgrind",
    "--tool=callgrind",
    "--collect-atstart=no",
    "--toggle-collect=functools_reduce",  # count only the loops below
    "--dump-after=functools_reduce",  # one dump per payload
]


def payloads() -> dict[str, Any]:
    rnd = random.Random(0)
    user = {"name": "alice", "id": 42, "roles": ["admin", "mod"], "active": True}
    meta = {"client": {"v": "4.8.1", "transport": "websocket"}, "geo": {"lat": 48.8566}}
    chat = {"id": "c0ffee00-1234-4567-89ab-0123456789ab", "user": user, "ts": 1712345678901}
    text = "Привет, мир! 你好 世界 こんにちは 😀🎉 Ünïcödé ñ — “quotes” … "
    rows = [{"id": i, "name": f"user{i}", "score": i * 1.5, "ok": i % 2 == 0} for i in range(100)]
    return {
        "small event": ["echo", 12345, "x" * 32],
        "nested object": ["chat", {**chat, "text": "hello, how are you?", "meta": meta}],
        "unicode text": ["msg", text * 4],
        "1000 integers": ["data", list(range(1000))],
        "500 floats": ["pts", [rnd.random() * 1000 for _ in range(500)]],
        "100 objects": ["rows", rows],
        "ack with null": [None, {"ok": True, "n": 3}],
    }


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


def codec(name: str) -> tuple[Any, Any] | None:
    """(encode, decode) of one codec, or None if it is not installed."""
    if name == "stdlib":
        return (
            lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False, allow_nan=False),
            lambda t: json.loads(t, parse_constant=_refuse_constant, parse_float=_parse_float),
        )
    if name == "orjson":
        try:
            import orjson
        except ImportError:
            return None
        return lambda v: orjson.dumps(v).decode(), orjson.loads
    if name == "msgspec":
        try:
            import msgspec
        except ImportError:
            return None
        encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
        return lambda v: encoder.encode(v).decode(), decoder.decode
    if name == "realtime":
        from realtime import jsoncodec
        from realtime.socketio import packets

        return packets.dumps, lambda t: jsoncodec.loads(t, packets._stdlib_loads)
    raise ValueError(name)


def child(name: str, op: str) -> None:
    """Run in the counted process: each payload's loop once (one dump each)."""
    from realtime.socketio.packets import Decoder, Packet, PacketType, encode

    for key, value in payloads().items():
        event = not key.startswith("ack")
        packet = Packet(
            PacketType.EVENT if event else PacketType.ACK, data=value, id=None if event else 7
        )
        [frame] = encode(packet)
        if name == "packet":
            fn, arg = (encode, packet) if op == "encode" else (Decoder().feed, frame)
        else:
            pair = codec(name)
            assert pair is not None
            fn, arg = (pair[0], value) if op == "encode" else (pair[1], frame[1 if event else 2 :])
        count = 100 if len(frame) > 2000 else 1000
        fn(arg)  # warm: first-call caches are not what a server pays per message
        functools.reduce(lambda _, __: fn(arg), range(count), None)


def count(root: Path, name: str, op: str, out: Path) -> list[float]:
    """Instructions per call, per payload, for one codec and direction."""
    dump = out / f"{name}-{op}-{root.name}"
    # The script by path (not -m from ROOT), so that ``realtime`` comes from ``root``.
    env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{ROOT}", PYTHONHASHSEED="0")
    subprocess.run(
        [*CALLGRIND, f"--callgrind-out-file={dump}", sys.executable, __file__, "--child", name, op],
        cwd=root, env=env, check=True, capture_output=True, timeout=900,
    )  # fmt: skip
    per_call = []
    for i, frame_len in enumerate(frame_lengths(), 1):
        totals = re.search(r"^totals: (\d+)", Path(f"{dump}.{i}").read_text(), re.M)
        assert totals is not None
        per_call.append(int(totals.group(1)) / (100 if frame_len > 2000 else 1000))
    return per_call


def frame_lengths() -> list[int]:
    from realtime.socketio.packets import Packet, PacketType, encode

    out = []
    for key, value in payloads().items():
        ptype = PacketType.ACK if key.startswith("ack") else PacketType.EVENT
        [frame] = encode(Packet(ptype, data=value, id=7 if ptype is PacketType.ACK else None))
        out.append(len(frame))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.codec", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--base", metavar="GIT_REF", help="also whole packets, this tree and GIT_REF")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind not found (`apt-get install valgrind`)")
        return 2
    names = [n for n in ("stdlib", "orjson", "msgspec", "realtime") if codec(n) is not None]
    columns: list[tuple[str, Path, str, str]] = [
        (f"{n} {op}", ROOT, n, op) for op in ("encode", "decode") for n in names
    ]
    if args.base:
        base = base_target(args.base).root
        columns += [
            (f"packet {op} {label}", root, "packet", op)
            for op in ("encode", "decode")
            for label, root in ((args.base, base), ("now", ROOT))
        ]
    rows = list(payloads())
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for title, root, name, op in columns:
            results[title] = count(root, name, op, Path(tmp))
            print(f"  {title}: done", flush=True)
    head = ["payload", "chars", *results]
    print("\n| " + " | ".join(head) + " |")
    print("|---|" + "---:|" * (len(head) - 1))
    for i, (row, size) in enumerate(zip(rows, frame_lengths(), strict=True)):
        cells = [f"{results[t][i]:,.0f}" for t in results]
        print(f"| {row} | {size} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
