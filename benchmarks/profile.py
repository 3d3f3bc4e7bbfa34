"""Profile one target in one scenario: server CPU per message, and where it goes.

    .venv/bin/python -m benchmarks.profile realtime echo-50x1            # CPU µs per message
    .venv/bin/python -m benchmarks.profile realtime echo-50x1 --py-spy   # + top functions
    .venv/bin/python -m benchmarks.profile realtime echo-50x1 --py-spy --self   # + self time

Server CPU time per message is far steadier than throughput on a shared
machine, so it is what to compare when changing the server. ``--py-spy`` needs
``pip install py-spy``; it samples the server process while the loader runs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.run import BASE, LOADER, SERVER_CPU, TARGETS, base_target, free_port, scenarios

WS = "websockets-sansio"  # the harness's default uvicorn --ws
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

LOADER_CPU = 1


def samples(raw: Path) -> Iterator[tuple[list[str], int]]:
    """Each stack (outermost frame first, line numbers dropped) and its count, from py-spy's
    ``--format raw``."""
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack:
            yield [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")], int(n)


def top_functions(raw: Path, count: int) -> list[tuple[float, str]]:
    """Inclusive share of samples per function."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, n in samples(raw):
        total += n
        for frame in set(frames):
            inclusive[frame] += n
    return [(100 * n / max(total, 1), f) for f, n in inclusive.most_common(count)]


#: Where a sample's innermost Python frame lies, by file path: the first match names it.
PACKAGES = (
    ("(realtime/", "realtime"),
    ("(benchmarks/", "benchmark app"),
    ("(uvicorn/", "uvicorn"),
    ("(websockets/", "websockets"),
    ("(wsproto/", "wsproto"),
    ("(h11/", "h11"),
    ("(anyio/", "anyio"),
    ("(starlette/", "starlette"),
    ("(asyncio/runners.py)", "event loop (uvloop, below Python)"),
    ("(asyncio/", "asyncio"),
)


def self_shares(raw: Path, count: int) -> tuple[list[tuple[float, str]], list[tuple[float, str]]]:
    """Self time (the innermost frame of each sample) per function and per package."""
    functions: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, n in samples(raw):
        total += n
        leaf = frames[-1]
        functions[leaf] += n
        where = next((name for part, name in PACKAGES if part in leaf), "other (stdlib)")
        packages[where] += n
    share = 100 / max(total, 1)
    return (
        [(share * n, f) for f, n in functions.most_common(count)],
        [(share * n, p) for p, n in packages.most_common()],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", choices=[t.name for t in TARGETS] + [BASE])
    parser.add_argument("scenario", choices=[s.name for s in scenarios(full=True)])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--py-spy", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--self", action="store_true", help="with --py-spy: self time per function and package"
    )
    parser.add_argument("--base", default="HEAD~1", help=f"git ref for the {BASE!r} target")
    args = parser.parse_args()

    if args.target == BASE:
        target = base_target(args.base)
    else:
        target = next(t for t in TARGETS if t.name == args.target)
    scenario = next(s for s in scenarios(full=True) if s.name == args.scenario)
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", str(SERVER_CPU), *target.command(port, shutil.which("node"), WS)],
        cwd=target.root,
        env={**os.environ, "PYTHONPATH": str(target.root)},
        stdout=subprocess.DEVNULL,
    )
    spy: subprocess.Popen[bytes] | None = None
    raw = Path(tempfile.mkstemp(suffix=".txt")[1])
    try:
        time.sleep(2.0)
        if args.py_spy:
            spy = subprocess.Popen(
                [PY_SPY, "record", "-p", str(server.pid), "-d", str(int(args.seconds) + 1),
                 "-r", "200", "-f", "raw", "-o", str(raw)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        config = {
            **scenario.loader,
            "duration_s": args.seconds,
            "host": "127.0.0.1",
            "port": port,
            "proto": target.proto,
            "server_pid": server.pid,
            "clk_tck": 100,
            "client": "fast",
            "deadline_s": 90,
        }
        out = subprocess.run(
            ["taskset", "-c", str(LOADER_CPU), "node", str(LOADER), json.dumps(config)],
            cwd=LOADER.parent.parent,
            capture_output=True,
            timeout=120,
            check=True,
        )
        result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    finally:
        if spy is not None:
            spy.wait(30)
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            # python-socketio's uvicorn can outlast the timeout on SIGTERM (a
            # long-poll left waiting): kill it rather than leave it running.
            server.kill()
            server.wait(10)
    if not result.get("ok"):
        sys.exit(f"loader failed: {result}")
    n = result.get("n") or 1
    cpu_s = (result.get("server_cpu") or 0.0) * result["measured_s"]
    print(
        f"{args.target} {args.scenario}: {result['throughput']:,.0f} {result['unit']}, "
        f"server CPU {100 * (result.get('server_cpu') or 0):.0f}%, "
        f"{1e6 * cpu_s / n:.1f} µs of server CPU per {'round' if 'rounds' in result else 'message'}"
    )
    if spy is not None and raw.stat().st_size:
        for share, frame in top_functions(raw, args.top):
            print(f"{share:5.1f}%  {frame}")
        if args.self:
            functions, packages = self_shares(raw, args.top)
            print("\nself time, by package of the innermost Python frame:")
            for share, name in packages:
                print(f"{share:5.1f}%  {name}")
            print("\nself time, by function:")
            for share, frame in functions:
                print(f"{share:5.1f}%  {frame}")
    raw.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
