"""A cluster of Node socket.io nodes on Redis, and official clients to watch it.

``node_twins`` starts ``tests/node/cluster/node-twin.mjs`` processes (socket.io
4.8 with ``@socket.io/redis-adapter`` 8.3); :class:`NodeClients` drives
``socket.io-client`` clients in one Node process and records everything they
receive, so a test acts on the cluster and then waits for what clients saw.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tests.servers import ROOT, free_port

CLUSTER_DIR = ROOT / "tests" / "node" / "cluster"
WAIT = 10.0

Message = dict[str, Any]


@contextlib.contextmanager
def node_twin(
    node: str, *, name: str, key: str, redis_url: str, extra: Sequence[str] = ()
) -> Iterator[str]:
    """One Node node; yields its URL once it listens and its adapter has subscribed.

    ``extra``: more arguments (``--adapter streams``, ``--recovery``...).
    """
    port = free_port()
    args = [node, str(CLUSTER_DIR / "node-twin.mjs"), "--port", str(port)]
    args += ["--redis", redis_url, "--name", name, "--key", key, *extra]
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "ready", or "" if it died
        if line.strip() != "ready":
            raise RuntimeError(f"node-twin {name} did not start (exit {proc.poll()})")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class NodeClients:
    """Official socket.io-client clients in one Node process, with everything they got."""

    def __init__(self, node: str) -> None:
        self._proc = subprocess.Popen(
            [node, str(CLUSTER_DIR / "clients.mjs")],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._messages: list[Message] = []
        self._changed = threading.Condition()
        self._tags = itertools.count()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._changed:
                self._messages.append(json.loads(line))
                self._changed.notify_all()

    def _send(self, command: Message) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()

    def wait_for(self, match: Callable[[Message], bool], what: str) -> Message:
        """The first message ``match`` accepts, waiting up to ``WAIT`` seconds for it."""
        deadline = time.monotonic() + WAIT
        with self._changed:
            while True:
                for message in self._messages:
                    if match(message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0 or self._proc.poll() is not None:
                    raise AssertionError(f"no {what} within {WAIT} s; got {self._messages}")
                self._changed.wait(left)

    def connect(self, cid: str, url: str, nsp: str = "/") -> str:
        """Connect client ``cid`` and return its socket id once it has its ``hello``."""
        self._send({"cmd": "connect", "id": cid, "url": url, "nsp": nsp})
        done = self.wait_for(
            lambda m: m["id"] == cid and m["type"] in {"connected", "connect_error"},
            f"connection of {cid}",
        )
        assert done["type"] == "connected", done
        self.event(cid, "hello")
        return str(done["sid"])

    def emit(self, cid: str, event: str, *args: Any) -> None:
        self._send({"cmd": "emit", "id": cid, "event": event, "args": list(args)})

    def ask(self, cid: str, event: str, *args: Any) -> Any:
        """Emit with an acknowledgement and return the (single) ack argument."""
        tag = next(self._tags)
        self._send({"cmd": "emit", "id": cid, "event": event, "args": list(args), "tag": tag})
        answer = self.wait_for(lambda m: m.get("tag") == tag, f"ack of {event} from {cid}")
        assert "error" not in answer, answer
        return answer["args"][0]

    def event(self, cid: str, event: str) -> list[Any]:
        """The arguments of the first ``event`` client ``cid`` received (waiting for it)."""
        got = self.wait_for(
            lambda m: m["id"] == cid and m["type"] == "event" and m["event"] == event,
            f"{event!r} at {cid}",
        )
        return list(got["args"])

    def received(self, cid: str, event: str) -> list[list[Any]]:
        """Every ``event`` client ``cid`` received so far."""
        with self._changed:
            return [
                m["args"]
                for m in self._messages
                if m["id"] == cid and m["type"] == "event" and m["event"] == event
            ]

    def disconnected(self, cid: str) -> str:
        """Wait for client ``cid`` to be disconnected; return the reason."""
        got = self.wait_for(lambda m: m["id"] == cid and m["type"] == "disconnect", "disconnect")
        return str(got["reason"])

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
