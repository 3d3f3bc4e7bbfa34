"""Reference target: a raw Starlette WebSocket endpoint on uvicorn.

This is the floor any ASGI implementation pays: every text frame is echoed;
a frame starting with ``42["bcast"`` is sent to every connected client
instead (one ``send_text`` after another, the plainest broadcast).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

clients: set[WebSocket] = set()


async def endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    try:
        while True:
            text = await websocket.receive_text()
            if text.startswith('42["bcast"'):
                for client in list(clients):
                    try:
                        await client.send_text(text)
                    except Exception:  # a client that went away mid-broadcast
                        clients.discard(client)
            else:
                await websocket.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        clients.discard(websocket)


app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
