"""Prometheus metrics for a :class:`~realtime.Server` (opt-in: the ``metrics`` extra).

Turn them on with ``sio.instrument_metrics()`` and mount :func:`metrics_app`
at ``/metrics``. The engine and Socket.IO layers only call the observer
hooks of ``realtime/socketio/observer.py`` (which :class:`Metrics` implements,
as the Admin UI's monitor does) behind a ``None`` check; this module is the
one that imports prometheus-client.

Under ``uvicorn --workers N`` each worker is its own process: set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before starting, and
:func:`metrics_app` then aggregates every worker's values (gauges are declared
with a multiprocess mode: ``livesum`` for counts, ``livemax`` for the largest
outbox). Clear that directory between runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Receive, Scope, Send

from realtime.engineio.config import Transport
from realtime.socketio.observer import SocketObserver

if TYPE_CHECKING:
    from realtime.engineio.connection import EngineSession
    from realtime.socketio.server import Server
    from realtime.socketio.socket import Socket

#: Handler duration buckets, in seconds: sub-millisecond handlers to slow ones.
HANDLER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
#: Broadcast fan-out buckets, in recipients.
FAN_OUT_BUCKETS = (0, 1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000)


class Metrics(SocketObserver):
    """The metric families, and the observer hooks both layers call.

    ``registry``: where the metrics are registered (the default registry
    unless given; tests pass their own). ``prefix``: the metric name prefix.
    Handler durations are labelled by namespace and event name, only for
    events that have a registered handler, so clients cannot grow the label
    set with made-up event names.
    """

    def __init__(
        self, *, registry: CollectorRegistry | None = REGISTRY, prefix: str = "realtime"
    ) -> None:
        p = prefix
        r = registry
        self.server: Server | None = None
        self.connected = Gauge(
            f"{p}_connected_clients",
            "Sockets connected, by transport and namespace.",
            ["transport", "namespace"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.handshakes = Counter(
            f"{p}_handshakes", "Engine.IO sessions opened, by transport.", ["transport"], registry=r
        )
        self.upgrades = Counter(
            f"{p}_upgrades",
            "Upgrades from polling to WebSocket: started, completed, failed.",
            ["stage"],
            registry=r,
        )
        self.disconnects = Counter(
            f"{p}_disconnects",
            "Sockets disconnected, by namespace and reason.",
            ["namespace", "reason"],
            registry=r,
        )
        self.events_in = Counter(
            f"{p}_events_received", "EVENT packets received.", ["namespace"], registry=r
        )
        self.sent_events = Counter(
            f"{p}_events_sent",
            "EVENT packets queued for a client (a broadcast counts each recipient).",
            ["namespace"],
            registry=r,
        )
        self.received_bytes = Counter(
            f"{p}_bytes_received",
            "Payload received (WebSocket frames, polling bodies), by transport.",
            ["transport"],
            registry=r,
        )
        self.sent_bytes = Counter(
            f"{p}_bytes_sent",
            "Payload sent (WebSocket frames, polling responses), by transport.",
            ["transport"],
            registry=r,
        )
        self.dropped = Counter(
            f"{p}_packets_dropped",
            "Packets dropped: volatile (transport not writable), buffer_full "
            "(a session over max_buffer_bytes, then closed).",
            ["reason"],
            registry=r,
        )
        self.ack_timeouts = Counter(
            f"{p}_ack_timeouts", "emit_with_ack calls that timed out.", ["namespace"], registry=r
        )
        self.handler_seconds = Histogram(
            f"{p}_handler_duration_seconds",
            "Time in event handlers, by namespace and event.",
            ["namespace", "event"],
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.fan_out_size = Histogram(
            f"{p}_broadcast_recipients",
            "Local sockets each broadcast reached.",
            ["namespace"],
            buckets=FAN_OUT_BUCKETS,
            registry=r,
        )
        self.outbox_bytes = Gauge(
            f"{p}_outbox_bytes",
            "Bytes queued for clients and not yet written (sampled each heartbeat tick).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.outbox_max = Gauge(
            f"{p}_outbox_max_bytes",
            "Largest single session outbox (sampled each heartbeat tick).",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.redis_connected = Gauge(
            f"{p}_redis_connected",
            "1 if the Redis adapter's link is connected (sampled each heartbeat tick).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.redis_subscribed = Gauge(
            f"{p}_redis_subscribed",
            "1 if the Redis adapter's link is subscribed (sampled each heartbeat tick).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._dropped_volatile = self.dropped.labels("volatile")
        self._dropped_full = self.dropped.labels("buffer_full")

    def instrument(self, server: Server) -> Metrics:
        """Attach to ``server`` (and its engine), beside any other observer; returns ``self``."""
        self.server = server
        server.observe(self)
        return self

    # -- engine hooks --------------------------------------------------------------

    def handshake(self, transport: Transport) -> None:
        self.handshakes.labels(transport).inc()

    def upgrade_started(self) -> None:
        self.upgrades.labels("started").inc()

    def upgrade_finished(self, session: EngineSession, ok: bool) -> None:
        self.upgrades.labels("completed" if ok else "failed").inc()
        if not ok or self.server is None:
            return
        connection = self.server.connections.get(session.sid)
        if connection is None:
            return
        for socket in connection.sockets.values():
            if socket.connected:
                name = socket.namespace.name
                self.connected.labels("polling", name).dec()
                self.connected.labels("websocket", name).inc()

    def bytes_in(self, transport: Transport, size: int) -> None:
        self.received_bytes.labels(transport).inc(size)

    def bytes_out(self, transport: Transport, size: int) -> None:
        self.sent_bytes.labels(transport).inc(size)

    def buffer_full(self) -> None:
        self._dropped_full.inc()

    def sample(self, sessions: Iterable[EngineSession]) -> None:
        total = largest = 0
        for session in sessions:
            size = session.state.outbox_bytes
            total += size
            largest = max(largest, size)
        self.outbox_bytes.set(total)
        self.outbox_max.set(largest)
        health = getattr(self.server.adapter_factory, "health", None) if self.server else None
        if health is not None:
            self.redis_connected.set(int(health.connected))
            self.redis_subscribed.set(int(health.subscribed))

    # -- Socket.IO hooks -----------------------------------------------------------

    def socket_connected(self, socket: Socket) -> None:
        self.connected.labels(socket.transport, socket.namespace.name).inc()

    def socket_disconnected(self, socket: Socket, reason: str) -> None:
        namespace = socket.namespace.name
        self.connected.labels(socket.transport, namespace).dec()
        self.disconnects.labels(namespace, reason).inc()

    def event_in(self, namespace: str) -> None:
        self.events_in.labels(namespace).inc()

    def events_out(self, namespace: str, count: int) -> None:
        if count:
            self.sent_events.labels(namespace).inc(count)

    def handler_done(self, namespace: str, event: str, seconds: float) -> None:
        self.handler_seconds.labels(namespace, event).observe(seconds)

    def volatile_dropped(self) -> None:
        self._dropped_volatile.inc()

    def ack_timeout(self, namespace: str) -> None:
        self.ack_timeouts.labels(namespace).inc()

    def fan_out(self, namespace: str, recipients: int) -> None:
        self.fan_out_size.labels(namespace).observe(recipients)


class MetricsApp:
    """ASGI app answering every HTTP GET with the metrics in the text format."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry

    def _collect(self) -> bytes:
        if self.registry is not None:
            return generate_latest(self.registry)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Each worker writes its own files: aggregate them all per scrape.
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(REGISTRY)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = self._collect()
        headers = [
            (b"content-type", CONTENT_TYPE_LATEST.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def metrics_app(registry: CollectorRegistry | None = None) -> MetricsApp:
    """The ``/metrics`` endpoint to mount (``Mount("/metrics", metrics_app())``).

    With ``PROMETHEUS_MULTIPROC_DIR`` set it reports the sum over every worker
    process; otherwise this process's ``registry`` (the default one if ``None``).
    """
    return MetricsApp(registry)
