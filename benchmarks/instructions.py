"""Server instructions per message, counted by callgrind: before/after without the noise.

    .venv/bin/python -m benchmarks.instructions --base 146ca36          # every scenario
    .venv/bin/python -m benchmarks.instructions --base main --scenarios echo-50x1 --top 25
    .venv/bin/python -m benchmarks.instructions --base HEAD \
        --now-env 'BENCH_OPTIONS={"connection_state_recovery": true}'   # a setting's cost

Wall-clock throughput on a shared machine moves by tens of percent between
runs; the number of instructions the server executes for a fixed amount of
work does not. Each run starts the ``realtime`` target under ``valgrind
--tool=callgrind`` with instrumentation off, drives it with
``loader/count.js`` (connect, a warm-up of a fixed count, then a measured
part of a fixed count), switches instrumentation on only for the measured
part (``callgrind_control -i on`` / ``-d``, each once the server has gone
idle), and divides the instructions counted by the messages (deliveries,
connections) of that part. ``--base REF`` runs realtime as of git ``REF``
the same way, with the same driver and the same Python, and prints
now/before per scenario. ``--top N`` adds, per scenario, the C functions
whose own instructions per message changed most (``callgrind_annotate``).

Needs ``valgrind`` (Debian package) and Node.js with ``npm ci`` in benchmarks/.
Everything talks to 127.0.0.1; every phase has a count and a timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from benchmarks.run import (
    HERE,
    RESULTS,
    TARGETS,
    UVICORN_OPTIONS,
    Target,
    base_target,
    free_port,
    machine_info,
    wait_port,
)

COUNT_LOADER = HERE / "loader" / "count.js"
#: The app every target runs (with BENCH_QUIET=1: no timer firing in a run).
COUNTED_APP = "realtime_app:app"
#: ``--raw``: the floor, a raw Starlette WebSocket echo/broadcast (plain text frames).
RAW_APP = "raw_starlette:app"
#: Nor uvicorn's own WebSocket keep-alive pings (every 20 s per connection by
#: default): work that grows with a run's duration, not with its messages.
QUIET_UVICORN = ["--ws-ping-interval", "3600", "--ws-ping-timeout", "3600"]
DUMPS = RESULTS / "callgrind.tmp"  # callgrind files of the last run (not committed)
IDLE_SAMPLES = 3  # server CPU unchanged over this many 0.25 s samples = idle
IDLE_TIMEOUT_S = 60.0
START_TIMEOUT_S = 180.0  # uvicorn's imports under valgrind are slow
PHASE_TIMEOUT_S = 600  # one loader phase (warm-up, measured part, teardown)
CALLGRIND = [
    "valgrind",
    "--tool=callgrind",
    "--instr-atstart=no",  # nothing counted until the measured part
    "--dump-instr=no",
    "--compress-strings=no",
]


@dataclass
class Scenario:
    name: str
    title: str
    loader: dict[str, Any]  # count.js config: scenario, conns, inflight, ack, concurrency
    warmup: int  # units before the measured part
    measure: int  # units counted


def scenarios(scale: float) -> list[Scenario]:
    """Fixed workloads; ``scale`` multiplies the counts (not the connections)."""

    def n(units: int, step: int = 1) -> int:
        return max(step, round(units * scale / step) * step)

    echo = {"scenario": "echo"}
    return [
        Scenario("echo-50x1", "echo, 50 x 1 in flight", {**echo, "conns": 50, "inflight": 1},
                 n(500), n(3000)),
        Scenario("echo-50x10", "echo, 50 x 10 in flight", {**echo, "conns": 50, "inflight": 10},
                 n(1000), n(4000)),
        Scenario("ack-50x1", "acked echo, 50 x 1",
                 {**echo, "conns": 50, "inflight": 1, "ack": True}, n(500), n(3000)),
        Scenario("ack-50x10", "acked echo, 50 x 10",
                 {**echo, "conns": 50, "inflight": 10, "ack": True}, n(1000), n(4000)),
        Scenario("fanout-200", "broadcast to 200 (per delivery)",
                 {"scenario": "fanout", "conns": 200}, n(1000, 200), n(6000, 200)),
        Scenario("fanout-1000", "broadcast to 1000 (per delivery)",
                 {"scenario": "fanout", "conns": 1000}, n(3000, 1000), n(15000, 1000)),
        Scenario("polling-50", "echo over long-polling, 50 clients",
                 {"scenario": "polling", "conns": 50}, n(300), n(1500)),
        Scenario("connect", "WebSocket connect + CONNECT + close (per connection)",
                 {"scenario": "connect", "concurrency": 20}, n(40), n(300)),
    ]  # fmt: skip


# ---------------------------------------------------------------- one run
def cpu_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def wait_idle(pid: int) -> None:
    """Until the server has used no CPU for a while: what a phase started is done."""
    deadline = time.monotonic() + IDLE_TIMEOUT_S
    last, same = cpu_ticks(pid), 0
    while same < IDLE_SAMPLES and time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_ticks(pid)
        same = same + 1 if now == last else 0
        last = now
    if same < IDLE_SAMPLES:
        raise RuntimeError(f"server still busy after {IDLE_TIMEOUT_S:.0f} s")


def callgrind_control(pid: int, *args: str) -> None:
    out = subprocess.run(
        ["callgrind_control", *args, str(pid)], capture_output=True, text=True, timeout=60
    )
    if out.returncode != 0 or "OK" not in out.stdout:
        raise RuntimeError(f"callgrind_control {' '.join(args)}: {out.stdout}{out.stderr}")


def dump_total(path: Path) -> int:
    """Instructions in one callgrind dump (its ``summary:`` line)."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no summary in {path}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def read_json_line(stream: IO[str]) -> dict[str, Any]:
    """The loader's next JSON line (it prints nothing else on stdout)."""
    for _ in range(1000):  # bounded; a well-behaved loader needs one read
        line = stream.readline()
        if not line:
            raise RuntimeError("loader exited")
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    raise RuntimeError("loader printed no JSON")


