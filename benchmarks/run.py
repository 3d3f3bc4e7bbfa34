"""Benchmark harness: realtime vs python-socketio vs raw WebSocket floors.

    .venv/bin/python -m benchmarks.run --quick      # < 2 minutes
    .venv/bin/python -m benchmarks.run --full       # repeats, longer windows
    .venv/bin/python -m benchmarks.run --relay      # sessions relayed between nodes (nginx, Redis)

Each target server runs as its own process pinned to CPU 0; the load
generator (benchmarks/loader/load.js, Node) runs in another process
pinned to CPU 1 and reports its own CPU use so that a loader-bound run is
visible. Results: a table on stdout, benchmarks/results/latest.json and
benchmarks/results/latest.md and latest.png.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
LOADER = HERE / "loader" / "load.js"
NODE_MODULES = HERE / "node_modules"

SERVER_CPU = 0
LOADER_CPU = 1
LOADER_SATURATED = 0.90  # fraction of one core
NOISE = 0.15  # other load on the server core (processes, interrupts, steal) worth a note
NOISE_RETRY = 0.30  # ... that makes a run worth repeating
NOISE_RETRIES = 2

# Same uvicorn options for every Python target (recorded in the JSON).
UVICORN_OPTIONS = [
    "--host",
    "127.0.0.1",
    "--workers",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--ws",
    "websockets-sansio",
    "--no-access-log",
    "--log-level",
    "warning",
]


# ---------------------------------------------------------------- targets
@dataclass
class Target:
    name: str
    proto: str  # "sio" (Socket.IO frames) or "raw" (plain text frames)
    kind: str  # "uvicorn", "hypercorn", "granian" (Python ASGI servers) or "node"
    spec: str  # "module:app" for a Python server, script path for node
    description: str
    root: Path = ROOT  # where a Python target imports from (another commit for --base)
    ws: str | None = None  # uvicorn --ws for this target (default: the run's --ws)
    default: bool = True  # run when --targets names none (the server variants only on request)

    @property
    def python(self) -> bool:
        return self.kind != "node"

    def command(self, port: int, node: str | None, ws_impl: str) -> list[str]:
        if self.kind == "uvicorn":
            opts = list(UVICORN_OPTIONS)
            opts[opts.index("--ws") + 1] = self.ws or ws_impl
            return [sys.executable, "-m", "uvicorn", self.spec, *opts, "--port", str(port)]
        if self.kind == "hypercorn":
            # One worker on uvloop, no access log (hypercorn's default), like the uvicorn targets.
            bind = f"127.0.0.1:{port}"
            return [sys.executable, "-m", "hypercorn", self.spec, "--bind", bind, "-k", "uvloop"]
        if self.kind == "granian":
            # One worker, one runtime thread: one core, like the others.
            granian = str(Path(sys.executable).parent / "granian")
            return [
                granian, "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
                "--workers", "1", "--runtime-threads", "1", "--loop", "uvloop",
                "--log-level", "warning", self.spec,
            ]  # fmt: skip
        assert node is not None
        return [node, str(HERE / self.spec), "--port", str(port)]


TARGETS = [
    Target(
        "realtime",
        "sio",
        "uvicorn",
        "benchmarks.targets.realtime_app:app",
        "realtime.Server on uvicorn (ours)",
    ),
    Target(
        "python-socketio",
        "sio",
        "uvicorn",
        "benchmarks.targets.pysio_app:app",
        "python-socketio AsyncServer + ASGIApp on uvicorn",
    ),
    Target(
        "starlette-raw",
        "raw",
        "uvicorn",
        "benchmarks.targets.raw_starlette:app",
        "raw Starlette WebSocket echo/broadcast on uvicorn",
    ),
    # realtime on the other ASGI servers (issue: which one to recommend): same app, same loop.
    Target(
        "realtime-wsproto",
        "sio",
        "uvicorn",
        "benchmarks.targets.realtime_app:app",
        "realtime.Server on uvicorn --ws wsproto",
        ws="wsproto",
        default=False,
    ),
    Target(
        "realtime-hypercorn",
        "sio",
        "hypercorn",
        "benchmarks.targets.realtime_app:app",
        "realtime.Server on hypercorn (uvloop worker)",
        default=False,
    ),
    Target(
        "realtime-granian",
        "sio",
        "granian",
        "benchmarks.targets.realtime_app:app",
        "realtime.Server on granian (ASGI, one runtime thread)",
        default=False,
    ),
    Target("node-socketio", "sio", "node", "targets/node_sio.js", "Node socket.io server"),
    Target("node-ws", "raw", "node", "targets/node_ws.js", "raw Node ws echo/broadcast"),
]


#: The name of the ``--base`` target: realtime as of an earlier commit.
BASE = "realtime-base"


def base_target(ref: str) -> Target:
    """``realtime`` as of git ``ref``, unpacked outside the tree, to compare in one run."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    root = Path(tempfile.gettempdir()) / f"realtime-base-{commit}"
    if not root.is_dir():
        root.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", commit, "realtime", "benchmarks/targets"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    spec = "benchmarks.targets.realtime_app:app"
    return Target(BASE, "sio", "uvicorn", spec, f"realtime at {commit} (--base)", root)


