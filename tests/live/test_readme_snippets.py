"""The README's "Use it" snippets, run as written against the server snippet beside them.

The Python server block is executed as a module and served; the Node block runs in Node
(only its port is changed to the test's free port); the browser block is the body of a
page served beside it and opened in Chromium. A python-socketio client in "lobby" sees
what the snippets send and sends them something back.
"""

from __future__ import annotations

import json
import re
import subprocess
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import socketio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.servers import ROOT, require, require_node, serve

pytestmark = [pytest.mark.live, pytest.mark.anyio, pytest.mark.timeout(60)]

README = (ROOT / "README.md").read_text()
CLIENT = ROOT / "client-js"
CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
HAVE_MODULES = (CLIENT / "node_modules").is_dir()
HAVE_PLAYWRIGHT = (CLIENT / "node_modules" / "playwright-core").is_dir()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # python-socketio's client runs on asyncio only


def block(language: str, containing: str) -> str:
    """The README's fenced ``language`` block that contains ``containing``."""
    for body in re.findall(rf"```{language}\n(.*?)```", README, re.S):
        if containing in body:
            return str(body)
    raise AssertionError(f"no {language} block with {containing!r} in README.md")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    code = block("python", "sio = realtime.Server()")
    module = types.ModuleType("readme_use_it")
    exec(compile(code, "README.md", "exec"), module.__dict__)
    page = "<!doctype html>\n" + block("html", 'src="/socket.io/client.js"')

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    # The page needs a route of its own; the snippet's own app is what serves /socket.io/.
    app = module.sio.asgi_app(Starlette(routes=[Route("/", index)]))
    assert module.app is not None
    with serve(app) as base:
        yield base


async def lobby_client(url: str) -> tuple[socketio.AsyncClient, list[Any]]:
    client = socketio.AsyncClient(reconnection=False)
    heard: list[Any] = []
    client.on("chat message", lambda text: heard.append(text))
    await client.connect(url, wait_timeout=5)
    return client, heard


async def until(condition: Any, limit: float = 10) -> None:
    with anyio.fail_after(limit):
        while not condition():  # noqa: ASYNC110 - the state changes in the client's callbacks
            await anyio.sleep(0.02)


def ensure_dist() -> None:
    if not (CLIENT / "dist" / "index.mjs").exists():
        subprocess.run(
            ["node", "scripts/build.mjs", "--no-copy", "--no-types"], cwd=CLIENT, check=True
        )


async def test_node_snippet(url: str) -> None:
    require_node()
    require(HAVE_MODULES, "client-js/node_modules (npm ci in client-js)")
    ensure_dist()
    snippet = block("js", 'from "./client-js/dist/index.mjs"')
    assert "http://127.0.0.1:8000" in snippet
    script = snippet.replace("http://127.0.0.1:8000", url) + (
        "\nconsole.log(JSON.stringify(reply));\nsocket.close();\n"
    )
    client, heard = await lobby_client(url)
    try:
        # --input-type=module: relative imports resolve from the working directory, the repo root
        result = await anyio.run_process(
            ["node", "--input-type=module", "-e", script], cwd=ROOT, check=False
        )
        assert result.returncode == 0, result.stderr.decode()
        assert json.loads(result.stdout.decode().strip()) == "ok"
        await until(lambda: heard == ["hi"])
    finally:
        await client.disconnect()


DRIVER = """
import { chromium } from "playwright-core";
const [url] = process.argv.slice(1);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"], headless: true });
const page = await browser.newPage();
const logs = [];
page.on("console", (m) => { logs.push(m.text()); console.log(m.text()); });
await page.goto(url);
const deadline = Date.now() + 15000;
while (!(logs.includes("ok") && logs.includes("from python")) && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 50));
}
await browser.close();
"""


async def test_browser_snippet(url: str) -> None:
    require_node()
    require(HAVE_CHROMIUM, f"Chromium at {CHROMIUM}")
    require(HAVE_PLAYWRIGHT, "playwright-core in client-js")
    client, heard = await lobby_client(url)
    result: list[subprocess.CompletedProcess[bytes]] = []

    async def drive() -> None:
        command = ["node", "--input-type=module", "-e", DRIVER, url + "/"]
        result.append(await anyio.run_process(command, cwd=CLIENT, check=False))

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(drive)
            # the page says "hi" into the lobby; answer it once heard
            await until(lambda: heard == ["hi"], 20)
            await client.emit("chat message", "from python")
        out = result[0].stdout.decode().splitlines()
        assert result[0].returncode == 0, result[0].stderr.decode()
        assert "ok" in out  # the acknowledgement the page logs
        assert "from python" in out  # the page's handler for others' messages
    finally:
        await client.disconnect()
