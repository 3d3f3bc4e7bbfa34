"""Echo server configured as the public engine.io-protocol test suite expects.

python examples/conformance/engineio_server.py [--port 3000]
"""

from __future__ import annotations

import argparse

import realtime
from realtime.engineio import CloseReason, EngineConfig, EngineServer, EngineSession


class Echo:
    async def on_connect(self, session: EngineSession) -> None:
        pass

    async def on_message(self, session: EngineSession, data: str | bytes) -> None:
        session.send(data)

    async def on_disconnect(self, session: EngineSession, reason: CloseReason) -> None:
        pass


app = EngineServer(
    Echo(),
    EngineConfig(
        path="/engine.io/",
        ping_interval=0.3,
        ping_timeout=0.2,
        max_payload=1_000_000,
        cors_origins="*",
    ),
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args()
    realtime.run(app, host=args.host, port=args.port, log_level="warning")
