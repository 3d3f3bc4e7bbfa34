"""Sessions that do not care where a request lands: connections tunnelled to the owning node.

With a relay (the Redis adapter hands one down), every sid begins with the id
of the node that made it. A request for another node's sid is not answered
"Session ID unknown": the whole ASGI connection (an HTTP request or a
WebSocket) is tunnelled over the bus to the owner, which serves it exactly as
a local one (its checks, limits and heartbeat), while the node the client
reached only pumps ASGI messages both ways.

Why a tunnel and not a hand-over: a session's state above the engine
(Socket.IO sockets, rooms, what the app's handlers keep) cannot move between
processes. A tunnel keeps one owner per session, so nothing is duplicated, and
every limit holds because the owner runs the very code it runs for a request
that reached it directly. The one moment a session can move is before the
layer above has seen any message of it: the engine holds a polling session's
first messages briefly, and if its WebSocket upgrade arrives through a tunnel
meanwhile, the owner hands the session over (a ``realtime.handover`` message
on the tunnel) and the node holding the WebSocket carries it on as its own.

Wire: msgpack maps on the bus, one channel per node (``<key>-engine#<node>#``)::

    {"k": "o", "t": tunnel, "f": node, "s": scope, "q": 0, "m": [message]}   open
    {"k": "m", "t": tunnel, "q": seq, "m": [message, ...]}                   ASGI messages
    {"k": "c", "t": tunnel, "n": taken}                                      credit
    {"k": "x", "t": tunnel}                                                  the other end gave up
    {"k": "d", "t": tunnel}                                                  answer delivered

Each end keeps at most ``relay_window`` messages that the other has not taken
yet, so a slow client or a busy owner holds back the other end as TCP would.
Messages carry sequence numbers: a gap (pub/sub drops messages while Redis
reconnects) ends the tunnel instead of delivering out of order. The node that
relayed a GET says when it has passed the answer on ("d"): the owner's next
GET for that session waits for it, so packets that died with a relaying node
close the session instead of vanishing.
"""

from __future__ import annotations

import itertools
import logging
import math
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import anyio
import msgpack
from anyio.abc import TaskGroup
from starlette.types import Message, Receive, Scope, Send

from realtime.engineio.config import EngineConfig
from realtime.engineio.polling import LOST_WITH_NODE
from realtime.engineio.session import now as clock
from realtime.exceptions import ClusterUnavailableError

logger = logging.getLogger("realtime.engineio.relay")

#: Length of a node id, the first characters of every sid the node makes.
NODE_ID_LENGTH = 8
#: Length of a sid made with a relay (node id + 96 random bits).
SID_LENGTH = NODE_ID_LENGTH + 16

#: The owner's last message on a tunnelled WebSocket whose session moves to
#: the node holding it (see EngineServer.hold_for_upgrade).
HANDOVER = "realtime.handover"

#: Most frames sent in one pipeline.
PUBLISH_BATCH = 256

#: How long, and in how many looks, a second GET waits to learn whether the
#: node that relayed the first one died (see :meth:`Tunnel.lost`).
LOST_GRACE = 0.3
LOST_CHECKS = 4

Dispatcher = Callable[[str, bytes], None]
Serve = Callable[[Scope, Receive, Send], Awaitable[None]]
#: Carries on a session that moved here: (its state, receive, send, frames the
#: client sent that the old owner did not take).
Adopt = Callable[[dict[str, Any], Receive, Send, list[Message]], Awaitable[None]]

#: Scope keys a tunnel carries to the owner (everything the engine reads).
_SCOPE_KEYS = (
    "type",
    "http_version",
    "method",
    "scheme",
    "path",
    "root_path",
    "query_string",
    "headers",
    "client",
    "server",
    "subprotocols",
)


class RelayBus(Protocol):
    """What a relay needs of a pub/sub bus (the Redis adapter's link provides it)."""

    #: False where PUBLISH's reply does not count every subscriber (Redis Cluster).
    counts_receivers: bool

    async def publish_many(self, items: Sequence[tuple[str, bytes]]) -> list[int]: ...

    async def listen(
        self, channels: dict[str, Dispatcher], patterns: dict[str, Dispatcher]
    ) -> None: ...

    async def unlisten(self, channels: Iterable[str], patterns: Iterable[str]) -> None: ...

    async def server_count(self, channel: str) -> int: ...


def _pack(message: dict[str, Any]) -> bytes:
    data: bytes = msgpack.packb(message, use_bin_type=True)
    return data


