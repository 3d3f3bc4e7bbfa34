"""A Starlette app with realtime beside it: chat rooms, and an HTTP route that emits.

    uvicorn examples.starlette_app.app:app --port 8000

Open http://127.0.0.1:8000/ in two tabs, then
``curl -X POST localhost:8000/rooms/lobby/notify -d '{"text": "hi"}'``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from realtime import Server, Socket

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
<title>realtime chat</title>
<ul id="log"></ul>
<form id="f"><input id="m" autocomplete="off"><button>Send</button></form>
<script src="/socket.io/client.js"></script>
<script>
  const socket = io({ auth: { name: "guest-" + Math.floor(Math.random() * 1000) } });
  const log = (text) => {
    const li = document.createElement("li");
    li.textContent = text;
    document.getElementById("log").append(li);
  };
  socket.on("chat message", (who, text) => log(who + ": " + text));
  socket.on("notice", (body) => log("notice: " + JSON.stringify(body)));
  document.getElementById("f").addEventListener("submit", (e) => {
    e.preventDefault();
    socket.emit("chat message", document.getElementById("m").value);
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
