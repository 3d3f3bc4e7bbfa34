"""One live Engine.IO session: the pure :class:`SessionState` plus what I/O needs.

An ``EngineSession`` is what the layer above sees. Sending never awaits: it
queues :class:`OutPacket` objects and wakes whichever transport task owns the
session (the WebSocket writer, or the pending long-poll GET), or, on a
WebSocket whose send may be finished by another task, writes them at once from
the sending task; so a broadcast to a thousand sessions is a thousand appends
or writes, and never waits on one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from starlette.datastructures import Headers
from starlette.types import Message, Send

from realtime.engineio.config import EngineConfig, Transport
from realtime.engineio.packets import OutPacket
from realtime.engineio.session import CloseReason, SessionState, TimerAction
from realtime.engineio.session import now as clock

if TYPE_CHECKING:
    from realtime.engineio.observer import EngineObserver
    from realtime.engineio.server import EngineServer

logger = logging.getLogger("realtime.engineio")

#: Reasons where queued packets are still delivered before the transport closes.
GRACEFUL = frozenset({CloseReason.FORCED_CLOSE, CloseReason.SERVER_SHUTDOWN})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The handshake request, as the layer above needs it."""

    headers: Headers
    query: dict[str, str]
    client: tuple[str, int] | None
    url: str
    secure: bool
    time: float


class EngineHandler(Protocol):
    """What the layer above implements. Calls for one session never overlap."""

    async def on_connect(self, session: EngineSession) -> None: ...

    async def on_message(self, session: EngineSession, data: str | bytes) -> None: ...

    async def on_disconnect(self, session: EngineSession, reason: CloseReason) -> None: ...


class RelayedPoll(Protocol):
    """What the owner knows of a GET another node relayed to it (see relay.py)."""

    async def lost(self) -> bool:
        """Whether the relaying node has died (the GET with it)."""
        ...

    async def delivered(self) -> bool:
        """Once the answer is written: whether the relaying node passed it on."""
        ...


class _Rest:
    """Await the rest of an awaitable already stepped once (it yielded ``first``).

    What ``yield from`` would do: values go up to the event loop, answers and
    exceptions (cancellation included) come back down to the awaitable.
    """

    __slots__ = ("_first", "_step")

    def __init__(self, step: Generator[Any, Any, Any], first: Any) -> None:
        self._step = step
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        step, value = self._step, self._first
        while True:
            try:
                answer = yield value
            except BaseException as exc:
                try:
                    value = step.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = step.send(answer)
                except StopIteration as stop:
                    return stop.value


@dataclass(slots=True)
class _Parked:
    """A send stepped once by :meth:`EngineSession._write_through` that had to wait."""

    step: Generator[Any, Any, Any]
    first: Any
    size: int


async def send_within(send: Send, message: Message, seconds: float) -> None:
    """``await send(message)``, giving up after ``seconds``.

    The timeout's cancel scope is entered only if the send has to wait: most
    complete at once, and a scope costs more than the send.
    """
    pending = send(message)
    if type(pending) is not CoroutineType:
        # An awaitable that is not a coroutine (granian's) cannot be stepped by hand.
        with anyio.move_on_after(seconds):
            await pending
        return
    step = pending.__await__()
    try:
        blocked_on = step.send(None)
    except StopIteration:
        return
    with anyio.move_on_after(seconds):
        await _Rest(step, blocked_on)