# -------------------------------------------------------------- scenarios
@dataclass
class Scenario:
    name: str
    title: str
    loader: dict[str, Any]
    protos: tuple[str, ...] = ("sio", "raw")
    fresh_server: bool = False  # start a new server just for this scenario
    nodes: int = 1  # > 1: that many servers of one cluster, joined through Redis
    only: tuple[str, ...] = ()  # the targets that can run it (all if empty)

    def applies(self, t: Target) -> bool:
        return t.proto in self.protos and (not self.only or t.name in self.only)


#: The Redis the cluster scenario's nodes meet on (``--redis``); each run uses a
#: channel prefix of its own, so other users of that Redis do not interfere.
DEFAULT_REDIS = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
CLUSTER_TARGETS = ("realtime", "python-socketio")


def scenarios(full: bool) -> list[Scenario]:
    warm, dur = (1.0, 5.0) if full else (0.3, 1.0)
    max_msgs = 5_000_000
    echo = {"scenario": "echo", "warmup_s": warm, "duration_s": dur, "max_msgs": max_msgs}
    fan = {
        "scenario": "fanout",
        "warmup_rounds": 5 if full else 2,
        "max_rounds": 20_000,
        "duration_s": dur,
        "round_timeout_s": 5,
    }
    return [
        Scenario("echo-50x1", "echo, 50 conns x 1 in flight", {**echo, "conns": 50, "inflight": 1}),
        Scenario(
            "echo-50x10", "echo, 50 conns x 10 in flight", {**echo, "conns": 50, "inflight": 10}
        ),
        Scenario(
            "ack-50x1",
            "acked echo, 50 x 1",
            {**echo, "conns": 50, "inflight": 1, "ack": True},
            protos=("sio",),
        ),
        Scenario(
            "ack-50x10",
            "acked echo, 50 x 10",
            {**echo, "conns": 50, "inflight": 10, "ack": True},
            protos=("sio",),
        ),
        Scenario("fanout-200", "broadcast to 200 sockets", {**fan, "conns": 200}),
        Scenario("fanout-1000", "broadcast to 1000 sockets", {**fan, "conns": 1000}),
        Scenario(
            "fanout-redis",
            "broadcast to 1000 sockets on 2 nodes via Redis",
            # a second to settle: python-socketio subscribes on its first connection
            {**fan, "conns": 1000, "settle_ms": 1000},
            protos=("sio",),
            nodes=2,
            only=CLUSTER_TARGETS,
        ),
        Scenario(
            "polling-50",
            "echo over long-polling, 50 clients",
            {**echo, "scenario": "polling", "conns": 50},
            protos=("sio",),
        ),
        Scenario(
            "connect-2000",
            "connect 2000 WebSocket clients",
            {
                "scenario": "connect",
                "conns": 2000,
                "concurrency": 100,
                "settle_s": 1.0 if full else 0.5,
            },
            fresh_server=True,
        ),
    ]


# ---------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def can_pin() -> bool:
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return False
    return {SERVER_CPU, LOADER_CPU} <= cpus


def preexec(cpu: int | None) -> Callable[[], None]:
    def fn() -> None:
        if cpu is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, {cpu})
        with contextlib.suppress(ValueError, OSError):
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        os.setsid()

    return fn


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not accept connections in time")


@contextlib.contextmanager
def run_server(
    cmd: list[str],
    port: int,
    pin: bool,
    log: Path,
    root: Path = ROOT,
    extra_env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    env = dict(os.environ, PYTHONPATH=str(root), NODE_ENV="production", **(extra_env or {}))
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec(SERVER_CPU if pin else None),
        )
        try:
            wait_port(port, proc, 20)
            time.sleep(0.2)
            yield proc
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)