def _completes(message: Message) -> bool:
    """Whether ``message`` is the last one a server sends on this connection."""
    kind = message["type"]
    if kind in ("websocket.close", HANDOVER):
        return True
    if kind in ("http.response.body", "websocket.http.response.body"):
        return not message.get("more_body", False)
    return False


def portable_scope(scope: Scope) -> dict[str, Any]:
    """The part of an ASGI scope that crosses the bus (plain data only)."""
    carried = {key: scope[key] for key in _SCOPE_KEYS if key in scope}
    extensions = scope.get("extensions") or {}
    # Only the extensions the engine looks for, and only that they are there.
    carried["extensions"] = {name: {} for name in extensions if name == "websocket.http.response"}
    return carried


class Tunnel:
    """One end of one tunnelled ASGI connection."""

    def __init__(
        self,
        relay: SessionRelay,
        tid: str,
        peer: str,
        websocket: bool,
        opening: dict[str, Any] | None = None,
    ) -> None:
        self.relay = relay
        self.id = tid
        self.peer = peer
        self.websocket = websocket
        self.window = relay.window
        self.heard = clock()
        #: Set when the tunnel broke (the peer gone or silent, a gap, the bus down).
        self.failed: str | None = None
        #: The last message of the connection went through.
        self.complete = False
        #: The other end's node died (rather than its client leaving).
        self.node_gone = False
        #: The owner's side: the app has returned (the tunnel stays registered
        #: only while an answer it wrote waits to be confirmed).
        self.finished = False
        #: An HTTP GET: the relaying node confirms it passed the answer on.
        self.awaits_confirmation = False
        self.confirmed = False
        self._confirm = anyio.Event()
        self._inbox_in, self._inbox = anyio.create_memory_object_stream[list[Message]](self.window)
        self._pending: deque[Message] = deque()
        self._expected = 0
        self._sent = 0
        self._peer_took = 0
        self._taken = 0
        self._credited = 0
        self._credit = anyio.Event()
        self._held: Message | None = None
        #: Sent with the first frame (the forwarding end's "o": who, and the scope).
        self._opening = opening
        #: The forwarding end of a WebSocket: what it sent, while the session may
        #: still move here (the frames the owner did not take are replayed).
        self.log: list[Message] | None = [] if websocket and opening is not None else None
        self.log_limit = 2 * self.window + 8
        #: The session's state, when it moved to this end.
        self.moved: dict[str, Any] | None = None
        #: Set once the first frame is out (the forwarding end waits on it).
        self.opened = anyio.Event()

    # -- from the bus (synchronous) ------------------------------------------------------

    def deliver(self, seq: int, messages: list[Message]) -> None:
        self.heard = clock()
        if seq != self._expected:
            self.fail(f"message {self._expected} lost (got {seq})")
            return
        self._expected += 1
        try:
            self._inbox_in.send_nowait(messages)
        except anyio.WouldBlock:
            self.fail("peer sent past its window")
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    def credit(self, taken: int) -> None:
        self.heard = clock()
        if taken > self._peer_took:
            self._peer_took = taken
            self._credit.set()
            self._credit = anyio.Event()

    def fail(self, reason: str, *, node_gone: bool = False) -> None:
        if node_gone and self.failed is None:
            self.node_gone = True
        if self.failed is None and not self.complete:
            self.failed = reason
            logger.debug("relay tunnel %s with node %s ended: %s", self.id, self.peer, reason)
        self._inbox_in.close()
        self._credit.set()
        self.opened.set()
        self._confirm.set()

    # -- taking and putting ----------------------------------------------------------

    async def take(self) -> Message | None:
        """The next ASGI message from the other end; ``None`` once the tunnel is over."""
        if self._pending:
            return self._pending.popleft()
        try:
            batch = await self._inbox.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return None
        self._taken += 1
        if self._taken - self._credited >= max(1, self.window // 2):
            self._credited = self._taken
            self.relay.post(self.peer, {"k": "c", "t": self.id, "n": self._taken})
        self._pending.extend(batch[1:])
        return batch[0]

    async def put(self, messages: list[Message]) -> bool:
        """Send ``messages`` to the other end; ``False`` if the tunnel is over.

        Returns without suspending while the window has room: the engine's
        WebSocket writer steps a send by hand and counts on that. Past the
        window it waits for credit (an event, never a cancel scope).
        """
        while self._sent - self._peer_took >= self.window and self.failed is None:
            await self._credit.wait()
        if self.failed is not None:
            return False
        frame: dict[str, Any] = {"k": "m", "t": self.id, "q": self._sent, "m": messages}
        if self._opening is not None:
            frame.update(self._opening)
            self._opening = None
        self._sent += 1
        self.relay.enqueue(self, frame)
        return True

    def put_end(self) -> None:
        """Tell the other end this one gave up (after what is already queued)."""
        self.relay.enqueue(None, {"k": "x", "t": self.id}, self.peer)

    def published(self, receivers: int) -> None:
        """A frame of this tunnel went out to ``receivers`` subscribers."""
        if receivers == 0 and self.relay.bus.counts_receivers:
            self.fail("node gone", node_gone=True)
        else:
            self.opened.set()

    # -- the owner's side: ASGI callables for the engine ----------------------------------

    async def receive(self) -> Message:
        message = await self.take()
        if message is not None:
            return message
        if self.websocket:
            return {"type": "websocket.disconnect", "code": 1006}
        if self.node_gone:
            return {"type": "http.disconnect", LOST_WITH_NODE: True}
        return {"type": "http.disconnect"}

    def remember(self, message: Message) -> None:
        log = self.log
        if log is not None:
            if len(log) < self.log_limit:
                log.append(message)
            else:
                self.log = None  # past the upgrade: the session will not move

    async def hand_over(self, state: dict[str, Any]) -> None:
        """The owner's end: the session moves to the node at the other end."""
        state["taken"] = self._taken
        await self.send({"type": HANDOVER, "state": state})

    def confirm(self) -> None:
        """The relaying node wrote this GET's answer to its client."""
        self.confirmed = True
        self._confirm.set()

    async def delivered(self) -> bool:
        """Whether the relaying node passed the answer on (waits for it to say).

        Its "d" frame is normally here before the client's next GET is; if not,
        a node that is gone has not delivered it, and a live one is waited for
        (within the idle timeout, after which the tunnel fails).
        """
        with anyio.move_on_after(LOST_GRACE):
            await self._confirm.wait()
        if not self.confirmed and not await self.lost():
            await self._confirm.wait()
        self.relay.drop(self)
        return self.confirmed

    async def lost(self) -> bool:
        """Whether the node at the other end has died (asked of Redis now).

        Asked when a second GET arrives, which a balancer sends the moment the
        first one's upstream died, possibly before Redis has dropped that
        node's subscription: so a node still counted is asked about again a
        few times over ``LOST_GRACE`` before it is believed alive.
        """
        for attempt in range(LOST_CHECKS):
            if self.failed is not None:
                break
            if not await self.relay.alive(self.peer):
                self.fail("node gone", node_gone=True)
                break
            if attempt + 1 < LOST_CHECKS:
                await anyio.sleep(LOST_GRACE / (LOST_CHECKS - 1))
        return self.node_gone

    async def send(self, message: Message) -> None:
        if self.failed is not None:
            return  # like a server writing to a client that has gone: dropped
        if message["type"].endswith(".response.start"):
            self._held = message  # travels with the first body
            return
        batch = [message] if self._held is None else [self._held, message]
        self._held = None
        if _completes(message):
            self.complete = True
        await self.put(batch)


class SessionRelay:
    """This node's end of the relay: sid prefixes, tunnels out and tunnels in.

    Built by the adapter that provides the bus and handed down to the engine
    (``EngineServer.relay``), which runs it in its lifespan.
    """

    def __init__(self, bus: RelayBus, key: str) -> None:
        self.bus = bus
        self.key = key
        self.node_id = secrets.token_urlsafe(6)
        self.channel = self.channel_of(self.node_id)
        self.window = 16
        self.check_interval = 2.0
        self.idle_timeout = 45.0
        #: Connections this node tunnelled to their owner, and served for others.
        self.forwarded = 0
        self.served = 0
        #: Sessions that moved here with their WebSocket.
        self.moved_here = 0
        self._tunnels: dict[str, Tunnel] = {}
        self._serial = itertools.count()
        self._tg: TaskGroup | None = None
        self._serve: Serve | None = None
        self._adopt: Adopt | None = None
        self._outbox_in, self._outbox = anyio.create_memory_object_stream[
            tuple[Tunnel | None, str, bytes]
        ](math.inf)

    def channel_of(self, node: str) -> str:
        return f"{self.key}-engine#{node}#"

    def new_sid(self) -> str:
        return self.node_id + secrets.token_urlsafe(12)

    def owner(self, sid: str) -> str | None:
        """The node that made ``sid``, if it is another one."""
        if len(sid) == SID_LENGTH and not sid.startswith(self.node_id):
            return sid[:NODE_ID_LENGTH]
        return None

    def drop(self, tunnel: Tunnel) -> None:
        if self._tunnels.get(tunnel.id) is tunnel:
            del self._tunnels[tunnel.id]

    async def alive(self, node: str) -> bool:
        """Whether ``node`` still listens (``True`` when the bus cannot tell)."""
        if not self.bus.counts_receivers:
            return True
        try:
            return await self.bus.server_count(self.channel_of(node)) > 0
        except ClusterUnavailableError:
            return True

    def post(self, node: str, frame: dict[str, Any]) -> None:
        """Send a frame that no tunnel waits on (credits)."""
        self.enqueue(None, frame, node)

    def enqueue(self, tunnel: Tunnel | None, frame: dict[str, Any], node: str = "") -> None:
        """Queue a frame for the publisher, which sends every queued frame in one pipeline."""
        channel = self.channel_of(tunnel.peer if tunnel is not None else node)
        self._outbox_in.send_nowait((tunnel, channel, _pack(frame)))

    async def _publish(self) -> None:
        """The node's one publisher: all tunnels' frames, in order, pipelined.

        Each tunnel holds at most a window of frames, so the queue is bounded
        by the tunnels open; draining it in pipelines costs one round trip per
        batch rather than per frame.
        """
        async for first in self._outbox:
            batch = [first]
            while len(batch) < PUBLISH_BATCH:
                try:
                    batch.append(self._outbox.receive_nowait())
                except anyio.WouldBlock:
                    break
            try:
                counts = await self.bus.publish_many(
                    [(channel, data) for _, channel, data in batch]
                )
            except ClusterUnavailableError as exc:
                for tunnel, _, _ in batch:
                    if tunnel is not None:
                        tunnel.fail(str(exc))
                continue
            for (tunnel, _, _), receivers in zip(batch, counts, strict=True):
                if tunnel is not None:
                    tunnel.published(receivers)

    @property
    def tunnels(self) -> int:
        return len(self._tunnels)

    # -- running -------------------------------------------------------------------

    @asynccontextmanager
    async def running(
        self, serve: Serve, adopt: Adopt, config: EngineConfig
    ) -> AsyncIterator[None]:
        """Listen for tunnels to this node and serve them with ``serve``.

        ``adopt`` carries on a session that moves here with its WebSocket.
        """
        self.window = config.relay_window
        self.check_interval = config.relay_check_interval
        # Engine.IO never stays silent longer than a ping period plus its timeout.
        self.idle_timeout = config.ping_interval + config.ping_timeout
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self._serve = serve
            self._adopt = adopt
            await self.bus.listen({self.channel: self._on_frame}, {})
            tg.start_soon(self._watch)
            tg.start_soon(self._publish)
            try:
                yield
            finally:
                for tunnel in list(self._tunnels.values()):
                    tunnel.fail("server shutting down")
                with anyio.CancelScope(shield=True), anyio.move_on_after(1):
                    await self.bus.unlisten([self.channel], [])
                self._tg = None
                tg.cancel_scope.cancel()

    async def _watch(self) -> None:
        """Fail tunnels whose other end has gone: checked per node, not per tunnel."""
        while True:
            await anyio.sleep(self.check_interval)
            now = clock()
            quiet: dict[str, list[Tunnel]] = {}
            for tunnel in list(self._tunnels.values()):
                if tunnel.finished and tunnel.failed is not None:
                    self.drop(tunnel)
                elif now - tunnel.heard >= self.idle_timeout:
                    tunnel.fail(f"nothing heard for {self.idle_timeout:g}s")
                elif now - tunnel.heard >= self.check_interval:
                    quiet.setdefault(tunnel.peer, []).append(tunnel)
            if not self.bus.counts_receivers:
                continue
            for node, tunnels in quiet.items():
                if not await self.alive(node):
                    logger.warning(
                        "node %s is gone: ending %d relayed connections", node, len(tunnels)
                    )
                    for tunnel in tunnels:
                        tunnel.fail("node gone", node_gone=True)

    def _on_frame(self, channel: str, data: bytes) -> None:
        try:
            frame = msgpack.unpackb(data, raw=False)
            kind, tid = frame["k"], frame["t"]
        except Exception:
            logger.debug("ignoring a malformed relay frame")
            return
        if kind == "o":
            self._open(tid, frame)
            return
        tunnel = self._tunnels.get(tid)
        if tunnel is None:
            return  # a late frame for a tunnel that has ended
        if kind == "m":
            tunnel.deliver(frame["q"], frame["m"])
        elif kind == "c":
            tunnel.credit(frame["n"])
        elif kind == "x":
            tunnel.heard = clock()
            tunnel.fail("the other end ended")
        elif kind == "d":
            tunnel.confirm()
            if tunnel.finished:
                self.drop(tunnel)

    def _open(self, tid: str, frame: dict[str, Any]) -> None:
        if self._tg is None or tid in self._tunnels:
            return
        scope = frame["s"]
        scope["headers"] = [tuple(pair) for pair in scope.get("headers", ())]
        if scope.get("client") is not None:
            scope["client"] = tuple(scope["client"])
        scope["realtime.relayed"] = True
        tunnel = Tunnel(self, tid, frame["f"], scope.get("type") == "websocket")
        tunnel.awaits_confirmation = scope.get("method") == "GET"
        scope["realtime.relayed_poll"] = tunnel
        if tunnel.websocket:
            scope["realtime.hand_over"] = tunnel.hand_over
        self._tunnels[tid] = tunnel
        tunnel.deliver(frame["q"], frame["m"])
        self.served += 1
        self._tg.start_soon(self._serve_tunnel, tunnel, scope)

    async def _serve_tunnel(self, tunnel: Tunnel, scope: Scope) -> None:
        assert self._serve is not None
        try:
            await self._serve(scope, tunnel.receive, tunnel.send)
        except Exception:
            logger.exception("relay tunnel %s: error serving it", tunnel.id)
        finally:
            tunnel.finished = True
            if not tunnel.complete and tunnel.failed is None:
                tunnel.put_end()
            if not (tunnel.complete and tunnel.awaits_confirmation) or tunnel.confirmed:
                self.drop(tunnel)

    # -- the side the client reached -------------------------------------------------

    async def forward(self, owner: str, scope: Scope, receive: Receive, send: Send) -> bool:
        """Tunnel this connection to ``owner``.

        Returns ``False`` when nothing was sent to the client because the owner
        could not be reached (the caller answers as for an unknown sid).
        """
        if self._tg is None:
            return False
        tid = f"{self.node_id}.{next(self._serial)}"
        opening = {"k": "o", "f": self.node_id, "s": portable_scope(scope)}
        tunnel = Tunnel(self, tid, owner, scope["type"] == "websocket", opening)
        tunnel.awaits_confirmation = scope.get("method") == "GET"
        self._tunnels[tid] = tunnel
        self.forwarded += 1
        started = False
        try:
            first = await receive()
            if first["type"] in ("http.disconnect", "websocket.disconnect"):
                return True
            tunnel.remember(first)
            await tunnel.put([first])
            await tunnel.opened.wait()
            if tunnel.failed is not None:
                return False
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._pump_in, tunnel, receive)
                started = await self._pump_out(tunnel, send)
                tg.cancel_scope.cancel()
            if tunnel.moved is not None:
                await self._carry_on(tunnel, tunnel.moved, receive, send)
                return True
            if not tunnel.complete and started and tunnel.websocket:
                with anyio.move_on_after(1):
                    with suppress(OSError):
                        await send({"type": "websocket.close", "code": 1011})
            return started or tunnel.complete
        finally:
            self._tunnels.pop(tid, None)
            if not tunnel.complete and tunnel.failed is None:
                tunnel.put_end()

    async def _carry_on(
        self, tunnel: Tunnel, moved: dict[str, Any], receive: Receive, send: Send
    ) -> None:
        """The session moved here with its WebSocket: run it as our own."""
        log = tunnel.log
        if log is None or self._adopt is None:
            logger.warning("relay tunnel %s: a session moved here too late to carry on", tunnel.id)
            with anyio.move_on_after(1), suppress(OSError):
                await send({"type": "websocket.close", "code": 1011})
            return
        self.moved_here += 1
        await self._adopt(moved, receive, send, log[int(moved.get("taken", 0)) :])

    @staticmethod
    async def _pump_in(tunnel: Tunnel, receive: Receive) -> None:
        while True:
            message = await receive()
            if tunnel.complete:
                return  # the answer is out: the ASGI server's disconnect is not news
            tunnel.remember(message)
            if not await tunnel.put([message]):
                return
            if message["type"] in ("http.disconnect", "websocket.disconnect"):
                return

    @staticmethod
    async def _pump_out(tunnel: Tunnel, send: Send) -> bool:
        started = False
        while True:
            message = await tunnel.take()
            if message is None:
                return started
            if message["type"] == HANDOVER:
                tunnel.complete = True
                tunnel.moved = message["state"]
                return True
            try:
                await send(message)
            except OSError:
                tunnel.fail("client gone")
                return True
            started = True
            if _completes(message):
                tunnel.complete = True
                if tunnel.awaits_confirmation:
                    tunnel.relay.post(tunnel.peer, {"k": "d", "t": tunnel.id})
                return True
