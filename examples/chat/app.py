"""Chat demo: nicknames, rooms, typing indicator, join/leave notices.

    python examples/chat/app.py            # http://127.0.0.1:8000

Uses only this package's server (in-memory adapter) and its browser client, served
at /socket.io/client.js. Query parameters of the page: ``nick``, ``room``, and
``transports`` (e.g. ``?transports=polling``).

    python examples/chat/app.py --admin    # also the Socket.IO Admin UI, no login

With ``--admin`` the server is instrumented for the Admin UI, and the UI's page is
served at /admin-ui/ when npm has installed ``@socket.io/admin-ui`` (``npm ci``
in tests/node); log in there with the server URL http://127.0.0.1:8000.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.responses import FileResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import realtime
from realtime import Server, Socket

HERE = Path(__file__).resolve().parent
#: Where npm puts the Admin UI's built page (never committed: it comes from the npm package).
ADMIN_UI_DIRS = [
    HERE.parents[1] / base / "node_modules/@socket.io/admin-ui/ui/dist"
    for base in ("examples/chat", "tests/node", "client-js")
]
DEFAULT_ROOM = "lobby"

sio = Server(ping_interval=5.0, ping_timeout=5.0, connection_state_recovery=True)


def clean(value: Any, default: str, limit: int = 32) -> str:
    text = str(value or "").strip()[:limit]
    return text or default


def room_of(socket: Socket) -> str | None:
    return socket.data.get("room")


async def room_list() -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    for socket in sio.main.sockets.values():
        room = room_of(socket)
        if room:
            counts[room] = counts.get(room, 0) + 1
    counts.setdefault(DEFAULT_ROOM, 0)
    return [{"name": name, "members": n} for name, n in sorted(counts.items())]


def members(room: str) -> list[str]:
    sockets = sio.main.sockets.values()
    return sorted(s.data["nick"] for s in sockets if room_of(s) == room)


async def notice(room: str, text: str) -> None:
    await sio.to(room).emit("notice", {"room": room, "text": text, "ts": time.time()})


async def enter(socket: Socket, room: str) -> None:
    old = room_of(socket)
    if old == room:
        return
    if old:
        await socket.leave(old)
        socket.data["room"] = None
        await notice(old, f"{socket.data['nick']} left {old}")
    await socket.join(room)
    socket.data["room"] = room
    await notice(room, f"{socket.data['nick']} joined {room}")
    await sio.emit("rooms", await room_list())


@sio.on("connect")
async def connect(socket: Socket, auth: dict[str, Any]) -> None:
    if socket.recovered:
        # Back after a lost connection: same nick and room, missed messages replayed.
        room = room_of(socket)
        if room:
            await notice(room, f"{socket.data['nick']} is back in {room}")
        await sio.emit("rooms", await room_list())
        return
    socket.data["nick"] = clean(auth.get("nick"), "guest-" + socket.id[:4])
    socket.data["room"] = None
    await enter(socket, clean(auth.get("room"), DEFAULT_ROOM))


@sio.on("join")
async def join(socket: Socket, room: str) -> dict[str, Any]:
    room = clean(room, DEFAULT_ROOM)
    await enter(socket, room)
    return {"room": room, "members": members(room)}


@sio.on("nick")
async def nick(socket: Socket, new: str) -> str:
    old, socket.data["nick"] = socket.data["nick"], clean(new, socket.data["nick"])
    room = room_of(socket)
    if room and old != socket.data["nick"]:
        await notice(room, f"{old} is now {socket.data['nick']}")
    return socket.data["nick"]


@sio.on("rooms")
async def rooms(socket: Socket) -> list[dict[str, Any]]:
    return await room_list()


@sio.on("members")
async def room_members(socket: Socket) -> list[str]:
    room = room_of(socket)
    return members(room) if room else []


@sio.on("message")
async def message(socket: Socket, text: str) -> str:
    room = room_of(socket)
    if not room:
        return "no room"
    nick = socket.data["nick"]
    text = clean(text, "", 2000)
    # "from" lets each page mark its own messages (a nickname can be taken twice).
    payload = {"room": room, "nick": nick, "from": socket.id, "text": text, "ts": time.time()}
    await sio.to(room).emit("message", payload)
    return "ok"


@sio.on("typing")
async def typing(socket: Socket, active: bool) -> None:
    room = room_of(socket)
    if room:
        await socket.to(room).emit("typing", {"nick": socket.data["nick"], "typing": bool(active)})


@sio.on("disconnecting")
async def disconnecting(socket: Socket, reason: str) -> None:
    # socket.data keeps the room: a session that was only lost is taken up with it.
    room = room_of(socket)
    if room:
        await socket.to(room).emit("typing", {"nick": socket.data["nick"], "typing": False})
        await notice(room, f"{socket.data['nick']} left {room}")


@sio.on("disconnect")
async def disconnect(socket: Socket, reason: str) -> None:
    await sio.emit("rooms", await room_list())


async def index(request: Any) -> FileResponse:
    return FileResponse(HERE / "index.html", headers={"Cache-Control": "no-store"})


def admin_ui_routes() -> list[Route | Mount]:
    """The Admin UI's page at /admin-ui/, when npm has installed it."""
    for folder in ADMIN_UI_DIRS:
        if (folder / "index.html").is_file():
            return [Mount("/admin-ui", StaticFiles(directory=folder, html=True))]
    return []


app = sio.asgi_app(Starlette(routes=[Route("/", index), *admin_ui_routes()]))


def greeting(host: str, port: int) -> str:
    """What `make demo` prints: where the chat is and what to try there."""
    url = f"http://{host}:{port}/"
    return "\n".join(
        [
            f"realtime chat demo: open {url}",
            f"  - open it in two tabs (or {url}?nick=ann&room=lobby and ?nick=bob) and chat;",
            f"  - {url}?transports=polling keeps a tab on HTTP long-polling;",
            "  - stop the server (Ctrl-C) and start it again: the tabs reconnect.",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--admin", action="store_true", help="instrument for the Admin UI")
    args = parser.parse_args()
    print(greeting(args.host, args.port), flush=True)
    if args.admin:
        sio.instrument(auth=False, mode="development")
        print(f"Admin UI: http://{args.host}:{args.port}/admin-ui/")
    realtime.run(app, host=args.host, port=args.port, log_level="warning")
