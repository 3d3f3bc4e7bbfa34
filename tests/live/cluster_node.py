"""examples/cluster/node.py plus handlers that expose the rest of the cluster API to clients.

python tests/live/cluster_node.py --port N --redis URL --name NAME
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "cluster"))

from node import build  # noqa: E402

import realtime  # noqa: E402
from realtime import Socket  # noqa: E402
from realtime.adapters.cluster import RemoteSocket  # noqa: E402
from realtime.exceptions import ClusterTimeoutError, RealtimeError  # noqa: E402


def make(
    redis: str,
    name: str,
    key: str,
    requests_timeout: float = 5.0,
    namespaces: Sequence[str] = (),
) -> Any:
    """The node's ASGI app: the reference handlers and the ones below.

    Each of ``namespaces`` only greets its sockets with ``hello`` (as the Node twin's).
    """
    sio, app = build(redis, name, key=key, requests_timeout=requests_timeout)
    notes: list[list[Any]] = []

    @sio.on_server("note")
    def note(*args: Any) -> None:
        notes.append(list(args))

    @sio.on("notes")
    async def get_notes(socket: Socket) -> list[list[Any]]:
        return notes

    @sio.on("rooms")
    async def rooms(socket: Socket) -> list[str]:
        return sorted(socket.rooms)

    async def greet(socket: Socket, auth: Any) -> None:
        await socket.emit("hello", name)

    for namespace in namespaces:
        sio.of(namespace).on("connect", greet)

    @sio.on("sockets-join")
    async def sockets_join(socket: Socket, room: str, target: str) -> bool:
        await sio.in_(room).sockets_join(target)
        return True

    @sio.on("sockets-leave")
    async def sockets_leave(socket: Socket, room: str, target: str) -> bool:
        await sio.in_(room).sockets_leave(target)
        return True

    @sio.on("disconnect-room")
    async def disconnect_room(socket: Socket, room: str) -> bool:
        await sio.in_(room).disconnect_sockets(True)
        return True

    @sio.on("remote-emit")
    async def remote_emit(socket: Socket, event: str, *payload: Any) -> int:
        remote = [s for s in await sio.fetch_sockets() if isinstance(s, RemoteSocket)]
        for other in remote:
            await other.emit(event, *payload)
        return len(remote)

    @sio.on("remote-join")
    async def remote_join(socket: Socket, room: str) -> int:
        remote = [s for s in await sio.fetch_sockets() if isinstance(s, RemoteSocket)]
        for other in remote:
            await other.join(room)
        return len(remote)

    @sio.on("remote-disconnect")
    async def remote_disconnect(socket: Socket, sid: str) -> bool:
        for other in await sio.fetch_sockets():
            if other.id == sid and isinstance(other, RemoteSocket):
                await other.disconnect(True)
                return True
        return False

    @sio.on("local-count")
    async def local_count(socket: Socket) -> int:
        return len(await sio.local.fetch_sockets())

    @sio.on("all-rooms")
    async def all_rooms(socket: Socket) -> list[str]:
        return sorted(await sio.main.all_rooms())

    @sio.on("details")
    async def details(socket: Socket) -> list[dict[str, Any]]:
        found = []
        for s in await sio.fetch_sockets():
            hs = s.handshake if isinstance(s, RemoteSocket) else {"url": s.handshake.url}  # type: ignore[attr-defined]
            found.append({"id": s.id, "rooms": sorted(s.rooms), "data": s.data, "url": hs["url"]})
        return sorted(found, key=lambda d: d["id"])

    @sio.on("publish-status")
    async def publish_status(socket: Socket, *payload: Any) -> str:
        try:
            await sio.emit("broadcast", *payload)
        except RealtimeError as exc:
            return type(exc).__name__
        return "ok"

    @sio.on("count-detail")
    async def count_detail(socket: Socket) -> dict[str, Any]:
        try:
            return {"count": len(await sio.fetch_sockets())}
        except ClusterTimeoutError as exc:
            return {
                "error": type(exc).__name__,
                "message": str(exc),
                "partial": len(exc.responses),
                "expected": exc.expected,
                "received": exc.received,
            }

    @sio.on("server-note")
    async def server_note(socket: Socket, *payload: Any) -> int:
        return await sio.server_side_emit("note", *payload)

    @sio.on("local-broadcast")
    async def local_broadcast(socket: Socket, *payload: Any) -> None:
        await sio.local.emit("broadcast", *payload)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--key", default="socket.io")
    parser.add_argument("--requests-timeout", type=float, default=5.0)
    parser.add_argument("--namespace", action="append", default=[])
    args = parser.parse_args()
    app = make(args.redis, args.name, args.key, args.requests_timeout, args.namespace)
    realtime.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
