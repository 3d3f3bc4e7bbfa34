"""``python -m benchmarks.run --relay``: what serving any session on any node costs.

With the Redis adapter, a request for a session another node owns is tunnelled
over Redis pub/sub to the owner (realtime/engineio/relay.py), and a session
made over polling whose WebSocket upgrade reaches another node moves there.
This measures both behind a real nginx (benchmarks/balancer.py), with the same
client load on:

* ``one``: ONE realtime process (Redis adapter on: one node never relays, so
  the only difference with ``relay`` is where requests land);
* ``relay``: THREE processes with the Redis adapter, round robin, no
  affinity: about 2/3 of the requests land on a node other than their
  session's ("elsewhere");
* ``sticky``: the same three processes behind ``hash`` affinity (each client
  pinned to one node): nothing lands elsewhere; the cost of three processes.

Scenarios (1 echo in flight per client):

* ``polling-50``: Engine.IO long-polling echo (the harness's scenario); every
  request that lands elsewhere is tunnelled to the owner.
* ``upgrade-50x1``: a polling handshake, ``40``, and the WebSocket upgrade
  started at once, as socket.io-client does by default; a WebSocket that lands
  elsewhere takes the session with it (it moves), then echo over it.
* ``upgrade-late-50x1``: the upgrade starts only after ``40{..}`` came back over
  polling: the session has begun where it was made, so a WebSocket that lands
  elsewhere is relayed to it for its life.
* ``polling-5``, ``upgrade-late-5x1``: the same with 5 clients, a light load
  for one process.

Every node is pinned to the server CPU, so each setup has the same CPU
budget; nginx runs beside the loader on the other CPU; Redis is not ours and is
not pinned. Setups are interleaved per repeat (repeat i of every setup, then
i + 1), each with fresh processes and a Redis key of its own.

Per request (polling: each HTTP POST or GET; WebSocket: each echo round trip)
the servers' CPU time is their /proc CPU ticks over the window, summed over the
nodes, divided by the requests in the window. The extra CPU per request that
landed elsewhere is ``(us/request of relay - us/request of one) / share``,
with the share counted by the loader from nginx's ``X-Upstream``.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.balancer import BalancerError, nginx
from benchmarks.run import (
    LOADER_CPU,
    RESULTS,
    SERVER_CPU,
    TARGETS,
    fmt_num,
    free_port,
    machine_info,
    preexec,
    redis_process,
    redis_reachable,
    run_loader,
    run_server,
)
from realtime.engineio.config import EngineConfig

#: Warm-up and measurement window of one run (seconds): short, the machine is shared.
WARMUP_S = 0.5
WINDOW_S = 2.0
#: Runs per setup and scenario (the median is reported with the spread).
REPEATS = 5
#: One loader run's hard deadline (seconds); the harness adds its own margin.
LOADER_DEADLINE_S = 40
MAX_MSGS = 2_000_000


@dataclass(frozen=True)
class Setup:
    name: str
    nodes: int
    policy: str  # balancer policy (benchmarks.balancer.POLICIES)
    title: str


SETUPS = (
    Setup("one", 1, "round-robin", "1 process behind nginx: every request served where it lands"),
    Setup("relay", 3, "round-robin", "3 processes, round robin: ~2/3 land elsewhere"),
    Setup("sticky", 3, "sticky", "3 processes, nginx hash affinity: nothing lands elsewhere"),
)


@dataclass(frozen=True)
class RelayScenario:
    name: str
    unit: str  # what one "request" is
    loader: dict[str, Any]


def relay_scenarios(window_s: float) -> list[RelayScenario]:
    """50 clients (the nodes' core saturated: throughput and CPU per request), then 5
    (a light load for one process; relaying, at its CPU per request, still fills
    the core with 5)."""
    common = {"warmup_s": WARMUP_S, "duration_s": window_s, "max_msgs": MAX_MSGS}
    polling = {**common, "scenario": "polling"}
    # handshakes 10 at a time, as in the polling scenario; the relay_upgrade_wait of
    # the server's default config, for the loader to count the probes later than it
    early = {
        **common,
        "scenario": "echo",
        "inflight": 1,
        "upgrade": "early",
        "connect_concurrency": 10,
        "upgrade_wait_ms": 1000 * EngineConfig().relay_upgrade_wait,
    }
    late = {**early, "upgrade": "late"}
    return [
        RelayScenario("polling-50", "HTTP request", {**polling, "conns": 50}),
        RelayScenario("upgrade-50x1", "WS round trip", {**early, "conns": 50}),
        RelayScenario("upgrade-late-50x1", "WS round trip", {**late, "conns": 50}),
        RelayScenario("polling-5", "HTTP request", {**polling, "conns": 5}),
        RelayScenario("upgrade-late-5x1", "WS round trip", {**late, "conns": 5}),
    ]


# ------------------------------------------------------------------ running
def run_setup(
    setup: Setup,
    scens: list[RelayScenario],
    node: str,
    pin: bool,
    redis_url: str,
    log: Path,
) -> dict[str, dict[str, Any]]:
    """Fresh nodes and a fresh nginx for ``setup``; one loader run per scenario."""
    target = next(t for t in TARGETS if t.name == "realtime")
    env = {"BENCH_REDIS_URL": redis_url, "BENCH_REDIS_KEY": f"bench-relay-{uuid.uuid4().hex[:10]}"}
    redis_pid = redis_process(redis_url)
    clk = os.sysconf("SC_CLK_TCK")
    out: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        servers: list[tuple[int, subprocess.Popen[bytes]]] = []
        for _ in range(setup.nodes):
            port = free_port()
            cmd = target.command(port, node, "websockets-sansio")
            servers.append((port, stack.enter_context(run_server(cmd, port, pin, log, ROOT, env))))
        lb_port, lb = stack.enter_context(
            nginx([p for p, _ in servers], setup.policy, preexec(LOADER_CPU if pin else None))
        )
        for s in scens:
            config = {
                **s.loader,
                "host": "127.0.0.1",
                "port": lb_port,
                "proto": "sio",
                "client_header": setup.policy == "sticky",
                "server_pid": servers[0][1].pid,
                "server_pids": [p.pid for _, p in servers],
                "watch_pids": {"nginx": lb.pid},
                "redis_pid": redis_pid,
                "server_cpu_id": SERVER_CPU if pin else None,
                "clk_tck": clk,
                "deadline_s": LOADER_DEADLINE_S,
            }
            res = run_loader(node, config, pin)
            if any(p.poll() is not None for _, p in servers) or lb.poll() is not None:
                res = {"ok": False, "error": "a server or nginx died"}
            out[s.name] = res
    return out


ROOT = Path(__file__).resolve().parent.parent


def measure(
    node: str, pin: bool, redis_url: str, repeats: int, window_s: float, log: Path
) -> dict[str, Any]:
    """Every setup x scenario, ``repeats`` times, interleaved; the raw runs."""
    scens = relay_scenarios(window_s)
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        s.name: {u.name: [] for u in SETUPS} for s in scens
    }
    for rep in range(repeats):
        for setup in SETUPS:
            try:
                got = run_setup(setup, scens, node, pin, redis_url, log)
            except (RuntimeError, BalancerError) as exc:
                got = {s.name: {"ok": False, "error": str(exc)} for s in scens}
            for s in scens:
                res = got[s.name]
                runs[s.name][setup.name].append(res)
                print(f"  {setup.name:7} {s.name:13} #{rep + 1}: {describe_run(res)}", flush=True)
    return {
        "scenarios": {s.name: {"unit": s.unit, **s.loader} for s in scens},
        "setups": {
            u.name: {"nodes": u.nodes, "policy": u.policy, "title": u.title} for u in SETUPS
        },
        "runs": runs,
    }


def describe_run(res: dict[str, Any]) -> str:
    if not res.get("ok"):
        return "ERROR " + str(res.get("error", ""))[:300]
    share = elsewhere_share(res)
    tail = f", elsewhere {100 * share:.0f}%" if share is not None else ""
    us = server_us(res)
    return (
        f"{res['throughput']:.0f} {res['unit']}, p50 {res['p50_ms']:.2f} ms, "
        f"p99 {res['p99_ms']:.2f} ms, {fmt_num(us, 1)} us CPU/request{tail}"
        + (f", {res['http_errors']} http errors" if res.get("http_errors") else "")
    )


# ------------------------------------------------------------------ figures
def requests_per_s(res: dict[str, Any]) -> float | None:
    n, window = res.get("requests_in_window"), res.get("measured_s")
    if not n or not window:
        return None
    return float(n) / float(window)


def per_request_us(cpu: float | None, res: dict[str, Any]) -> float | None:
    """CPU time per request (us) of a process whose CPU share over the window is ``cpu``."""
    rate = requests_per_s(res)
    if cpu is None or rate is None:
        return None
    return 1e6 * cpu / rate


def server_us(res: dict[str, Any]) -> float | None:
    return per_request_us(res.get("server_cpu"), res)


def redis_us(res: dict[str, Any]) -> float | None:
    return per_request_us(res.get("redis_cpu"), res)


def elsewhere_share(res: dict[str, Any]) -> float | None:
    """Share of the requests that landed on a node other than their session's."""
    n, elsewhere = res.get("requests_in_window"), res.get("elsewhere_in_window")
    if not n or elsewhere is None:
        return None
    return float(elsewhere) / float(n)


def elsewhere(res: dict[str, Any]) -> float | None:
    """Share of the nodes' core that went to other processes (the machine is shared)."""
    other = res.get("server_core_other")
    return None if other is None else float(other) + float(res.get("server_core_steal") or 0)


def latency(res: dict[str, Any], kind: str, key: str) -> float | None:
    """A percentile of the WebSockets that landed elsewhere (``kind="elsewhere"``) or not."""
    part = res.get(f"{kind}_latency") or {}
    value = part.get(key) if part.get("n") else None
    return None if value is None else float(value)


def probe(res: dict[str, Any], key: str) -> float | None:
    """Upgrades: the delay from a handshake's answer to its probe, or how many were late."""
    value = (res.get("probe_delay") or {}).get(key)
    return None if value is None else float(value)


Spread = tuple[float | None, float | None, float | None]


def median_spread(values: list[float]) -> Spread:
    """Median, min and max of ``values`` (None when empty)."""
    if not values:
        return None, None, None
    return statistics.median(values), min(values), max(values)


def paired(
    runs: list[dict[str, Any]],
    base: list[dict[str, Any]],
    metric: Callable[[dict[str, Any]], float | None],
) -> list[float]:
    """metric(run i) / metric(base run i) for every repeat where both are known."""
    out = []
    for a, b in zip(runs, base, strict=False):
        if not (a.get("ok") and b.get("ok")):
            continue
        x, y = metric(a), metric(b)
        if x is not None and y:
            out.append(x / y)
    return out


def over(runs: list[dict[str, Any]], metric: Callable[[dict[str, Any]], float | None]) -> Spread:
    """Median, min and max of ``metric`` over the runs where it is known."""
    return median_spread([v for v in map(metric, runs) if v is not None])


def summarize(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per scenario x setup: medians and spreads, ratios and the extra CPU."""
    rows = []
    for scen, by_setup in doc["runs"].items():
        base = by_setup["one"]
        for setup, runs in by_setup.items():
            ok = [r for r in runs if r.get("ok")]

            extra, extra_redis = [], []
            for a, b in zip(runs, base, strict=False):
                if not (a.get("ok") and b.get("ok")):
                    continue
                ua, ub, share = server_us(a), server_us(b), elsewhere_share(a)
                if ua is None or ub is None or not share:
                    continue
                extra.append((ua - ub) / share)
                ra, rb = redis_us(a), redis_us(b)
                if ra is not None and rb is not None:
                    extra_redis.append((ua + ra - ub - rb) / share)
            rows.append(
                {
                    "scenario": scen,
                    "setup": setup,
                    "unit": doc["scenarios"][scen]["unit"],
                    "runs": len(runs),
                    "ok": len(ok),
                    "errors": [r.get("error") for r in runs if not r.get("ok")],
                    "throughput": over(ok, lambda r: r["throughput"]),
                    "p50_ms": over(ok, lambda r: r["p50_ms"]),
                    "p99_ms": over(ok, lambda r: r["p99_ms"]),
                    "elsewhere_share": over(ok, elsewhere_share),
                    "server_us": over(ok, server_us),
                    "nginx_us": over(
                        ok, lambda r: per_request_us((r.get("cpu_of") or {}).get("nginx"), r)
                    ),
                    "redis_us": over(ok, redis_us),
                    "loader_cpu": over(ok, lambda r: r.get("loader_cpu")),
                    "server_cpu": over(ok, lambda r: r.get("server_cpu")),
                    "elsewhere": over(ok, elsewhere),
                    "elsewhere_p50_ms": over(ok, lambda r: latency(r, "elsewhere", "p50_ms")),
                    "elsewhere_p99_ms": over(ok, lambda r: latency(r, "elsewhere", "p99_ms")),
                    "probe_p50_ms": over(ok, lambda r: probe(r, "p50_ms")),
                    "late_probes": over(ok, lambda r: probe(r, "later_than_wait")),
                    "late_probes_elsewhere": over(
                        ok, lambda r: probe(r, "later_than_wait_elsewhere")
                    ),
                    "direct_p50_ms": over(ok, lambda r: latency(r, "direct", "p50_ms")),
                    "direct_p99_ms": over(ok, lambda r: latency(r, "direct", "p99_ms")),
                    "http_errors": sum(int(r.get("http_errors") or 0) for r in ok),
                    "ratio_throughput": median_spread(
                        paired(runs, base, lambda r: r["throughput"])
                    ),
                    "ratio_p50": median_spread(paired(runs, base, lambda r: r["p50_ms"])),
                    "ratio_p99": median_spread(paired(runs, base, lambda r: r["p99_ms"])),
                    "ratio_server_us": median_spread(paired(runs, base, server_us)),
                    "extra_us_elsewhere": median_spread(extra),
                    "extra_us_with_redis": median_spread(extra_redis),
                }
            )
    return rows


# ------------------------------------------------------------------ tables
def with_range(cell: Spread, digits: int, suffix: str = "") -> str:
    mid, lo, hi = cell
    if mid is None or lo is None or hi is None:
        return "-"
    if lo == hi:
        return f"{mid:,.{digits}f}{suffix}"
    return f"{mid:,.{digits}f}{suffix} ({lo:,.{digits}f}..{hi:,.{digits}f})"


def share_cell(cell: Spread) -> str:
    mid = cell[0]
    return "-" if mid is None else f"{100 * mid:.0f}%"


def measured_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "scenario",
        "setup",
        "throughput /s",
        "p50 ms",
        "p99 ms",
        "elsewhere",
        "server CPU",
        "server CPU us/req",
        "nginx us/req",
        "redis us/req",
        "loader CPU",
        "CPU0 elsewhere",
    )
    body = [
        (
            r["scenario"],
            r["setup"],
            with_range(r["throughput"], 0),
            fmt_num(r["p50_ms"][0], 2),
            fmt_num(r["p99_ms"][0], 2),
            share_cell(r["elsewhere_share"]),
            percent(r["server_cpu"][0]),
            with_range(r["server_us"], 1),
            fmt_num(r["nginx_us"][0], 1),
            fmt_num(r["redis_us"][0], 1),
            percent(r["loader_cpu"][0]),
            percent(r["elsewhere"][0]),
        )
        for r in rows
    ]
    return render(head, body)


def render(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """A Markdown table: the first two columns (names) left, the figures right."""
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]

    def line(cells: tuple[str, ...]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i < 2 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=False))
            )
            + " |"
        )

    sep = (
        "|"
        + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":" for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def late_cell(row: dict[str, Any]) -> str:
    """Median over repeats of the probes later than relay_upgrade_wait, max in brackets."""
    late, elsewhere = row["late_probes"], row["late_probes_elsewhere"]
    if late[0] is None or elsewhere[0] is None:
        return "-"
    return f"{late[0]:.0f} ({elsewhere[0]:.0f}), max {late[2]:.0f} ({elsewhere[2]:.0f})"


def percent(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def split_table(rows: list[dict[str, Any]]) -> str:
    """Round trips of the WebSockets that landed where their session was made, and elsewhere."""
    head = (
        "scenario",
        "setup",
        "direct p50 ms",
        "direct p99 ms",
        "elsewhere p50 ms",
        "elsewhere p99 ms",
        "probe after handshake p50 ms",
        "probes after relay_upgrade_wait (elsewhere)",
    )
    body = [
        (
            r["scenario"],
            r["setup"],
            fmt_num(r["direct_p50_ms"][0], 2),
            fmt_num(r["direct_p99_ms"][0], 2),
            fmt_num(r["elsewhere_p50_ms"][0], 2),
            fmt_num(r["elsewhere_p99_ms"][0], 2),
            fmt_num(r["probe_p50_ms"][0], 1),
            late_cell(r),
        )
        for r in rows
        if r["direct_p50_ms"][0] is not None or r["elsewhere_p50_ms"][0] is not None
    ]
    return render(head, body) if body else ""


def ratios_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "scenario",
        "setup / one",
        "throughput",
        "p50",
        "p99",
        "server CPU per request",
        "extra server CPU per request landed elsewhere",
        "same + redis-server",
    )
    body = [
        (
            r["scenario"],
            f"{r['setup']} / one",
            with_range(r["ratio_throughput"], 2, "x"),
            with_range(r["ratio_p50"], 2, "x"),
            with_range(r["ratio_p99"], 2, "x"),
            with_range(r["ratio_server_us"], 2, "x"),
            with_range(r["extra_us_elsewhere"], 0, " us") if r["setup"] == "relay" else "-",
            with_range(r["extra_us_with_redis"], 0, " us") if r["setup"] == "relay" else "-",
        )
        for r in rows
        if r["setup"] != "one"
    ]
    return render(head, body)


def report(doc: dict[str, Any]) -> str:
    rows = summarize(doc)
    doc["summary"] = rows
    info = doc["machine"]
    lines = [
        f"{doc['repeats']} repeats of {doc['window_s']:g} s per setup and scenario (median, "
        f"(min..max) over repeats), {info['nproc']} x {info['cpu_model']}, realtime "
        f"{info['realtime_commit']}, nginx {doc.get('nginx_version', '?')}.",
        "",
        measured_table(rows),
        "",
        ratios_table(rows),
    ]
    split = split_table(rows)
    if split:
        lines += ["", split]
    errors = [(r["scenario"], r["setup"], e) for r in rows for e in r["errors"]]
    if errors:
        lines += ["", "Errors:"] + [f"- {s} {u}: {str(e)[:200]}" for s, u, e in errors]
    return "\n".join(lines)


def nginx_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError, BalancerError):
        from benchmarks.balancer import nginx_binary

        out = subprocess.run([nginx_binary(), "-v"], capture_output=True, timeout=10, check=False)
        return out.stderr.decode().strip().rpartition("/")[2]
    return "?"


def rerender(path: Path) -> int:
    """Print the tables of an earlier ``--relay`` run (its JSON) and rewrite its .md."""
    doc = json.loads(path.read_text())
    text = report(doc)
    print(text)
    path.with_suffix(".md").write_text(text + "\n")
    return 0


def main(
    node: str, pin: bool, redis_url: str, repeats: int | None, full: bool, out: Path | None
) -> int:
    if not redis_reachable(redis_url):
        print(f"--relay needs Redis: nothing answers at {redis_url}")
        return 2
    try:
        from benchmarks.balancer import nginx_binary

        nginx_binary()
    except BalancerError as exc:
        print(f"--relay needs nginx: {exc}")
        return 2
    repeats = repeats or REPEATS
    window_s = 5.0 if full else WINDOW_S
    info = machine_info(node)
    if pin:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {LOADER_CPU})
    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / "servers.log.tmp"
    log.write_bytes(b"")
    print(
        f"relay: {repeats} repeats x {len(SETUPS)} setups x {len(relay_scenarios(window_s))} "
        f"scenarios, {window_s:g} s windows; "
        f"nodes on CPU {SERVER_CPU}, loader and nginx on CPU {LOADER_CPU}"
        if pin
        else "relay: no CPU pinning"
    )
    for setup in SETUPS:
        print(f"- {setup.name}: {setup.title}")
    started = time.monotonic()
    doc = measure(node, pin, redis_url, repeats, window_s, log)
    doc.update(
        repeats=repeats,
        window_s=window_s,
        warmup_s=WARMUP_S,
        machine=info,
        nginx_version=nginx_version(),
        pinning={"servers": SERVER_CPU, "loader_and_nginx": LOADER_CPU} if pin else None,
        elapsed_s=round(time.monotonic() - started, 1),
    )
    text = report(doc)
    print()
    print(text)
    print(f"\nelapsed {doc['elapsed_s']:.0f}s")
    path = out or RESULTS / "relay.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    path.with_suffix(".md").write_text(text + "\n")
    print(f"wrote {path} and its .md")
    return 0