#: ``--calls``: the server under cProfile, switched on and off by SIGUSR1 / SIGUSR2
#: (uvloop runs Python signal handlers at once, even while idle). Inline code, so
#: that nothing of this tree shadows the target's imports.
CPROFILE_WRAPPER = """
import cProfile, runpy, signal, sys
out, sys.argv = sys.argv[1], ["uvicorn", *sys.argv[2:]]
prof = cProfile.Profile()
def stop(*_):
    prof.disable()
    prof.dump_stats(out)
signal.signal(signal.SIGUSR1, lambda *_: prof.enable())
signal.signal(signal.SIGUSR2, stop)
runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)
"""


class Probe:
    """Counts what the server does between two barriers: callgrind's instructions."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.dump = out.with_name(out.name + ".1")
        out.unlink(missing_ok=True)
        self.dump.unlink(missing_ok=True)

    def command(self, uvicorn_args: list[str]) -> list[str]:
        # sys.executable: the venv's python, not resolved (a resolved path loses the venv)
        python = [sys.executable, "-m", "uvicorn", *uvicorn_args]
        return [*CALLGRIND, f"--callgrind-out-file={self.out}", *python]

    def start(self, pid: int) -> None:
        callgrind_control(pid, "-i", "on")

    def stop(self, pid: int) -> None:
        callgrind_control(pid, "-d")
        callgrind_control(pid, "-i", "off")

    def result(self) -> dict[str, Any]:
        return {"instructions": dump_total(self.dump), "dump": str(self.dump)}


class CallsProbe(Probe):
    """Python function calls (cProfile) between the barriers: which functions run
    more often per message, deterministic where instructions only say "more bytecode"."""

    def __init__(self, out: Path) -> None:
        super().__init__(out)
        self.dump = out.with_suffix(".prof")
        self.dump.unlink(missing_ok=True)

    def command(self, uvicorn_args: list[str]) -> list[str]:
        return [sys.executable, "-c", CPROFILE_WRAPPER, str(self.dump), *uvicorn_args]

    def start(self, pid: int) -> None:
        os.kill(pid, signal.SIGUSR1)

    def stop(self, pid: int) -> None:
        os.kill(pid, signal.SIGUSR2)
        deadline = time.monotonic() + IDLE_TIMEOUT_S
        while not self.dump.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # dump_stats writes in one go; let it finish

    def result(self) -> dict[str, Any]:
        calls = sum(nc for _, nc, _, _, _ in load_stats(self.dump).values())
        return {"instructions": calls, "dump": str(self.dump)}


class CpuProbe(Probe):
    """The server's CPU time, user + system, between the barriers (``/proc``), in µs.

    Not deterministic like instructions, but it counts what they miss: the
    system calls (reads, writes, pausing and resuming a socket) per message.
    Run with ``--scale`` large enough for the 10 ms tick to vanish.
    """

    def command(self, uvicorn_args: list[str]) -> list[str]:
        return [sys.executable, "-m", "uvicorn", *uvicorn_args]

    def start(self, pid: int) -> None:
        self.ticks = cpu_ticks(pid) or 0

    def stop(self, pid: int) -> None:
        self.used = (cpu_ticks(pid) or 0) - self.ticks

    def result(self) -> dict[str, Any]:
        micros = self.used * 1_000_000 // os.sysconf("SC_CLK_TCK")
        return {"instructions": micros, "dump": str(self.dump)}


def run_one(
    t: Target,
    s: Scenario,
    probe: Probe,
    log: IO[bytes],
    extra_env: dict[str, str],
    ws: str | None = None,
    raw: bool = False,
) -> dict[str, Any]:
    """One server under ``probe``, one loader; the probe's count for the measured part."""
    port = free_port()
    # realtime from the target's tree, the app from this one (see COUNTED_APP).
    path = os.pathsep.join([str(t.root), str(HERE / "targets")])
    env = dict(os.environ, PYTHONPATH=path, PYTHONHASHSEED="0", BENCH_QUIET="1", **extra_env)
    env.pop("BENCH_REDIS_URL", None)
    options = list(UVICORN_OPTIONS)
    if ws is not None:
        options[options.index("--ws") + 1] = ws
    proc = subprocess.Popen(
        probe.command(
            [RAW_APP if raw else COUNTED_APP, *options, *QUIET_UVICORN, "--port", str(port)]
        ),
        cwd=t.root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    loader: subprocess.Popen[str] | None = None
    try:
        wait_port(port, proc, START_TIMEOUT_S)
        config = {
            **s.loader,
            "host": "127.0.0.1",
            "port": port,
            "proto": "raw" if raw else "sio",
            "warmup": s.warmup,
            "measure": s.measure,
            "phase_timeout_s": PHASE_TIMEOUT_S,
            "deadline_s": 4 * PHASE_TIMEOUT_S,
        }
        loader = subprocess.Popen(
            ["node", str(COUNT_LOADER), json.dumps(config)],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        assert loader.stdin is not None
        assert loader.stdout is not None
        for name in ("start", "stop"):
            msg = read_json_line(loader.stdout)
            if msg.get("barrier") != name:
                raise RuntimeError(f"loader: {msg.get('error', msg)}")
            wait_idle(proc.pid)
            probe.start(proc.pid) if name == "start" else probe.stop(proc.pid)
            loader.stdin.write("go\n")
            loader.stdin.flush()
        result = read_json_line(loader.stdout)
        if not result.get("ok"):
            raise RuntimeError(f"loader: {result.get('error')}")
        loader.wait(timeout=PHASE_TIMEOUT_S)
    finally:
        if loader is not None and loader.poll() is None:
            loader.kill()
            loader.wait(10)
        stop(proc)
    counted = probe.result()
    units = int(result["units"])
    return {
        **counted,
        "units": units,
        "unit": result["unit"],
        "per_unit": counted["instructions"] / units,
        "measured_s": result["measured_s"],
    }


# -------------------------------------------------------------- annotate
ANNOTATE_LINE = re.compile(r"^\s*([\d,]+)\s+\([\s\d.]+%\)\s+(.+?)(?:\s+\[(.+)\])?$")


def self_costs(dump: Path) -> dict[str, int]:
    """Instructions per function (own, not inclusive) in one dump."""
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--inclusive=no", str(dump)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    costs: dict[str, int] = {}
    started = False
    for line in out.splitlines():
        if "file:function" in line:
            started = True
            continue
        m = ANNOTATE_LINE.match(line) if started else None
        if m and "PROGRAM TOTALS" not in line:
            where = m.group(2)
            obj = Path(m.group(3)).name if m.group(3) else ""
            fn = where.rsplit(":", 1)[-1]
            key = f"{fn} [{obj}]" if obj else fn
            costs[key] = costs.get(key, 0) + int(m.group(1).replace(",", ""))
    return costs


StatsKey = tuple[str, int, str]
StatsValue = tuple[int, int, float, float, dict[StatsKey, Any]]


def load_stats(path: Path) -> dict[StatsKey, StatsValue]:
    """cProfile's table: (file, line, function) -> (primitive calls, calls, ...)."""
    stats: dict[StatsKey, StatsValue] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    return stats


def call_counts(dump: Path, root: Path) -> dict[str, int]:
    """Calls per function in one cProfile dump, named the same whichever tree ran."""
    counts: dict[str, int] = {}
    for (file, _, func), (_, calls, _, _, _) in load_stats(dump).items():
        if "site-packages" + os.sep in file:
            file = file.split("site-packages" + os.sep, 1)[1]
        elif file.startswith(str(root) + os.sep):
            file = file[len(str(root)) + 1 :]
        elif file != "~":
            file = Path(file).name
        key = f"{file}:{func}" if file != "~" else re.sub(r" at 0x[0-9a-f]+", "", func)
        counts[key] = counts.get(key, 0) + calls
    return counts


def costs_of(run: dict[str, Any]) -> dict[str, int]:
    dump = Path(run["dump"])
    return call_counts(dump, Path(run["root"])) if dump.suffix == ".prof" else self_costs(dump)


def top_changes(
    before: dict[str, Any], now: dict[str, Any], count: int
) -> list[tuple[str, float, float]]:
    """Functions whose own instructions (or calls) per unit moved most, (name, before, now)."""
    a = {k: v / before["units"] for k, v in costs_of(before).items()}
    b = {k: v / now["units"] for k, v in costs_of(now).items()}
    keys = sorted(set(a) | set(b), key=lambda k: -abs(b.get(k, 0.0) - a.get(k, 0.0)))
    return [(k, a.get(k, 0.0), b.get(k, 0.0)) for k in keys[:count]]


# ------------------------------------------------------------------ main
def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    per = [r["per_unit"] for r in runs]
    med = statistics.median(per)
    return {
        "per_unit": med,
        "repeats": [round(p) for p in per],
        "spread_pct": 100 * (max(per) - min(per)) / med if len(per) > 1 else None,
        "unit": runs[0]["unit"],
        "units": runs[0]["units"],
    }


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def table(rows: list[dict[str, Any]], base_name: str | None, what: str) -> str:
    """Markdown: per scenario, count per unit before / now, their ratio, repeat spread."""
    short = "instr" if what == "instructions" else what
    digits = 0 if what == "instructions" else 1
    head = ["scenario", "unit", "units"]
    if base_name:
        head.append(f"{short}/unit {base_name}")
    head.append(f"{short}/unit now")
    if base_name:
        head.append("now/before")
    head.append("spread")
    body: list[list[str]] = []
    for r in rows:
        now, before = r.get("now"), r.get("before")
        any_ = now or before or {}
        cells = [r["scenario"], str(any_.get("unit", "-")), str(any_.get("units", "-"))]
        if base_name:
            cells.append(fmt(before and before["per_unit"], digits))
        cells.append(fmt(now and now["per_unit"], digits))
        if base_name:
            ratio = now["per_unit"] / before["per_unit"] if now and before else None
            cells.append(fmt(ratio, 3))
        spreads = [x["spread_pct"] for x in (before, now) if x and x["spread_pct"] is not None]
        cells.append(f"{max(spreads):.1f}%" if spreads else "-")
        body.append(cells)
    widths = [max(len(c) for c in col) for col in zip(head, *body, strict=True)]

    def line(cells: list[str]) -> str:
        padded = (
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "|".join(
        "-" * (w + 2) if i < 2 else "-" * (w + 1) + ":" for i, w in enumerate(widths)
    )
    return "\n".join([line(head), sep + "|", *(line(c) for c in body)])


def raw_table(rows: list[dict[str, Any]], what: str) -> str:
    """Markdown: per scenario, the raw floor's count per unit over each realtime run's."""
    lines = [f"| scenario | raw {what}/unit | raw/now | raw/before |", "|---|--:|--:|--:|"]
    for r in rows:
        raw = r.get("raw")
        if not raw:
            continue
        cells = [r["scenario"], fmt(raw["per_unit"])]
        for role in ("now", "before"):
            other = r.get(role)
            cells.append(fmt(raw["per_unit"] / other["per_unit"], 3) if other else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--base", metavar="GIT_REF", help="also count realtime as of GIT_REF")
    p.add_argument("--scenarios", help="comma-separated subset of the scenario names")
    p.add_argument("--repeats", type=int, default=1, help="runs per scenario and target")
    p.add_argument("--scale", type=float, default=1.0, help="multiply warm-up / measured counts")
    p.add_argument("--top", type=int, default=0, help="with --base: N functions that moved most")
    p.add_argument(
        "--calls",
        action="store_true",
        help="count Python function calls (cProfile) instead of instructions",
    )
    p.add_argument(
        "--cpu",
        action="store_true",
        help="server CPU time (user + system, µs) instead of instructions; use --scale 10+",
    )
    p.add_argument(
        "--now-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of the 'now' server only: with --base HEAD and "
        """'BENCH_OPTIONS={"async_handlers": false}', a setting against the default""",
    )
    p.add_argument(
        "--now-ws",
        metavar="WS",
        help="uvicorn --ws of the 'now' server only (e.g. wsproto, or a protocol class)",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="also count the raw Starlette WebSocket floor (echo, fanout, connect)",
    )
    p.add_argument("--out", default=str(RESULTS / "instructions.json"), help="JSON output path")
    args = p.parse_args(argv)
    now_env = dict(item.split("=", 1) for item in args.now_env)

    what = "calls" if args.calls else "cpu_us" if args.cpu else "instructions"
    needed = ("node",) if args.calls or args.cpu else ("valgrind", "callgrind_control", "node")
    for tool in needed:
        if shutil.which(tool) is None:
            print(f"{tool} not found (valgrind: `apt-get install valgrind`)")
            return 2
    if not (HERE / "node_modules" / "ws").is_dir():
        print("Run `npm ci` in benchmarks/ first (the loader needs the `ws` package).")
        return 2

    scens = scenarios(args.scale)
    if args.scenarios:
        wanted = args.scenarios.split(",")
        unknown = set(wanted) - {s.name for s in scens}
        if unknown:
            p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
        scens = [s for s in scens if s.name in wanted]
    now_t = TARGETS[0]
    targets: list[tuple[str, Target]] = [("now", now_t)]
    base_name = None
    if args.base:
        base = base_target(args.base)
        base_name = args.base
        targets.insert(0, ("before", base))
    if args.raw:
        targets.append(("raw", now_t))

    DUMPS.mkdir(parents=True, exist_ok=True)
    info = machine_info(shutil.which("node"))
    print(f"python {info['python']}, realtime {info['realtime_commit']}, base {args.base or '-'}")
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    with (RESULTS / "instructions.log.tmp").open("wb") as log:
        for s in scens:
            row: dict[str, Any] = {"scenario": s.name, "title": s.title}
            raw: dict[str, list[dict[str, Any]]] = {}
            for rep in range(args.repeats):
                for role, t in targets:  # interleaved, like benchmarks.run
                    out = DUMPS / f"{s.name}.{role}.{rep}.out"
                    probe = (
                        CallsProbe(out) if args.calls else CpuProbe(out) if args.cpu else Probe(out)
                    )
                    try:
                        now = role == "now"
                        ws = args.now_ws if now else None
                        floor = role == "raw"
                        if floor and (s.loader["scenario"] == "polling" or s.loader.get("ack")):
                            continue  # the raw floor has no long-polling, no acks
                        r = run_one(t, s, probe, log, now_env if now else {}, ws, floor)
                    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                        print(f"  {s.name:12} {role:6} #{rep + 1}: ERROR {e}", flush=True)
                        continue
                    r["root"] = str(t.root)
                    raw.setdefault(role, []).append(r)
                    print(
                        f"  {s.name:12} {role:6} #{rep + 1}: {r['instructions']:,} {what} / "
                        f"{r['units']} x {r['unit']} = {r['per_unit']:,.1f} "
                        f"({r['measured_s']:.1f} s)",
                        flush=True,
                    )
            for role, rs in raw.items():
                row[role] = summarize(rs)
                # (local paths of the dumps and trees stay out of the JSON)
                row[role + "_runs"] = [
                    {k: v for k, v in r.items() if k not in ("dump", "root")} for r in rs
                ]
            rows.append(row)
            if args.top and raw.get("before") and raw.get("now"):
                changes = top_changes(raw["before"][0], raw["now"][0], args.top)
                own = "calls" if args.calls else "own instructions"
                print(f"  {s.name}: {own} per {raw['now'][0]['unit']}, top changes")
                for name, a, b in changes:
                    print(f"    {a:12,.1f} -> {b:12,.1f}  ({b - a:+12,.1f})  {name}")

    text = table(rows, base_name, what)
    if args.raw:
        text += "\n\n" + raw_table(rows, what)
    print()
    print(text)
    print(f"\nelapsed {time.monotonic() - started:.0f}s")
    doc = {
        "base": args.base,
        "machine": info,
        "uvicorn_options": [*UVICORN_OPTIONS, *QUIET_UVICORN],
        "counted": what,
        "valgrind": None if args.calls or args.cpu else CALLGRIND,
        "scenarios": {s.name: {**s.loader, "warmup": s.warmup, "measure": s.measure}
                      for s in scens},
        "results": rows,
    }  # fmt: skip
    out = Path(args.out)
    out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    out.with_suffix(".md").write_text(text + "\n")
    print(f"wrote {out} and {out.with_suffix('.md').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
