"""The Socket.IO Admin UI (``@socket.io/admin-ui`` 0.5) against ``sio.instrument()``.

Its protocol with the official socket.io-client (tests/node/admin_scenario.mjs),
and its own page in Chromium, served by the chat demo from node_modules
(client-js/test/browser/admin_ui.mjs), both against a real uvicorn.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from realtime import Server, Socket
from tests.servers import ROOT, require, require_node, serve

try:
    import bcrypt
except ImportError:  # a test dependency: skipped locally, a failure under CI=true
    require(False, "bcrypt is not installed: pip install -e '.[test]'")

pytestmark = [pytest.mark.live, pytest.mark.node, pytest.mark.timeout(120)]

NODE_DIR = ROOT / "tests" / "node"
CHROMIUM = Path("/usr/bin/chromium")
USER, PASSWORD = "admin", "s3cret pass"
# Four rounds: the test checks the hash, not its cost.
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
AUTH = {"type": "basic", "username": USER, "password": HASH}


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def make_server(**options: Any) -> Server:
    sio = Server()

    @sio.on("connect")
    async def connect(socket: Socket, auth: dict[str, Any]) -> None:
        await socket.join(str(auth.get("room", "lobby")))

    @sio.on("shout")
    async def shout(socket: Socket, *args: Any) -> None:
        return None

    sio.instrument(auth=AUTH, stats_interval=0.2, **options)
    return sio


def run_scenario(name: str, url: str, *more: str) -> Any:
    node = require_node()
    admin_ui = NODE_DIR / "node_modules" / "@socket.io" / "admin-ui"
    require(admin_ui.is_dir(), "npm ci in tests/node")
    proc = subprocess.run(
        [node, "admin_scenario.mjs", name, url, USER, PASSWORD, *more],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"scenario {name} failed:\n{proc.stderr}\n{proc.stdout}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_login_list_watch_disconnect() -> None:
    sio = make_server(mode="development")
    with serve(sio.asgi_app()) as url:
        result = run_scenario("login", url)
        # The users' sockets are gone, and nothing of them is left in the monitor (the
        # node process may exit before its last admin connection says goodbye).
        monitor = sio.monitor
        assert monitor is not None
        wait_for(lambda: not any(nsp == "/" for nsp, _ in monitor.seen))
        assert not sio.main.sockets
    assert len(result["session"]) == 16
    assert {"JOIN", "LEAVE", "DISCONNECT", "MDISCONNECT", "ALL_EVENTS"} <= set(result["features"])
    listed = result["listed"]
    assert listed["nsp"] == "/"
    assert listed["transport"] in ("polling", "websocket")
    assert set(listed["rooms"]) == {listed["id"], "kitchen"}
    assert listed["handshake"]["address"] == "127.0.0.1"
    stats = result["stats"]
    assert stats["clientsCount"] >= 1
    assert stats["serverId"]
    assert {"name": "/", "socketsCount": 1} in stats["namespaces"]
    assert result["event"] == {"nsp": "/", "args": ["shout", "hello", 42]}
    assert result["reason"] == "server namespace disconnect"
    assert result["clientReason"] == "io server disconnect"
    assert result["sessionLogin"] is True


def test_wrong_credentials_refused() -> None:
    with serve(make_server().asgi_app()) as url:
        result = run_scenario("wrong-password", url)
    assert result["errors"] == ["invalid credentials"] * 3


def test_read_only_refuses_actions() -> None:
    sio = make_server(read_only=True)
    with serve(sio.asgi_app()) as url:
        result = run_scenario("read-only", url)
    assert result["features"] == ["AGGREGATED_EVENTS", "ALL_EVENTS"]
    assert result["connected"] is True
    assert "attic" not in result["rooms"]
    assert result["booed"] is False


def load_chat() -> Any:
    spec = importlib.util.spec_from_file_location("chat_admin_ui", ROOT / "examples/chat/app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_admin_ui_page_in_chromium() -> None:
    node = require_node()
    require(CHROMIUM.exists(), f"Chromium not found at {CHROMIUM}")
    require((ROOT / "client-js/node_modules/playwright-core").is_dir(), "npm ci in client-js")
    dist = NODE_DIR / "node_modules/@socket.io/admin-ui/ui/dist/index.html"
    require(dist.is_file(), "npm ci in tests/node (the Admin UI's page)")
    chat = load_chat()
    chat.sio.instrument(auth=AUTH, mode="development")
    with serve(chat.app) as url:
        proc = subprocess.run(
            [node, "test/browser/admin_ui.mjs", url, USER, PASSWORD],
            cwd=ROOT / "client-js",
            capture_output=True,
            text=True,
            timeout=100,
            check=False,
        )
        assert proc.returncode == 0, f"browser script failed:\n{proc.stderr}\n{proc.stdout}"
        seen = json.loads(proc.stdout.strip().splitlines()[-1])
        steps = {step["name"]: step for step in seen["steps"]}
        alice = steps["chat connected"]["aliceId"]
        wait_for(lambda: alice not in chat.sio.main.sockets)
    assert "WebSocket" in steps["socket listed"]["row"]
    details = steps["socket details"]["details"]
    assert "Transport WebSocket" in details
    rooms = details.split("Rooms ID ", 1)[1].split(" Rows per page", 1)[0]
    assert sorted(rooms.split()) == sorted([alice, "kitchen"])
    assert '"nick": "alice"' in details
    assert "Event received Event name: nick" in steps["events"]["events"]
    assert steps["disconnected from the UI"]["reasons"] == ["io server disconnect"]


def test_cluster_of_two_nodes() -> None:
    """Both nodes instrumented over the Redis adapter: a UI on node A sees A and B, a user
    of B connecting, and disconnects it (the action crosses to B through the adapter)."""
    from tests.live.redis_servers import require_shared_redis, unique_key

    sys.path.insert(0, str(ROOT / "examples" / "cluster"))
    from node import build

    redis, key = require_shared_redis(), unique_key()
    nodes = []
    for name in ("node-a", "node-b"):
        sio, app = build(redis, name, key=key)
        sio.instrument(auth=AUTH, server_id=name, stats_interval=0.2)
        nodes.append(app)
    with serve(nodes[0]) as url_a, serve(nodes[1]) as url_b:
        result = run_scenario("cluster", url_a, url_b)
    assert result["servers"] == ["node-a", "node-b"]
    assert result["listed"]["data"] == {"node": "node-b"}
    assert result["listed"]["rooms"] == [result["listed"]["id"]]
    assert result["reason"] == "server namespace disconnect"
    assert result["clientReason"] == "io server disconnect"
    # A user of node B connected before the UI logged in to node A is listed at login,
    # with the transport and client id its own node recorded.
    earlier = result["earlier"]
    assert earlier is not None, "a socket of the other node is missing from all_sockets"
    assert earlier["nsp"] == "/"
    assert earlier["transport"] == "websocket"
    assert earlier["data"] == {"node": "node-b"}
    assert len(earlier["clientId"]) == 12


def test_admin_ui_page_against_two_nodes() -> None:
    """The UI's page, served by node A, logged in to A: the Servers page lists A and B."""
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from tests.live.redis_servers import require_shared_redis, unique_key

    node = require_node()
    require(CHROMIUM.exists(), f"Chromium not found at {CHROMIUM}")
    require((ROOT / "client-js/node_modules/playwright-core").is_dir(), "npm ci in client-js")
    dist = NODE_DIR / "node_modules/@socket.io/admin-ui/ui/dist"
    require((dist / "index.html").is_file(), "npm ci in tests/node (the Admin UI's page)")
    sys.path.insert(0, str(ROOT / "examples" / "cluster"))
    from node import build

    redis, key = require_shared_redis(), unique_key()
    sio_a, _ = build(redis, "node-a", key=key)
    sio_b, app_b = build(redis, "node-b", key=key)
    sio_a.instrument(auth=AUTH, server_id="node-a")
    sio_b.instrument(auth=AUTH, server_id="node-b")
    # Node A also serves the UI's page (same origin: no CORS needed).
    page = Starlette(routes=[Mount("/admin-ui", StaticFiles(directory=dist, html=True))])
    with serve(sio_a.asgi_app(page)) as url_a, serve(app_b):
        proc = subprocess.run(
            [node, "test/browser/admin_ui_cluster.mjs", url_a, USER, PASSWORD],
            cwd=ROOT / "client-js",
            capture_output=True,
            text=True,
            timeout=100,
            check=False,
        )
    assert proc.returncode == 0, f"browser script failed:\n{proc.stderr}\n{proc.stdout}"
    servers = json.loads(proc.stdout.strip().splitlines()[-1])["servers"]
    assert "node-a" in servers
    assert "node-b" in servers
