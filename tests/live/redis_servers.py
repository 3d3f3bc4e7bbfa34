"""Redis for the cluster tests: the shared one at 127.0.0.1:6379, or a private one.

A private ``redis-server`` on a free port (no persistence) lets a test stop and
start Redis under a running cluster; cluster nodes run as separate processes.
"""

from __future__ import annotations

import contextlib
import json
import random
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


def _spawn_redis(binary: str, port: int, workdir: str, *extra: str) -> subprocess.Popen[bytes]:
    args = [binary, *extra, "--port", str(port), "--bind", "127.0.0.1"]
    args += ["--save", "", "--appendonly", "no", "--dir", workdir]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


def _wait_redis(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while not redis_up("127.0.0.1", port):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"redis-server on {port} did not start")
        time.sleep(0.02)


def redis_cli(*args: str) -> str:
    cli = shutil.which("redis-cli")
    require(cli is not None, "redis-cli is not installed")
    assert cli is not None
    run = subprocess.run([cli, *args], capture_output=True, text=True, timeout=20)
    if run.returncode != 0:
        raise RuntimeError(f"redis-cli {args}: {run.stdout} {run.stderr}")
    return run.stdout


def _binary() -> str:
    binary = shutil.which("redis-server")
    require(binary is not None, "redis-server is not installed")
    assert binary is not None
    return binary


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        if _port_free(port) and _port_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


@contextlib.contextmanager
def redis_cluster(masters: int = 3) -> Iterator[list[int]]:
    """A Redis Cluster of ``masters`` primaries, no replicas, on free ports; yield the ports."""
    import tempfile

    binary = _binary()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as workdir:
        try:
            ports = [free_cluster_port() for _ in range(masters)]
            for port in ports:
                cluster_args = ["--cluster-enabled", "yes"]
                cluster_args += ["--cluster-config-file", f"nodes-{port}.conf"]
                procs.append(_spawn_redis(binary, port, workdir, *cluster_args))
            for port, proc in zip(ports, procs, strict=True):
                _wait_redis(port, proc)
            nodes = [f"127.0.0.1:{port}" for port in ports]
            redis_cli("--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes")

            def ready() -> bool:
                return all(
                    "cluster_state:ok" in redis_cli("-p", str(port), "cluster", "info")
                    for port in ports
                )

            wait_until(ready, "the Redis Cluster to be ok")
            yield ports
        finally:
            _stop_all(procs)


class SentinelSetup:
    """A primary, optionally a replica, and one Sentinel watching them as ``mymaster``."""

    def __init__(self, workdir: str, *, replica: bool) -> None:
        self.binary = _binary()
        self.workdir = workdir
        self.primary_port = free_port()
        self.replica_port = free_port() if replica else None
        self.sentinel_port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel_port}/mymaster"

    def start(self) -> None:
        proc = _spawn_redis(self.binary, self.primary_port, self.workdir)
        self.procs.append(proc)
        _wait_redis(self.primary_port, proc)
        if self.replica_port is not None:
            replica_of = ["--replicaof", "127.0.0.1", str(self.primary_port)]
            proc = _spawn_redis(self.binary, self.replica_port, self.workdir, *replica_of)
            self.procs.append(proc)
            _wait_redis(self.replica_port, proc)
        conf = f"{self.workdir}/sentinel.conf"
        with open(conf, "w") as f:
            f.write(
                f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor mymaster 127.0.0.1 {self.primary_port} 1\n"
                "sentinel down-after-milliseconds mymaster 1000\n"
                "sentinel failover-timeout mymaster 5000\n"
            )
        proc = subprocess.Popen(
            [self.binary, conf, "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.procs.append(proc)
        _wait_redis(self.sentinel_port, proc)

    def primary(self) -> int:
        out = redis_cli(
            "-p", str(self.sentinel_port), "sentinel", "get-master-addr-by-name", "mymaster"
        )
        return int(out.split()[1])

    def replicas(self) -> int:
        """How many replicas the Sentinel knows of (it finds them from the primary's INFO)."""
        fields = self.sentinel("master", "mymaster").split()
        return int(fields[fields.index("num-slaves") + 1])

    def sentinel(self, *args: str) -> str:
        return redis_cli("-p", str(self.sentinel_port), "sentinel", *args)

    def stop(self) -> None:
        _stop_all(self.procs)


@contextlib.contextmanager
def redis_sentinel(*, replica: bool = False) -> Iterator[SentinelSetup]:
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        setup = SentinelSetup(workdir, replica=replica)
        try:
            setup.start()
            yield setup
        finally:
            setup.stop()