class EngineSession:
    """A client's session, whichever transport currently carries it."""

    __slots__ = (
        "__weakref__",
        "_finished",
        "_finishing",
        "_parked",
        "_releasing",
        "_server",
        "_wakeup",
        "_write_scope",
        "_writing",
        "close_code",
        "config",
        "held",
        "held_bytes",
        "poll_pending",
        "poll_relayed",
        "poll_scope",
        "poll_unconfirmed",
        "post_active",
        "probing",
        "release_poll",
        "request",
        "state",
        "write_through",
        "ws_send",
    )

    def __init__(
        self,
        server: EngineServer,
        sid: str,
        transport: Transport,
        request: RequestInfo,
        config: EngineConfig,
    ) -> None:
        self._server = server
        self.config = config
        self.state = SessionState(sid, transport, config, clock())
        self.request = request
        #: What the WebSocket writer waits on (made when it first waits: a
        #: polling session never needs one).
        self._wakeup: anyio.Event | None = None
        #: Whether :meth:`finish` has run: False, None while its first call runs, True.
        self._finished: bool | None = False
        #: Set when the first :meth:`finish` returns, for a later caller to wait on.
        self._finishing: anyio.Event | None = None
        #: A long-poll GET is waiting for packets (spec: at most one at a time).
        self.poll_pending = False
        #: Cancelled by :meth:`wake` to release the pending GET's wait.
        self.poll_scope: anyio.CancelScope | None = None
        #: While a GET that another node relayed is pending: that GET (whether
        #: its node died: the GET is then lost, not the session).
        self.poll_relayed: RelayedPoll | None = None
        #: The last GET answered through another node, until the next GET has
        #: made sure that node passed the answer on.
        self.poll_unconfirmed: RelayedPoll | None = None
        #: Messages from the client not yet given to the layer above: kept while
        #: a session made over polling may still move to the node its WebSocket
        #: upgrade reaches (see EngineServer.hold_for_upgrade). ``None``: not holding.
        self.held: list[str | bytes] | None = None
        self.held_bytes = 0
        self._releasing: anyio.Event | None = None
        #: A POST is being read and dispatched (spec: at most one at a time).
        self.post_active = False
        #: A WebSocket is open to upgrade this session (spec: at most one).
        self.probing = False
        #: Set by a probe: the GET pending at that moment is answered with NOOP.
        self.release_poll = False
        #: WebSocket close code sent when the session ends (1009 for an oversized message).
        self.close_code = 1000
        #: The ASGI ``send`` of the WebSocket carrying the session, once it has one.
        self.ws_send: Send | None = None
        #: Whether sends are written by the sending task itself, even a
        #: broadcast's (see :meth:`_write_through`): set with ``ws_send``.
        self.write_through = False
        self._writing = False
        #: A write begun by :meth:`_write_through` that had to wait, for the
        #: next writer to finish before anything else.
        self._parked: _Parked | None = None
        #: Around the WebSocket write in progress: an abrupt close cancels a
        #: write that a client who stopped reading would otherwise block forever.
        self._write_scope: anyio.CancelScope | None = None

    @property
    def sid(self) -> str:
        return self.state.sid

    @property
    def transport(self) -> Transport:
        return self.state.transport

    @property
    def observer(self) -> EngineObserver | None:
        return self._server.observer

    @property
    def closed(self) -> bool:
        return self.state.close_reason is not None

    @property
    def writable(self) -> bool:
        """Whether a packet queued now goes out at once (``volatile`` drops otherwise).

        Over WebSocket: no write is stuck (a task suspended in the middle of
        writing means the client's network buffer is full). Over polling: a
        GET is waiting to carry it.
        """
        state = self.state
        if state.close_reason is not None or state.upgrading:
            return False
        if state.transport == "websocket":
            return not self._writing and self._parked is None
        return self.poll_pending

    def send(self, data: str | bytes) -> bool:
        """Queue one message; ``False`` if the session is closed or its buffer is full."""
        return self.send_packets((OutPacket.message(data),))

    def send_packets(self, packets: Sequence[OutPacket]) -> bool:
        """Queue several packets with nothing interleaved, and wake the transport.

        Never awaits: a broadcast to a thousand sessions is a thousand appends,
        or, where ``write_through`` is set, a thousand writes that never wait.
        """
        state = self.state
        if state.enqueue(packets):
            observer = self._server.observer
            if observer is not None:
                observer.packets_queued(packets)
            if (
                self.write_through
                and not self._writing
                and self._parked is None
                and state.transport == "websocket"
            ):
                self._write_through()
            else:
                self.wake()
            return True
        self._overflowed()
        return False

    async def send_now(self, packets: Sequence[OutPacket]) -> bool:
        """Queue packets and, if no write is under way, write them from this task.

        Delivery is as prompt as with :meth:`send_packets`; over WebSocket it
        saves waking the writer task (a task switch per reply). The caller waits
        only while the client's network buffer is full, and an abrupt close
        ends that wait.
        """
        state = self.state
        if not state.enqueue(packets):
            self._overflowed()
            return False
        observer = self._server.observer
        if observer is not None:
            observer.packets_queued(packets)
        if (
            self.ws_send is not None
            and not self._writing
            and self._parked is None
            and state.transport == "websocket"
        ):
            # (A parked write means that client's buffer is full: the writer
            # task finishes it, as it would a write of its own that is stuck.)
            await self.write_outbox()
        else:
            self.wake()
        return True

    def _overflowed(self) -> None:
        if self.state.close_reason is None:
            if self._server.observer is not None:
                self._server.observer.buffer_full()
            logger.warning("session %s: outbound buffer over max_buffer_bytes, closing", self.sid)
            self.abort(CloseReason.TRANSPORT_ERROR)

    def close(self, reason: CloseReason = CloseReason.FORCED_CLOSE) -> None:
        """Close from the server side; packets already queued are still delivered."""
        self._closing(reason)

    def abort(self, reason: CloseReason) -> None:
        """Close at once, dropping queued packets (protocol errors, timeouts, peer gone)."""
        if self._closing(reason):
            self.state.discard()
            self._drop_parked()
            if self._write_scope is not None:
                self._write_scope.cancel()

    async def write_outbox(self, scope: anyio.CancelScope | None = None) -> None:
        """Write what is queued to the WebSocket; one writer at a time keeps the order.

        ``scope``: a cancel scope the caller is inside and gives up with the
        write (the writer task's): an abrupt close cancels it, so each write is
        simply awaited. Without one (a sending task writing its own reply), a
        write that has to wait gets a cancel scope of its own.

        If the writing task is cancelled (a handler's own timeout, say), what
        it had taken goes back to the front of the outbox for the writer task:
        a cancelled sender never loses another's packets.
        """
        send = self.ws_send
        assert send is not None
        state = self.state
        self._writing = True
        self._write_scope = scope
        batch: list[OutPacket] = []
        done = 0
        sent = 0
        try:
            parked = self._parked
            if parked is not None:
                self._parked = None
                if scope is not None:
                    await _Rest(parked.step, parked.first)
                else:
                    with anyio.CancelScope() as self._write_scope:
                        await _Rest(parked.step, parked.first)
                    if self._write_scope.cancelled_caught:
                        return
                state.written(parked.size)
                sent += parked.size
            while state.outbox:
                batch = state.take()
                done = 0
                for packet in batch:
                    data = packet.ws
                    if isinstance(data, str):
                        message: Message = {"type": "websocket.send", "text": data}
                    else:
                        message = {"type": "websocket.send", "bytes": data}
                    if scope is not None:
                        await send(message)
                    else:
                        # Most writes complete without suspending; only one that
                        # must wait (the client's TCP window is full) pays for a
                        # cancel scope, which an abrupt close uses to end the wait.
                        pending = send(message)
                        if type(pending) is not CoroutineType:
                            # Not a coroutine (granian's send): no stepping by hand.
                            with anyio.CancelScope() as self._write_scope:
                                await pending
                            if self._write_scope.cancelled_caught:
                                return
                        else:
                            step = pending.__await__()
                            try:
                                blocked_on = step.send(None)
                            except StopIteration:
                                pass
                            else:
                                with anyio.CancelScope() as self._write_scope:
                                    await _Rest(step, blocked_on)
                                if self._write_scope.cancelled_caught:
                                    return
                    # What state.written() does, inline: this runs once per
                    # recipient of every broadcast.
                    size = packet.size
                    left = state.outbox_bytes - size
                    state.outbox_bytes = left if left > 0 else 0
                    sent += size
                    done += 1
                batch = []
        except Exception as exc:  # the peer is gone; ASGI servers raise their own types
            logger.debug("session %s: write failed: %r", self.sid, exc)
            self.abort(CloseReason.TRANSPORT_ERROR)
        finally:
            if batch and state.close_reason is None:
                # Interrupted mid-batch by the caller's cancellation: not sent.
                state.outbox.extendleft(reversed(batch[done:]))
            self._write_scope = None
            self._writing = False
            if sent and self._server.observer is not None:
                self._server.observer.bytes_out("websocket", sent)
            if state.outbox or state.close_reason is not None:
                self.wake()

    def _write_through(self) -> None:
        """Write the outbox from the sending task, with no await and no task switch.

        A broadcast then writes to each recipient as raw WebSocket code would,
        instead of waking a writer task per recipient. A send that must wait
        (the client's TCP window is full) is parked: the writer task, woken,
        finishes it before writing anything else, so order is kept and the
        sender never waits on a slow client. Only sends that another task may
        finish are written this way (``write_through``, see websocket.py).
        """
        send = self.ws_send
        assert send is not None
        state = self.state
        outbox = state.outbox
        sent = 0
        self._writing = True
        try:
            while outbox:
                packet = outbox.popleft()
                data = packet.ws
                if isinstance(data, str):
                    message: Message = {"type": "websocket.send", "text": data}
                else:
                    message = {"type": "websocket.send", "bytes": data}
                step = send(message).__await__()
                try:
                    blocked_on = step.send(None)
                except StopIteration:
                    size = packet.size
                    left = state.outbox_bytes - size
                    state.outbox_bytes = left if left > 0 else 0
                    sent += size
                else:
                    self._parked = _Parked(step, blocked_on, packet.size)
                    break
        except Exception as exc:  # the peer is gone; ASGI servers raise their own types
            logger.debug("session %s: write failed: %r", self.sid, exc)
            self.abort(CloseReason.TRANSPORT_ERROR)
        finally:
            self._writing = False
            if sent and self._server.observer is not None:
                self._server.observer.bytes_out("websocket", sent)
            if self._parked is not None or outbox or state.close_reason is not None:
                self.wake()

    def _drop_parked(self) -> None:
        parked, self._parked = self._parked, None
        if parked is not None:
            parked.step.close()

    def stop_writing(self) -> None:
        """Give up on what is queued or being written (the close deadline passed)."""
        self.state.discard()
        self._drop_parked()
        if self._write_scope is not None:
            self._write_scope.cancel()

    @property
    def writing(self) -> bool:
        return self._writing

    @property
    def has_output(self) -> bool:
        """Whether anything is left to write: queued, or a parked write to finish."""
        return bool(self.state.outbox) or self._parked is not None

    # -- messages held for a possible move -------------------------------------

    def hold(self, handler: EngineHandler, data: str | bytes) -> None:
        """Keep a message (the caller saw ``held`` set); past ``max_payload`` bytes, let go."""
        assert self.held is not None
        self.held.append(data)
        self.held_bytes += len(data)
        if self.held_bytes > self.config.max_payload and self._releasing is None:
            self._server.start_soon(self.release_held, handler)

    async def release_held(self, handler: EngineHandler) -> None:
        """Hand the held messages to the layer above, in order, and stop holding.

        One releaser at a time; messages that arrive meanwhile join the queue
        it drains, so the layer above sees them all in arrival order.
        """
        if self.held is None:
            return
        if self._releasing is not None:
            await self._releasing.wait()
            return
        self._releasing = done = self._server.new_event()
        try:
            held = self.held
            while held and not self.closed:
                await handler.on_message(self, held.pop(0))
        finally:
            self.held = None
            self._releasing = None
            done.set()

    def take_held(self) -> list[str | bytes] | None:
        """The held messages, if the session may move now (nothing released or queued)."""
        if self.held is None or self._releasing is not None or self.state.outbox or self.closed:
            return None
        held, self.held = self.held, None
        return held

    # -- inbound backpressure ---------------------------------------------------

    def pause_inbound(self) -> None:
        """The layer above cannot take more yet; the transport stops reading.

        The client's pong may then sit unread, so the heartbeat does not time
        the session out while it is paused.
        """
        self.state.inbound_paused = True

    def resume_inbound(self) -> None:
        self.state.resume_inbound(clock())

    # -- for the transports -----------------------------------------------------

    def wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.is_set():
            wakeup.set()
        if self.poll_scope is not None:
            self.poll_scope.cancel()

    def new_wakeup(self) -> anyio.Event:
        """A fresh event to wait on; callers check the outbox after getting it."""
        self._wakeup = self._server.new_event()
        return self._wakeup

    def _closing(self, reason: CloseReason) -> bool:
        if self.state.close_reason is not None:
            return False
        self.state.close_reason = reason
        self.state.upgrading = False
        self.wake()
        self._server.session_closing(self)
        return True

    def forget(self) -> None:
        """Drop from the registry: requests with this sid now get "Session ID unknown"."""
        self._server.forget(self)

    async def finish(self) -> None:
        """Unregister and tell the handler, exactly once, whoever calls first.

        The transport that carries the session calls it when it is done (the
        WebSocket's task, or a task started when a polling session closes),
        and shutdown calls it for every session; only the first call acts.
        A session still open is closed first ("transport close"). A later call
        returns once the first has: shutdown calls it for every session and so
        waits for the disconnect handlers that another task is running.
        """
        if self._finished is not False:
            if self._finished is None:
                # The first call is still running: wait for it (its event is
                # made only now, as it is rarely needed).
                if self._finishing is None:
                    self._finishing = self._server.new_event()
                await self._finishing.wait()
            return
        self._finished = None
        try:
            if self.state.close_reason is None:
                self.abort(CloseReason.TRANSPORT_CLOSE)
            reason = self.state.close_reason or CloseReason.TRANSPORT_CLOSE
            await self._server.session_finished(self, reason)
        finally:
            self._finished = True
            if self._finishing is not None:
                self._finishing.set()
                self._finishing = None

    def on_timer(self) -> None:
        """Called by the server's heartbeat once :meth:`SessionState.deadline` has passed."""
        action = self.state.on_timer(clock())
        if action is TimerAction.PING_SENT:
            self.wake()
        elif action is TimerAction.TIMED_OUT:
            self.abort(CloseReason.PING_TIMEOUT)

    def __repr__(self) -> str:
        return f"<EngineSession {self.sid} {self.transport}{' closed' if self.closed else ''}>"
