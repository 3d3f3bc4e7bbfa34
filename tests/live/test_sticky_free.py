"""Long-polling and upgrades without sticky sessions, with real parts.

Each request of a session may land on any process: ``uvicorn --workers 4`` (the kernel
spreads the connections over the workers) or three processes behind nginx round-robin.
With the Redis adapter on (real Redis), the official socket.io-client
(tests/node/sticky_free.mjs, a new TCP connection per request) must see every ack and
every broadcast exactly once and in order, and never reconnect; Chromium runs the chat
demo through nginx; a node SIGKILLed mid-traffic takes only its own clients, which come
back on the others. Without Redis a request for a sid a process does not own still gets
the protocol's 400 "Session ID unknown".
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.live.balancer import Balancer, LogLine, balancer, nginx_binary
from tests.live.redis_servers import redis_server, require_shared_redis, unique_key
from tests.live.sticky_free_servers import (
    NODE_DIR,
    Node,
    app_env,
    client_script,
    port_open,
    run_clients,
    single_nodes,
    stop,
    worker_server,
)
from tests.servers import PYTHON, ROOT, free_port, require, require_node

pytestmark = [pytest.mark.live, pytest.mark.redis, pytest.mark.node, pytest.mark.timeout(120)]

CLIENTS = 200
MESSAGES = 20
TRANSPORTS = ["polling", "default"]
#: The --kill run: clients sending every 100-300 ms through nginx, bounded in time.
KILL_RUN = ["--clients", "100", "--probes", "0", "--timeout", "55000"]
CHROMIUM = Path("/usr/bin/chromium")


def check_clean_run(report: dict[str, Any], transports: str, owners: set[int]) -> None:
    """Everything arrived once, in order, and nobody reconnected."""
    clients = report["clients"]
    print(json.dumps(report))  # the measured spread, for the record (pytest -s)
    assert not report["connectTimedOut"], report
    assert report["connected"] == clients
    # not one reconnect, disconnect or connect error
    assert report["disconnects"] == 0, report["disconnectReasons"]
    assert report["reconnectAttempts"] == 0
    assert report["reconnected"] == 0
    assert report["connectErrors"] == 0, report["connectErrorMessages"]
    # every ack, in order, and the server received every message in order
    assert report["acked"] == clients * MESSAGES
    assert report["ackLost"] == 0
    assert report["ackOutOfOrder"] == 0
    assert report["serverOutOfOrder"] == 0
    # every broadcast exactly once, in order per sender
    assert report["bcastExpected"] > 0
    assert report["bcastReceived"] == report["bcastExpected"]
    assert report["bcastLost"] == 0
    assert report["bcastDup"] == 0
    assert report["bcastOutOfOrder"] == 0
    # a new TCP connection per request, and the requests really were spread
    assert report["requests"] == report["connections"]
    assert report["probe"]["requests"] == report["probe"]["connections"]
    assert {int(pid) for pid in report["requestsByWorker"]} <= owners
    assert len(report["requestsByWorker"]) == len(owners), "some process took no request"
    assert {int(pid) for pid in report["owners"]} <= owners
    assert len(report["owners"]) >= 2, "every session started on one process"
    spread = sum(n for workers, n in report["workersPerClient"].items() if int(workers) > 1)
    assert spread >= clients // 2, f"few clients had requests on several processes: {report}"
    expected = "polling" if transports == "polling" else "websocket"
    assert report["transports"] == {expected: clients}


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_uvicorn_four_workers(transports: str) -> None:
    """``uvicorn --workers 4`` and the Redis adapter: no affinity, nothing lost or reordered."""
    client_script()
    env = app_env(require_shared_redis(), unique_key())
    with worker_server(env, 4) as (server, pids):
        report = run_clients(server.url, "--transports", transports)
    check_clean_run(report, transports, pids)


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_nginx_round_robin(tmp_path: Path, transports: str) -> None:
    """Three processes behind nginx round-robin (no ip_hash): the same checks."""
    nginx_binary()
    client_script()
    redis, key = require_shared_redis(), unique_key()
    envs = [app_env(redis, key, name) for name in ("a", "b", "c")]
    with single_nodes(envs) as nodes, balancer(tmp_path, [n.port for n in nodes]) as lb:
        report = run_clients(lb.url, "--transports", transports)
    check_clean_run(report, transports, {n.proc.pid for n in nodes})


# --- Chromium on the chat demo through nginx -------------------------------------------


def chat_node(port: int, redis_url: str) -> Node:
    args = [PYTHON, "examples/cluster/app.py", "--port", str(port), "--redis", redis_url]
    proc = subprocess.Popen(args, cwd=ROOT, start_new_session=True)
    return Node(port, proc)


@pytest.mark.browser
@pytest.mark.parametrize("websocket", [False, True], ids=["no-websocket", "websocket"])
def test_chat_demo_in_chromium_through_nginx(tmp_path: Path, websocket: bool) -> None:
    """Two pages chat through nginx over three chat nodes: messages arrive, no reconnect.

    The nodes use a private Redis: the demo's channel prefix is the default one.
    """
    node = require_node()
    nginx_binary()
    require(CHROMIUM.exists(), f"Chromium not found at {CHROMIUM}")
    require((ROOT / "client-js/node_modules/playwright-core").is_dir(), "npm ci in client-js")
    with redis_server() as redis:
        nodes = [chat_node(free_port(), redis.url) for _ in range(3)]
        try:
            for n in nodes:
                deadline = time.monotonic() + 30
                while not port_open(n.port):
                    assert n.proc.poll() is None, "a chat node exited"
                    assert time.monotonic() < deadline, "a chat node did not listen"
                    time.sleep(0.05)
            with balancer(tmp_path, [n.port for n in nodes]) as lb:
                run = subprocess.run(
                    [node, "test/browser/sticky_free_chat.mjs", lb.url, str(websocket).lower()],
                    cwd=ROOT / "client-js",
                    capture_output=True,
                    text=True,
                    timeout=90,
                )
                upstreams = {u for line in lb.log() for u in line.upstreams}
        finally:
            for n in nodes:
                stop(n)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps(result))
    expected = "websocket" if websocket else "polling"
    assert result["transports"] == [expected, expected]
    assert result["reconnects"] == [0, 0]
    assert result["disconnects"] == [0, 0]
    assert result["missing"] == []
    assert len(upstreams) == 3, "nginx did not spread the requests over the three nodes"


# --- a node killed mid-traffic -----------------------------------------------------------


def through(log: list[LogLine], port: int, since: float) -> list[LogLine]:
    """Requests that went through the node on ``port`` and ended after ``since``."""
    address = f"127.0.0.1:{port}"
    return [line for line in log if address in line.upstreams and line.ended >= since]


def outcome(line: LogLine) -> str:
    """How a request that met the killed node ended, e.g. ``POST 502`` or ``GET 502>400``
    (nginx retried it on the next node, which answered 400)."""
    kind = "websocket" if "transport=websocket" in line.uri else line.method
    return f"{kind} {'>'.join(line.upstream_statuses)}"


@pytest.mark.parametrize("transports", TRANSPORTS)
def test_node_killed_mid_traffic(tmp_path: Path, transports: str) -> None:
    """SIGKILL one of three nodes behind nginx while clients send: its clients reconnect
    to the others and go on; the others' clients are not disturbed, except (reported) any
    whose request was passing through the killed node at that moment."""
    nginx_binary()
    _, command = client_script()
    redis, key = require_shared_redis(), unique_key()
    envs = [app_env(redis, key, name) for name in ("a", "b", "c")]
    with single_nodes(envs) as nodes, balancer(tmp_path, [n.port for n in nodes]) as lb:
        clients = subprocess.Popen(
            [*command, "--url", lb.url, "--transports", transports, "--kill", *KILL_RUN],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert clients.stdout is not None
            assert clients.stdin is not None
            ready = json.loads(clients.stdout.readline() or "{}")
            assert ready.get("ready"), ready
            victim = nodes[0]
            time.sleep(1)  # traffic goes on
            killed_at = time.time()
            os.kill(victim.proc.pid, signal.SIGKILL)
            clients.stdin.write(f"killed {victim.proc.pid}\n")
            clients.stdin.flush()
            out, _ = clients.communicate(timeout=70)
        finally:
            if clients.poll() is None:
                clients.kill()
                clients.wait()
        log = lb.log()
    report = json.loads(out.strip().splitlines()[-1])
    met = through(log, victim.port, killed_at)
    # A GET answered through the node just before it died may have left before
    # the node could confirm it: the owner cannot know the client got it, and
    # ends the session rather than risk a silent loss. So requests that ended
    # in the second before the kill count as exposed too.
    exposed = {
        line.sid for line in through(log, victim.port, killed_at - 1.0) if line.sid is not None
    }
    report_kill(report, met)
    victims, others = report["victims"], report["others"]
    assert victims["clients"] > 0
    assert others["clients"] > 0
    # the killed node's clients reconnected elsewhere and went on
    assert report["victimsBackDetail"] == []
    assert victims["reconnected"] == victims["clients"]
    assert str(victim.proc.pid) not in report["victimsNewOwners"]
    # the others: nothing, unless their request was passing through the killed node
    unexplained = [c for c in report["othersDisturbed"] if not set(c["sids"]) & exposed]
    assert unexplained == [], f"{unexplained}\n{requests_of(log, unexplained, killed_at)}"
    # nothing lost without the client knowing: a client that lost acks was disconnected
    silent = [c for c in report["othersDisturbed"] if c["ackLost"] and not c["disconnects"]]
    assert silent == [], (
        f"acks lost without a disconnect: {silent}\n{requests_of(log, silent, killed_at)}"
    )
    assert others["ackOutOfOrder"] == 0
    assert others["serverOutOfOrder"] == 0


def requests_of(log: list[LogLine], clients: list[dict[str, Any]], killed_at: float) -> str:
    """Every request of these clients' sessions as nginx logged it, timed from the kill:
    what to read when a client was disturbed for no reason the test knows."""
    sids = {sid for client in clients for sid in client["sids"]}
    return "\n".join(
        f"{line.ended - killed_at:+.3f} s (took {line.duration:.3f} s) {outcome(line)} "
        f"via {', '.join(line.upstreams)}: {line.uri}"
        for line in log
        if line.sid in sids
    )


def report_kill(report: dict[str, Any], met: list[LogLine]) -> None:
    """What the kill did, printed for the record (pytest -s): how the other nodes'
    sessions whose requests were passing through the killed node fared."""
    others = report["others"]
    disturbed = report["othersDisturbed"]
    victim_sids = {sid for c in report["victimsDetail"] for sid in c["sids"][:1]}
    outcomes: dict[str, int] = {}
    for line in met:
        if line.sid is not None and line.sid not in victim_sids:
            outcomes[outcome(line)] = outcomes.get(outcome(line), 0) + 1
    reasons: dict[str, int] = {}
    for client in disturbed:
        for d in client["disconnects"]:
            reason = f"{d['reason']}: {d.get('detail')}"
            reasons[reason] = reasons.get(reason, 0) + 1
    print(
        json.dumps(
            {
                "killed": report["killed"],
                "victims": report["victims"]["clients"],
                "victimsReconnectMs": sorted(report["victimsReconnectMs"])[-3:],
                "recoverMs": report["recoverMs"],
                "victimsAckLost": report["victims"]["ackLost"],
                "others": others["clients"],
                "othersDisturbed": len(disturbed),
                "othersDisturbedReasons": reasons,
                "othersAckLost": others["ackLost"],
                "othersLostWithoutDisconnect": [
                    c["lostSeqs"] for c in disturbed if c["ackLost"] and not c["disconnects"]
                ],
                "othersRequestsThroughKilledNode": outcomes,
            }
        )
    )


# --- without Redis -----------------------------------------------------------------------


def request(port: int, method: str, path: str, body: str | None = None) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "text/plain;charset=UTF-8"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_without_redis_unknown_sid_is_400(tmp_path: Path, method: str) -> None:
    """Two in-memory processes behind nginx: the one that does not own a sid answers the
    protocol's 400 "Session ID unknown", as one process does."""
    nginx_binary()
    envs = [app_env(None, None, name) for name in ("a", "b")]
    with single_nodes(envs) as nodes, balancer(tmp_path, [n.port for n in nodes]) as lb:
        status, body = request(lb.port, "GET", "/socket.io/?EIO=4&transport=polling")
        assert status == 200, body
        sid = json.loads(body[1:])["sid"]
        owner = wait_owner(lb, sid)
        stranger = next(n for n in nodes if n.port != owner)
        path = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
        # straight to the process that does not know it
        status, body = request(stranger.port, method, path, "40" if method == "POST" else None)
        assert status == 400
        assert json.loads(body) == {"code": 1, "message": "Session ID unknown"}
        # through nginx: round-robin sends the next request to the other process
        status, body = request(lb.port, method, path, "40" if method == "POST" else None)
        assert status == 400, body
        assert json.loads(body) == {"code": 1, "message": "Session ID unknown"}
        # the owner still has it
        status, body = request(owner, "POST", path, "40")
        assert (status, body) == (200, "ok")


def wait_owner(lb: Balancer, sid: str) -> int:
    """The upstream port that answered the handshake (nginx logs once the request ended)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in lb.log():
            if line.status == 200 and line.method == "GET" and "sid=" not in line.uri:
                return int(line.upstreams[-1].rsplit(":", 1)[1])
        time.sleep(0.02)
    raise AssertionError(f"the handshake of {sid} is not in nginx's log")
