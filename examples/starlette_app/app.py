"""A Starlette app with realtime beside it: chat rooms, and an HTTP route that emits.

    python -m examples.starlette_app.app        # http://127.0.0.1:8001 (the chat demo has 8000)
    uvicorn examples.starlette_app.app:app --port 8001

Open http://127.0.0.1:8001/ in two tabs, then
``curl -X POST localhost:8001/rooms/lobby/notify -d '{"text": "hi"}'``.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

import realtime
from realtime import Server, Socket

PORT = 8001  # not 8000: that is the chat demo's (make demo)

sio = Server()


@sio.on("connect")
async def connect(socket: Socket, auth: dict[str, Any]) -> None:
    socket.data["name"] = auth.get("name", "anonymous")
    await socket.join(auth.get("room", "lobby"))


@sio.on("chat message")
async def chat_message(socket: Socket, text: str) -> str:
    for room in socket.rooms - {socket.id}:
        await socket.to(room).emit("chat message", socket.data["name"], text)
    return "delivered"


@sio.on("disconnect")
async def disconnect(socket: Socket, reason: str) -> None:
    await sio.emit("left", socket.data["name"], reason)


async def notify(request: Request) -> JSONResponse:
    """An ordinary HTTP route reaching the sockets of a room."""
    body = await request.json()
    room = request.path_params["room"]
    await sio.to(room).emit("notice", body)
    return JSONResponse({"room": room, "sent": True})


async def online(request: Request) -> JSONResponse:
    sockets = await sio.fetch_sockets()
    return JSONResponse(sorted(s.data.get("name", "") for s in sockets))


PAGE = """<!doctype html>
<meta charset="utf-8">
<title>realtime beside Starlette</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 16px; }
  #log { list-style: none; padding: 0; }
  #log li.mine { color: #2b6cb0; }
  #log li.notice { color: #718096; font-style: italic; }
</style>
<p>You are <b id="me"></b>. Open this page in a second tab, or POST to
<code>/rooms/lobby/notify</code> to send a notice.</p>
<ul id="log"></ul>
<form id="f"><input id="m" autocomplete="off" placeholder="Message"><button>Send</button></form>
<script src="/socket.io/client.js"></script>
<script>
  const name = "guest-" + Math.floor(Math.random() * 1000);
  document.getElementById("me").textContent = name;
  const socket = io({ auth: { name } });
  const log = (text, kind) => {
    const li = document.createElement("li");
    li.className = kind;
    li.textContent = text;
    document.getElementById("log").append(li);
    return li;
  };
  socket.on("chat message", (who, text) => log(who + ": " + text, "message"));
  socket.on("notice", (body) => {
    const text = body && typeof body.text === "string" ? body.text : JSON.stringify(body);
    log("notice: " + text, "notice");
  });
  socket.on("left", (who, reason) => log(who + " left (" + reason + ")", "notice"));
  document.getElementById("f").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = document.getElementById("m");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    // The server sends a message to the others in the room; show ours here, ticked on its ack.
    const li = log("me: " + text, "mine");
    socket.emit("chat message", text, (ack) => {
      if (ack === "delivered") li.textContent += " ✓";
    });
  });
</script>
"""


async def homepage(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.ready = True
    yield
    app.state.ready = False


web = Starlette(
    routes=[
        Route("/", homepage),
        Route("/online", online),
        Route("/rooms/{room}/notify", notify, methods=["POST"]),
    ],
    lifespan=lifespan,
)

# Socket.IO at /socket.io/ (and its client bundle at /socket.io/client.js); the rest is Starlette.
app = sio.asgi_app(web)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=PORT)
    args = parser.parse_args()
    print(f"realtime beside Starlette: open http://{args.host}:{args.port}/", flush=True)
    realtime.run(app, host=args.host, port=args.port, log_level="warning")