def run_loader(node: str, config: dict[str, Any], pin: bool) -> dict[str, Any]:
    deadline = float(config["deadline_s"])
    try:
        out = subprocess.run(
            [node, str(LOADER), json.dumps(config)],
            cwd=HERE,
            capture_output=True,
            timeout=deadline + 10,
            preexec_fn=preexec(LOADER_CPU if pin else None),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "loader did not finish in time"}
    lines = [ln for ln in out.stdout.decode().splitlines() if ln.startswith("{")]
    if not lines:
        err = out.stderr.decode().strip().splitlines()[-3:]
        return {"ok": False, "error": f"loader exit {out.returncode}: {' | '.join(err)}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def target_available(t: Target, node: str | None) -> tuple[bool, str]:
    if t.kind == "node":
        if node is None:
            return False, "node not found"
        if not (NODE_MODULES / ("socket.io" if t.proto == "sio" else "ws")).is_dir():
            return False, "run `npm ci` in benchmarks/"
        return True, ""
    if t.kind == "granian" and not (Path(sys.executable).parent / "granian").exists():
        return False, "pip install granian"
    if t.kind == "hypercorn" and importlib.util.find_spec("hypercorn") is None:
        return False, "pip install hypercorn"
    module = t.spec.split(":")[0]
    probe = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=t.root,
        env=dict(os.environ, PYTHONPATH=str(t.root)),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        last = (probe.stderr.decode().strip().splitlines() or ["import failed"])[-1]
        return False, last
    return True, ""


def cmd_output(cmd: list[str]) -> str:
    try:
        return (
            subprocess.run(cmd, capture_output=True, timeout=20, check=False)
            .stdout.decode()
            .strip()
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""


def machine_info(node: str | None) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str] = {}
    from importlib import metadata

    for dist in (
        "uvicorn",
        "starlette",
        "python-socketio",
        "python-engineio",
        "websockets",
        "uvloop",
        "httptools",
        "anyio",
        "realtime",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[dist] = metadata.version(dist)
    for pkg in ("socket.io", "ws", "engine.io"):
        with contextlib.suppress(OSError, ValueError):
            versions[f"npm:{pkg}"] = json.loads((NODE_MODULES / pkg / "package.json").read_text())[
                "version"
            ]
    commit = cmd_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = cmd_output(["git", "-C", str(ROOT), "status", "--porcelain", "--", "realtime"])
    return {
        "realtime_commit": commit + ("+uncommitted changes in realtime/" if dirty else ""),
        "nproc": cmd_output(["nproc"]),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": cmd_output([node, "--version"]) if node else None,
        "versions": versions,
    }


# ---------------------------------------------------------------- running
@dataclass
class Run:
    results: list[dict[str, Any]] = field(default_factory=list)


def median_result(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r.get("ok")]
    if not ok:
        return runs[-1]
    ok.sort(key=lambda r: r["throughput"])
    chosen = dict(ok[(len(ok) - 1) // 2])
    chosen["repeats"] = [round(r["throughput"], 1) for r in ok]
    if len(ok) > 1:
        chosen["spread_pct"] = round(
            100
            * (ok[-1]["throughput"] - ok[0]["throughput"])
            / statistics.median(r["throughput"] for r in ok),
            1,
        )
    return chosen


def noise(res: dict[str, Any]) -> float:
    """Share of the server's core that went to anything but the server."""
    return float(res.get("server_core_other") or 0) + float(res.get("server_core_steal") or 0)


def bench_target(
    t: Target,
    scens: list[Scenario],
    node: str,
    pin: bool,
    rep: int,
    ws_impl: str,
    log: Path,
    client: str,
    runs: dict[tuple[str, str], list[dict[str, Any]]],
    redis_url: str = DEFAULT_REDIS,
) -> None:
    """One repeat of every applicable scenario on ``t``; appends to ``runs``.

    A run during which more than NOISE_RETRY of the server's core went elsewhere
    is run again (at most NOISE_RETRIES times; a fresh-server scenario gets a
    fresh server); the last attempt is kept either way, with its retry count.
    """
    clk = os.sysconf("SC_CLK_TCK")
    redis_pid = redis_process(redis_url) if any(s.nodes > 1 for s in scens) else None
    groups: list[list[Scenario]] = []
    shared = [s for s in scens if s.applies(t) and not s.fresh_server and s.nodes == 1]
    if shared:
        groups.append(shared)
    groups += [[s] for s in scens if s.applies(t) and s.fresh_server and s.nodes == 1]

    def once(
        s: Scenario, port: int, proc: subprocess.Popen[bytes], others: Cluster = ()
    ) -> dict[str, Any]:
        # hypercorn and granian serve from a worker process: its CPU and memory count.
        serving = descendants(proc.pid) or [proc.pid]
        config = {
            **s.loader,
            "host": "127.0.0.1",
            "port": port,
            "ports": [port, *(p for p, _ in others)],
            "proto": t.proto,
            "server_pid": serving[-1],
            "server_pids": [*serving, *(q.pid for _, q in others)],
            "redis_pid": redis_pid if others else None,
            "server_cpu_id": SERVER_CPU if pin else None,
            "clk_tck": clk,
            "client": client,
            "deadline_s": 60 if s.loader["scenario"] != "connect" else 90,
        }
        res = run_loader(node, config, pin)
        if any(q.poll() is not None for q in (proc, *(q for _, q in others))):
            res = {"ok": False, "error": f"server died ({proc.returncode})"}
        tag = (
            f"{res['throughput']:.0f} {res['unit']}"
            if res.get("ok")
            else f"ERROR {res.get('error', '')[:200]}"
        )
        if res.get("ok") and noise(res) > NOISE_RETRY:
            tag += f"  (server core {100 * noise(res):.0f}% busy elsewhere)"
        print(f"  {t.name:16} {s.name:13} #{rep + 1}: {tag}", flush=True)
        return res

    for s in scens:
        if s.applies(t) and s.nodes > 1:
            runs.setdefault((t.name, s.name), []).append(
                bench_cluster(t, s, node, pin, ws_impl, log, redis_url, once)
            )

    for group in groups:
        fresh = len(group) == 1 and group[0].fresh_server
        todo = list(group)
        attempt = 0
        while todo:
            port = free_port()
            cmd = t.command(port, node, ws_impl)
            again: list[Scenario] = []
            try:
                with run_server(cmd, port, pin, log, t.root) as proc:
                    for s in todo:
                        tries = 0
                        while True:
                            res = once(s, port, proc)
                            noisy = res.get("ok") and noise(res) > NOISE_RETRY
                            if not noisy or attempt + tries >= NOISE_RETRIES:
                                break
                            if fresh:
                                again.append(s)
                                break
                            tries += 1
                        if s not in again:
                            res["noise_retries"] = attempt + tries
                            runs.setdefault((t.name, s.name), []).append(res)
            except RuntimeError as e:
                for s in todo:
                    if (t.name, s.name) not in runs or len(runs[(t.name, s.name)]) <= rep:
                        runs.setdefault((t.name, s.name), []).append({"ok": False, "error": str(e)})
                print(f"  {t.name:16} server error: {e}", flush=True)
                break
            todo = again
            attempt += 1


Cluster = tuple[tuple[int, subprocess.Popen[bytes]], ...]


def bench_cluster(
    t: Target,
    s: Scenario,
    node: str,
    pin: bool,
    ws_impl: str,
    log: Path,
    redis_url: str,
    once: Callable[[Scenario, int, subprocess.Popen[bytes], Cluster], dict[str, Any]],
) -> dict[str, Any]:
    """One run of a cluster scenario: ``s.nodes`` fresh servers of ``t`` on one Redis
    channel prefix of this run, all pinned to the server CPU (their CPU is summed)."""
    if not redis_reachable(redis_url):
        print(f"  {t.name:16} {s.name:13}: ERROR no Redis at {redis_url}", flush=True)
        return {"ok": False, "error": f"no Redis at {redis_url}"}
    env = {"BENCH_REDIS_URL": redis_url, "BENCH_REDIS_KEY": f"bench-{uuid.uuid4().hex[:10]}"}
    try:
        with contextlib.ExitStack() as stack:
            servers: list[tuple[int, subprocess.Popen[bytes]]] = []
            for _ in range(s.nodes):
                port = free_port()
                cmd = t.command(port, node, ws_impl)
                proc = stack.enter_context(run_server(cmd, port, pin, log, t.root, env))
                servers.append((port, proc))
            (port, proc), *others = servers
            res = once(s, port, proc, tuple(others))
    except RuntimeError as e:
        print(f"  {t.name:16} server error: {e}", flush=True)
        return {"ok": False, "error": str(e)}
    res["nodes"] = s.nodes
    return res


def redis_command(url: str, command: bytes) -> bytes:
    """The first reply bytes of an inline ``command`` at ``url`` (``redis://host:port``)."""
    parsed = urllib.parse.urlsplit(url)
    try:
        address = (parsed.hostname or "127.0.0.1", parsed.port or 6379)
        with socket.create_connection(address, 2) as c:
            c.sendall(command + b"\r\n")
            return c.recv(65536)
    except OSError:
        return b""


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the worker of a server that forks one), parents first."""
    found = [pid]
    for parent in found:
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            with contextlib.suppress(OSError):
                found += [int(c) for c in (task / "children").read_text().split()]
    return found


def redis_reachable(url: str) -> bool:
    return redis_command(url, b"PING").startswith(b"+PONG")


def redis_process(url: str) -> int | None:
    """The Redis server's pid when it runs on this machine, to count its CPU too."""
    for line in redis_command(url, b"INFO server").decode(errors="replace").splitlines():
        if line.startswith("process_id:"):
            pid = int(line.split(":", 1)[1])
            return pid if Path(f"/proc/{pid}/stat").exists() else None
    return None


def aggregate(runs: dict[tuple[str, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for (target, scen), rs in runs.items():
        r = {"target": target, "scenario": scen, **median_result(rs)}
        # Throughput of each repeat in run order (None = failed), for paired ratios.
        r["by_repeat"] = [x["throughput"] if x.get("ok") else None for x in rs]
        out.append(r)
    return out


# ------------------------------------------------------------- reporting
def get(results: list[dict[str, Any]], target: str, scenario: str) -> dict[str, Any] | None:
    for r in results:
        if r["target"] == target and r["scenario"] == scenario and r.get("ok"):
            return r
    return None


# (label, reference, scenario, metric, threshold, kind): the speed-per-core targets.
# kind "ratio": ours/ref >= threshold; "kib": ours <= ref + threshold;
# "p99": ours <= threshold x ref (p99 to the last recipient, for fan-out).
GOALS = [
    ("echo 50x1 >= 0.6x raw WS echo", "starlette-raw", "echo-50x1", "throughput", 0.6, "ratio"),
    (
        "fan-out 1000 >= 0.7x raw WS broadcast",
        "starlette-raw",
        "fanout-1000",
        "throughput",
        0.7,
        "ratio",
    ),
    (
        "fan-out 1000 p99 to last <= 1.5x raw's",
        "starlette-raw",
        "fanout-1000",
        "p99_ms",
        1.5,
        "p99",
    ),
    (
        "polling echo >= 2x python-socketio",
        "python-socketio",
        "polling-50",
        "throughput",
        2.0,
        "ratio",
    ),
    (
        "fan-out over Redis >= 2x python-socketio",
        "python-socketio",
        "fanout-redis",
        "throughput",
        2.0,
        "ratio",
    ),
    ("connections/s >= 0.75x raw", "starlette-raw", "connect-2000", "throughput", 0.75, "ratio"),
    ("KiB per idle conn <= raw + 8", "starlette-raw", "connect-2000", "kib_per_conn", 8.0, "kib"),
]


def throughput_ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """a / b: the median of the per-repeat ratios (repeat i of a and of b ran close
    together in time), or the ratio of the single results."""
    pa, pb = a.get("by_repeat") or [], b.get("by_repeat") or []
    paired = [x / y for x, y in zip(pa, pb, strict=False) if x and y]
    if len(paired) > 1:
        return float(statistics.median(paired))
    if not b["throughput"]:
        return None
    return float(a["throughput"]) / float(b["throughput"])


def compute_goals(results: list[dict[str, Any]], ours: str = "realtime") -> list[dict[str, Any]]:
    goals = []
    for label, ref, scen, metric, thr, kind in GOALS:
        a, b = get(results, ours, scen), get(results, ref, scen)
        g: dict[str, Any] = {"goal": label, "ours": ours, "reference": ref, "scenario": scen}
        if a is None or b is None or a.get(metric) is None or b.get(metric) is None:
            g.update(status="n/a", value=None)
        elif kind == "ratio":
            v = throughput_ratio(a, b)
            g.update(value=v, status="PASS" if v is not None and v >= thr else "FAIL")
        elif kind == "p99":
            v = a[metric] / b[metric] if b[metric] else None
            g.update(value=v, status="PASS" if v is not None and v <= thr else "FAIL")
        else:
            v = a[metric] - b[metric]
            g.update(
                value=v,
                ours_value=a[metric],
                ref_value=b[metric],
                status="PASS" if v <= thr else "FAIL",
            )
        goals.append(g)
    return goals


def compute_ratios(results: list[dict[str, Any]], scens: list[Scenario]) -> list[dict[str, Any]]:
    pairs = [
        ("realtime", BASE),
        (BASE, "starlette-raw"),
        (BASE, "python-socketio"),
        ("realtime", "starlette-raw"),
        ("realtime", "python-socketio"),
        ("realtime", "node-socketio"),
        # the same app on the other ASGI servers, against uvicorn (websockets-sansio)
        ("realtime-wsproto", "realtime"),
        ("realtime-hypercorn", "realtime"),
        ("realtime-granian", "realtime"),
        ("realtime-granian", "starlette-raw"),
        ("python-socketio", "starlette-raw"),
        ("node-socketio", "node-ws"),
        ("starlette-raw", "node-ws"),
    ]
    rows = []
    for a, b in pairs:
        for s in scens:
            ra, rb = get(results, a, s.name), get(results, b, s.name)
            v = throughput_ratio(ra, rb) if ra and rb else None
            if v is not None:
                rows.append({"a": a, "b": b, "scenario": s.name, "ratio": v})
    return rows


def cpu_us_per_delivery(r: dict[str, Any] | None, with_redis: bool) -> float | None:
    """CPU time per delivery in microseconds: the servers' (every node's), plus the
    Redis server's when ``with_redis`` (None when a figure is missing)."""
    if r is None or r.get("server_cpu") is None or not r.get("throughput"):
        return None
    cpu = float(r["server_cpu"])
    if with_redis:
        if r.get("redis_cpu") is None:
            return None
        cpu += float(r["redis_cpu"])
    return 1e6 * cpu / float(r["throughput"])


def redis_cost(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the Redis path costs per delivery against in-memory fan-out, per target:
    fanout-1000 (one process) beside fanout-redis (two nodes + Redis), same run."""
    rows = []
    for target in CLUSTER_TARGETS:
        memory, redis = get(results, target, "fanout-1000"), get(results, target, "fanout-redis")
        if memory is None or redis is None:
            continue
        rows.append(
            {
                "target": target,
                "memory_us": cpu_us_per_delivery(memory, False),
                "nodes_us": cpu_us_per_delivery(redis, False),
                "cluster_us": cpu_us_per_delivery(redis, True),
                "memory_p99_ms": memory.get("p99_ms"),
                "redis_p99_ms": redis.get("p99_ms"),
                "throughput_ratio": throughput_ratio(redis, memory),
            }
        )
    return rows


def redis_cost_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "target",
        "in-memory CPU us/delivery",
        "Redis: nodes us/delivery",
        "Redis: nodes + redis-server",
        "p99 last recipient in-memory / Redis ms",
        "deliveries/s Redis / in-memory",
    )
    body = [
        (
            str(r["target"]),
            fmt_num(r["memory_us"], 1),
            fmt_num(r["nodes_us"], 1),
            fmt_num(r["cluster_us"], 1),
            f"{fmt_num(r['memory_p99_ms'], 1)} / {fmt_num(r['redis_p99_ms'], 1)}",
            f"{r['throughput_ratio']:.2f}x" if r["throughput_ratio"] is not None else "-",
        )
        for r in rows
    ]
    return render(head, body)


def fmt_num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def table(results: list[dict[str, Any]], scens: list[Scenario]) -> str:
    head = (
        "scenario",
        "target",
        "throughput",
        "unit",
        "p50 ms",
        "p99 ms",
        "loader CPU",
        "server CPU",
        "note",
    )
    rows = []
    for s in scens:
        for r in results:
            if r["scenario"] != s.name:
                continue
            if not r.get("ok"):
                rows.append(
                    (
                        s.name,
                        r["target"],
                        "-",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "ERROR: " + str(r.get("error", ""))[:60],
                    )
                )
                continue
            notes = []
            if r.get("loader_cpu") is not None and r["loader_cpu"] > LOADER_SATURATED:
                notes.append("LOADER-BOUND")
            if r.get("kib_per_conn") is not None:
                notes.append(f"{r['kib_per_conn']:.1f} KiB/conn")
            other = (r.get("server_core_other") or 0) + (r.get("server_core_steal") or 0)
            if other > NOISE:
                notes.append(f"CPU0 busy elsewhere {100 * other:.0f}%")
            if r.get("noise_retries"):
                notes.append(f"retried {r['noise_retries']}x (noise)")
            if r.get("spread_pct") is not None and r["spread_pct"] > 15:
                notes.append(f"spread {r['spread_pct']:.0f}%")
            if r.get("duplicates"):
                notes.append(f"{r['duplicates']} duplicate deliveries")
            if r.get("round_timeouts"):
                notes.append(f"{r['round_timeouts']} round timeouts")
            if r.get("http_errors"):
                notes.append(f"{r['http_errors']} http errors")
            rows.append(
                (
                    s.name,
                    r["target"],
                    fmt_num(r["throughput"]),
                    r["unit"],
                    fmt_num(r.get("p50_ms"), 2),
                    fmt_num(r.get("p99_ms"), 2),
                    f"{100 * r['loader_cpu']:.0f}%" if r.get("loader_cpu") is not None else "-",
                    f"{100 * r['server_cpu']:.0f}%" if r.get("server_cpu") is not None else "-",
                    ", ".join(notes),
                )
            )
    return render(head, rows)


def render(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
    right = {2, 4, 5, 6, 7}

    def line(cells: tuple[str, ...]) -> str:
        return (
            "| "
            + " | ".join(
                str(c).rjust(w) if i in right else str(c).ljust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=False))
            )
            + " |"
        )

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


def goals_table(goals: list[dict[str, Any]]) -> str:
    rows = []
    for g in goals:
        if g["value"] is None:
            v = "-"
        elif "KiB" in g["goal"]:
            v = f"{g['ours_value']:.1f} vs {g['ref_value']:.1f} KiB ({g['value']:+.1f})"
        else:
            v = f"{g['value']:.2f}x"
        rows.append((g["goal"], g["reference"], v, g["status"]))
    return render(("target for realtime", "measured against", "measured", "result"), rows)


def ratios_table(ratios: list[dict[str, Any]]) -> str:
    rows = [(f"{r['a']} / {r['b']}", r["scenario"], f"{r['ratio']:.2f}x") for r in ratios]
    return render(("ratio (throughput)", "scenario", "value"), rows)


def chart(
    results: list[dict[str, Any]], scens: list[Scenario], targets: list[str], path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(s.name, "throughput", s.title) for s in scens]
    panels.append(("connect-2000", "kib_per_conn", "server RSS per idle connection"))
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.3 * rows))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (scen, metric, ttl) in zip(axes.flat, panels, strict=False):
        names, vals, p99 = [], [], []
        unit = ""
        for i, t in enumerate(targets):
            r = get(results, t, scen)
            if r is None or r.get(metric) is None:
                continue
            names.append((t, colors[i % len(colors)]))
            vals.append(r[metric])
            p99.append(r.get("p99_ms") if metric == "throughput" else None)
            unit = r["unit"] if metric == "throughput" else "KiB / connection"
        bars = ax.bar(range(len(vals)), vals, color=[c for _, c in names])
        ax.set_xticks(range(len(vals)), [n for n, _ in names], rotation=20, fontsize=8)
        ax.set_title(ttl, fontsize=10)
        ax.set_ylabel(unit, fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        if vals:
            ax.set_ylim(0, max(vals) * 1.15)
        for b, p in zip(bars, p99, strict=False):
            if p is not None:
                ax.annotate(
                    f"p99 {p:.1f}ms",
                    (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="short windows, one run (default)")
    mode.add_argument("--full", action="store_true", help="longer windows, repeated runs")
    p.add_argument("--repeats", type=int, help="runs per scenario (default 1 quick, 3 full)")
    p.add_argument(
        "--targets", help="comma-separated subset of: " + ", ".join(t.name for t in TARGETS)
    )
    p.add_argument("--scenarios", help="comma-separated subset of scenario names")
    p.add_argument("--ws", default="websockets-sansio", help="uvicorn --ws implementation")
    p.add_argument(
        "--client",
        default="fast",
        choices=("fast", "ws"),
        help="loader WebSocket client: built-in minimal client or the ws package",
    )
    p.add_argument(
        "--base",
        metavar="GIT_REF",
        help=f"also run realtime as of GIT_REF, as target {BASE!r}, for before/after ratios",
    )
    p.add_argument(
        "--redis",
        default=DEFAULT_REDIS,
        help="Redis URL for the fanout-redis scenario (default $REDIS_URL or 127.0.0.1:6379)",
    )
    p.add_argument(
        "--relay",
        action="store_true",
        help="instead of the scenarios above: polling and upgraded-WebSocket echo through nginx "
        "in front of one process vs three with the Redis adapter (sessions relayed to their "
        "owner) vs three with affinity; see benchmarks/relay.py",
    )
    p.add_argument("--no-pin", action="store_true", help="do not pin server / loader to CPUs")
    p.add_argument("--out", default=str(RESULTS / "latest.json"), help="JSON output path")
    p.add_argument(
        "--report",
        metavar="JSON",
        help="do not run: re-render the tables, .md and .png from an earlier JSON file",
    )
    args = p.parse_args(argv)
    if args.report and args.relay:
        from benchmarks import relay

        return relay.rerender(Path(args.report))
    if args.report:
        path = Path(args.report)
        doc = json.loads(path.read_text())
        scens = [Scenario(name, s["title"], s) for name, s in doc["scenarios"].items()]
        print(table(doc["results"], scens))
        print()
        print(ratios_table(compute_ratios(doc["results"], scens)))
        print()
        print(goals_table(compute_goals(doc["results"])))
        costs = redis_cost(doc["results"])
        if costs:
            print()
            print(redis_cost_table(costs))
        write_reports(doc, path)
        return 0

    node = shutil.which("node")
    if node is None:
        print("The load generator needs Node.js (node >= 18) and `npm ci` in benchmarks/.")
        return 2
    if not (NODE_MODULES / "ws").is_dir():
        print("Run `npm ci` in benchmarks/ first (the loader needs the `ws` package).")
        return 2

    full = bool(args.full)
    if args.relay:
        from benchmarks import relay

        out = Path(args.out) if args.out != p.get_default("out") else None
        pin = can_pin() and not args.no_pin
        return relay.main(node, pin, args.redis, args.repeats, full, out)
    repeats = args.repeats or (3 if full else 1)
    scens = scenarios(full)
    if args.scenarios:
        wanted = set(args.scenarios.split(","))
        scens = [s for s in scens if s.name in wanted]
    targets = list(TARGETS)
    if args.base:
        targets.insert(1, base_target(args.base))
    if args.targets:
        wanted = set(args.targets.split(","))
        targets = [t for t in targets if t.name in wanted]
    else:
        targets = [t for t in targets if t.default]
    pin = can_pin() and not args.no_pin
    info = machine_info(node)  # before pinning ourselves: nproc honours affinity
    if pin:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {LOADER_CPU})

    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / "servers.log.tmp"
    log.write_bytes(b"")
    opts = list(UVICORN_OPTIONS)
    opts[opts.index("--ws") + 1] = args.ws
    print(
        f"mode={'full' if full else 'quick'} repeats={repeats} pinning="
        f"{'server CPU 0 / loader CPU 1' if pin else 'off'}"
    )
    print(
        f"machine: {info['nproc']} x {info['cpu_model']}, python {info['python']}, "
        f"node {info['node']}"
    )
    print("uvicorn " + " ".join(opts))

    skipped: dict[str, str] = {}
    ran: list[str] = []
    started = time.monotonic()
    for t in targets:
        ok, why = target_available(t, node)
        if not ok:
            skipped[t.name] = why
            print(f"- {t.name}: skipped ({why})", flush=True)
            continue
        print(f"- {t.name}: {t.description}", flush=True)
        ran.append(t.name)
    # Repeats are interleaved across targets (rep 1 of every target, then rep 2, ...)
    # so that a noisy stretch on the shared machine does not land on one target only.
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rep in range(repeats):
        for t in targets:
            if t.name in ran:
                bench_target(t, scens, node, pin, rep, args.ws, log, args.client, runs, args.redis)
    results = aggregate(runs)
    elapsed = time.monotonic() - started

    goals = compute_goals(results)
    ratios = compute_ratios(results, scens)
    print()
    print(table(results, scens))
    print()
    print(ratios_table(ratios))
    print()
    print(goals_table(goals))
    costs = redis_cost(results)
    if costs:
        print()
        print(redis_cost_table(costs))
    if "realtime" in skipped:
        print(f"\n(realtime target unavailable: {skipped['realtime']})")
    saturated = [
        f"{r['target']}/{r['scenario']}"
        for r in results
        if r.get("ok") and r.get("loader_cpu", 0) > LOADER_SATURATED
    ]
    if saturated:
        print("\nLoader saturated (>90% of its core) in: " + ", ".join(saturated))
    print(f"\nelapsed {elapsed:.0f}s")

    doc = {
        "mode": "full" if full else "quick",
        "repeats": repeats,
        "pinning": {"server_cpu": SERVER_CPU, "loader_cpu": LOADER_CPU} if pin else None,
        "uvicorn_options": opts,
        "loader": f"node benchmarks/loader/load.js (client={args.client}, no compression)",
        "machine": info,
        "targets": {t.name: t.description for t in targets},
        "skipped": skipped,
        "scenarios": {s.name: {"title": s.title, **s.loader} for s in scens},
        "results": results,
        "ratios": ratios,
        "goals": goals,
        "redis_cost": costs,
        "elapsed_s": round(elapsed, 1),
    }
    out = Path(args.out)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    write_reports(doc, out)
    return 0


def write_reports(doc: dict[str, Any], out: Path) -> None:
    """Markdown tables (``.md``) and the chart (``.png``) next to the JSON file."""
    info = doc["machine"]
    repeats = doc["repeats"]
    results = doc["results"]
    scens = [Scenario(name, s["title"], s) for name, s in doc["scenarios"].items()]
    ratios = compute_ratios(results, scens)
    goals = compute_goals(results)
    ran = [t for t in doc["targets"] if t not in doc["skipped"]]
    md = [
        f"Mode `{doc['mode']}`, {repeats} run(s) per scenario (median shown), "
        f"{info['nproc']} x {info['cpu_model']}, Python {info['python']}, Node {info['node']}.",
        "",
        table(results, scens),
        "",
        ratios_table(ratios),
        "",
        goals_table(goals),
        "",
    ]
    costs = redis_cost(results)
    if costs:
        md += [redis_cost_table(costs), ""]
    out.with_suffix(".md").write_text("\n".join(md))
    png = out.with_suffix(".png")
    chart(
        results,
        scens,
        ran,
        png,
        f"realtime benchmarks ({doc['mode']}): {info['nproc']} x {info['cpu_model']}",
    )
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"wrote {shown} and its .md / .png")


if __name__ == "__main__":
    sys.exit(main())
