"""Run a real server on a free 127.0.0.1 port for live tests.

The server runs in its own thread and event loop, so a test can drive it from
asyncio, trio or plain blocking code, and nothing is shared with the test's loop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def require(condition: bool, why: str) -> None:
    """Skip when a real dependency is missing, but fail under CI=true."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing test dependency under CI=true: {why}")
    pytest.skip(why)


def require_node() -> str:
    node = shutil.which("node")
    require(node is not None, "node is not installed")
    assert node is not None
    return node


def node_json(script: str, *args: str, package: str) -> Any:
    """Run ``tests/node/<script>`` (it needs npm ``package``); the JSON it prints."""
    node = require_node()
    node_dir = ROOT / "tests" / "node"
    require((node_dir / "node_modules" / package).is_dir(), "npm ci in tests/node")
    done = subprocess.run(
        [node, script, *args], cwd=node_dir, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    import json

    return json.loads(done.stdout)


@contextlib.contextmanager
def serve(app: Any, *, port: int | None = None, **uvicorn_options: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yield ``http://127.0.0.1:<port>``."""
    port = port or free_port()
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "on"}
    # UVICORN_WS (what uvicorn's command line reads too): run the suite on another
    # WebSocket implementation, e.g. wsproto.
    if os.environ.get("UVICORN_WS"):
        options["ws"] = os.environ["UVICORN_WS"]
    options.update(uvicorn_options)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextlib.contextmanager
def serve_process(
    args: list[str], *, port: int | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``args + ['--port', port]`` as a subprocess; yield its base URL once it accepts."""
    with spawn_process(args, port=port, env=env) as (url, _):
        yield url


@contextlib.contextmanager
def spawn_process(
    args: list[str], *, port: int | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`serve_process` that also yields the process (a test may kill it)."""
    port = port or free_port()
    proc = subprocess.Popen([*args, "--port", str(port)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{args} exited with {proc.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args} did not listen on {port}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


PYTHON = sys.executable
