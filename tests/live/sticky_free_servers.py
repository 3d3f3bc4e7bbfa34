"""Processes for the sticky-free tests: uvicorn with N workers, or N single-process nodes.

Both run ``tests/live/sticky_free_app.py`` as real processes (uvicorn's command line, the
production flags of the README), on free ports, and are stopped when the block ends: the
master and its workers as one process group, so none outlives the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.servers import PYTHON, ROOT, free_port, require, require_node

APP = "tests.live.sticky_free_app:app"
NODE_DIR = ROOT / "tests" / "node"
#: How long a process (and each of its workers) may take to listen and subscribe.
START_TIMEOUT_S = 30.0


@dataclass
class Node:
    """One uvicorn process on ``port`` (the master, when it has workers)."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def app_env(redis_url: str | None, key: str | None, name: str = "") -> dict[str, str]:
    env = {**os.environ, "REDIS_URL": redis_url or "", "REDIS_KEY": key or "socket.io"}
    env["NODE_NAME"] = name
    env["PYTHONPATH"] = str(ROOT)
    return env


def spawn(port: int, env: dict[str, str], workers: int | None = None) -> Node:
    args = [PYTHON, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port)]
    args += ["--log-level", "warning", "--ws-per-message-deflate", "false"]
    args += ["--timeout-graceful-shutdown", "5"]
    if workers is not None:
        args += ["--workers", str(workers)]
    # Its own process group: the workers are stopped with their master.
    proc = subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)
    return Node(port, proc)


def get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def wait_ready(node: Node, workers: int = 1) -> set[int]:
    """Until ``workers`` distinct pids answer ``/health`` as subscribed; return the pids.

    Each request is a new connection, so the kernel hands it to any worker: asking until
    every worker has answered (bounded) also shows that connections are spread.
    """
    ready: set[int] = set()
    deadline = time.monotonic() + START_TIMEOUT_S
    while len(ready) < workers:
        if node.proc.poll() is not None:
            raise RuntimeError(f"uvicorn on {node.port} exited with {node.proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ready)} of {workers} workers ready on {node.port}")
        with contextlib.suppress(OSError, ValueError):
            health = get_json(node.url + "/health")
            if health["subscribed"]:
                ready.add(int(health["pid"]))
                continue
        time.sleep(0.05)
    return ready


def stop(node: Node) -> None:
    if node.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            node.proc.wait(15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.proc.pid, signal.SIGKILL)  # any worker left behind
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.proc.wait(5)


@contextlib.contextmanager
def worker_server(env: dict[str, str], workers: int) -> Iterator[tuple[Node, set[int]]]:
    """``uvicorn --workers N``; yield the master and the workers' pids once all are ready."""
    node = spawn(free_port(), env, workers)
    try:
        yield node, wait_ready(node, workers)
    finally:
        stop(node)


@contextlib.contextmanager
def single_nodes(envs: list[dict[str, str]]) -> Iterator[list[Node]]:
    """One single-process uvicorn per env, each on its own port (its pid serves it)."""
    nodes: list[Node] = []
    try:
        for env in envs:
            nodes.append(spawn(free_port(), env))
        for node in nodes:
            wait_ready(node)
        yield nodes
    finally:
        for node in nodes:
            stop(node)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def client_script() -> tuple[str, list[str]]:
    """node and the script's path, or skip (fail under CI=true) when they are missing."""
    node = require_node()
    require((NODE_DIR / "node_modules" / "socket.io-client").is_dir(), "npm ci in tests/node")
    return node, [node, "sticky_free.mjs"]


def run_clients(url: str, *options: str, timeout_s: float = 55.0) -> dict[str, Any]:
    """Run tests/node/sticky_free.mjs to its end; return its JSON summary."""
    _, command = client_script()
    limit = str(int((timeout_s - 5) * 1000))
    run = subprocess.run(
        [*command, "--url", url, "--timeout", limit, *options],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    report: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return report
