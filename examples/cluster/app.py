"""The chat demo as one node of a cluster: run several, behind any load balancer.

    python examples/cluster/app.py --port 8001 --redis redis://127.0.0.1:6379
    python examples/cluster/app.py --port 8002 --redis redis://127.0.0.1:6379

or several workers of one uvicorn; no sticky sessions are needed, for WebSocket
or long-polling clients (a request for another worker's session is tunnelled to
it over Redis)::

    REDIS_URL=redis://127.0.0.1:6379 uvicorn examples.cluster.app:app --workers 4

Messages, notices and typing indicators cross nodes through Redis; the room
list and member counts shown are those of the node a client is on.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import realtime
from examples.chat import app as chat
from realtime.adapters.redis import RedisAdapter

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")


def use_redis(url: str) -> None:
    """Give the chat server the Redis adapter (before it starts: no socket exists yet)."""
    factory = RedisAdapter.factory(url=url)
    chat.sio.adapter_factory = factory
    for namespace in chat.sio.namespaces.values():
        namespace.adapter = factory(namespace)


use_redis(REDIS_URL)
app = chat.app

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--redis", default=REDIS_URL)
    args = parser.parse_args()
    if args.redis != REDIS_URL:
        use_redis(args.redis)
    realtime.run(app, host=args.host, port=args.port, log_level="warning")
