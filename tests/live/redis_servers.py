"""Redis for the cluster tests: the shared one at 127.0.0.1:6379, or a private one.

A private ``redis-server`` on a free port (no persistence) lets a test stop and
start Redis under a running cluster; cluster nodes run as separate processes.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

from tests.servers import PYTHON, ROOT, free_port, require

SHARED_REDIS = ("127.0.0.1", 6379)
NODE_SCRIPT = ROOT / "tests" / "live" / "cluster_node.py"


def redis_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), 0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def require_shared_redis() -> str:
    require(redis_up(*SHARED_REDIS), "Redis is not running at 127.0.0.1:6379")
    return f"redis://{SHARED_REDIS[0]}:{SHARED_REDIS[1]}"


def unique_key() -> str:
    """A channel prefix of this test only: other runs on the same Redis stay apart."""
    return f"test-{uuid.uuid4().hex[:10]}"


class RedisServer:
    """A private redis-server on a free port that a test can stop and start again."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        require(binary is not None, "redis-server is not installed")
        assert binary is not None
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not redis_up("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_until(check: Any, what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def healthy(base: str) -> bool:
    with contextlib.suppress(OSError, ValueError):
        return bool(get_json(base + "/health")["subscribed"])
    return False


@contextlib.contextmanager
def cluster_nodes(
    redis_url: str, names: list[str], key: str, *extra: str
) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """Start one node process per name; yield ``(base URL, process)`` once all listen."""
    nodes: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for name in names:
            port = free_port()
            args = [
                PYTHON,
                str(NODE_SCRIPT),
                "--port",
                str(port),
                "--redis",
                redis_url,
                "--name",
                name,
                "--key",
                key,
                *extra,
            ]
            nodes.append((f"http://127.0.0.1:{port}", subprocess.Popen(args, cwd=ROOT)))
        for base, proc in nodes:

            def up(base: str = base, proc: subprocess.Popen[bytes] = proc) -> bool:
                if proc.poll() is not None:
                    raise RuntimeError(f"node {base} exited with {proc.returncode}")
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), 0.2),
                ):
                    return True
                return False

            wait_until(up, f"node {base} to listen")
        yield nodes
    finally:
        for _, proc in nodes:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in nodes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
