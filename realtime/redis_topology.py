"""Which Redis deployment a URL names: one server, a Sentinel-managed primary, or a Cluster.

The adapter and both emitters take one URL string and pass it here:

* ``redis://[[user]:password@]host:port[/db]`` (also ``rediss://``, ``unix://``):
  one server, as the client libraries read it.
* ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]``:
  ask the Sentinels for ``service_name``'s primary; the client asks again on
  every new connection, so a reconnect after a failover reaches the new primary.
  The credentials are the primary's (the Sentinels are reached without any).
* ``redis+cluster://[[user]:password@]host:port[,host:port...]``: a Redis Cluster,
  found from these startup nodes. Classic pub/sub reaches every node of a
  cluster; server counts sum ``PUBSUB NUMSUB`` over the nodes.

Parsing is pure (:func:`parse`); building clients imports the library asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from realtime.exceptions import RedisURLError

if TYPE_CHECKING:
    import coredis
    import redis

SENTINEL_SCHEME = "redis+sentinel"
CLUSTER_SCHEME = "redis+cluster"


class Kind(StrEnum):
    SINGLE = "single"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


@dataclass(frozen=True, slots=True)
class Topology:
    """A parsed URL. ``url`` is the original (for a single server, what the client reads)."""

    kind: Kind
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None

    def credentials(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.username:
            found["username"] = self.username
        if self.password:
            found["password"] = self.password
        return found


def _nodes(hosts: str, default_port: int, url: str) -> tuple[tuple[str, int], ...]:
    nodes: list[tuple[str, int]] = []
    for part in hosts.split(","):
        host, sep, port = part.strip().rpartition(":")
        if not sep:
            host, port = port, str(default_port)
        if not host or not port.isdigit():
            raise RedisURLError(f"bad host:port {part!r} in Redis URL {url!r}")
        nodes.append((host.strip("[]"), int(port)))
    return tuple(nodes)


def parse(url: str) -> Topology:
    """Read a Redis URL (the forms in this module's docstring)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise RedisURLError(f"not a Redis URL: {url!r}")
    scheme = scheme.lower()
    if scheme not in (SENTINEL_SCHEME, CLUSTER_SCHEME):
        return Topology(Kind.SINGLE, url)
    userinfo, at, location = rest.rpartition("@")
    if not at:
        location = rest
    username = password = None
    if userinfo:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    hosts, _, path = location.partition("/")
    path = path.partition("?")[0]
    if scheme == CLUSTER_SCHEME:
        return Topology(
            Kind.CLUSTER,
            url,
            _nodes(hosts, 6379, url),
            username=username,
            password=password,
        )
    segments = [s for s in path.split("/") if s]
    if not segments or len(segments) > 2:
        raise RedisURLError(f"Sentinel URL needs /service_name[/db]: {url!r}")
    if len(segments) == 2 and not segments[1].isdigit():
        raise RedisURLError(f"bad database number in {url!r}")
    return Topology(
        Kind.SENTINEL,
        url,
        _nodes(hosts, 26379, url),
        service_name=unquote(segments[0]),
        db=int(segments[1]) if len(segments) == 2 else 0,
        username=username,
        password=password,
    )


def describe(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, location = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{location}"


@contextlib.asynccontextmanager
async def coredis_client(url: str, **options: Any) -> AsyncIterator[coredis.Redis[bytes]]:
    """An entered coredis client for ``url``; ``options`` go to each connection.

    For a cluster the client is a ``coredis.RedisCluster`` (the same commands).
    """
    import coredis as coredis_

    topology = parse(url)
    client: Any
    async with contextlib.AsyncExitStack() as stack:
        if topology.kind is Kind.SINGLE:
            client = coredis_.Redis.from_url(url, decode_responses=False, **options)
        elif topology.kind is Kind.CLUSTER:
            from coredis.connection import TCPLocation

            client = coredis_.RedisCluster(
                startup_nodes=[TCPLocation(h, p) for h, p in topology.nodes],
                decode_responses=False,
                **topology.credentials(),
                **options,
            )
        else:
            from coredis.connection import TCPLocation

            retry = options.pop("retry_policy", None)
            sentinel = coredis_.Sentinel(
                [TCPLocation(h, p) for h, p in topology.nodes],
                decode_responses=False,
                sentinel_kwargs={
                    k: v for k, v in options.items() if k in ("connect_timeout", "stream_timeout")
                },
                **({"retry_policy": retry} if retry is not None else {}),
                **options,
            )
            await stack.enter_async_context(sentinel)
            client = sentinel.primary_for(
                topology.service_name, db=topology.db, **topology.credentials()
            )
        await stack.enter_async_context(client)
        yield client


def redis_py_client(url: str, **options: Any) -> redis.Redis:
    """A redis-py client for ``url`` (a ``RedisCluster`` for a cluster; same publish)."""
    import redis as redis_py

    topology = parse(url)
    if topology.kind is Kind.SINGLE:
        return redis_py.Redis.from_url(url, **options)
    if topology.kind is Kind.CLUSTER:
        from redis.cluster import ClusterNode, RedisCluster

        options.pop("retry", None)  # the cluster client keeps its own retries
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in topology.nodes],  # type: ignore[no-untyped-call]
            **topology.credentials(),
            **options,
        )
        return cluster  # type: ignore[return-value]
    from redis.sentinel import Sentinel

    sentinel_options = {
        k: v for k, v in options.items() if k in ("socket_timeout", "socket_connect_timeout")
    }
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(topology.nodes), sentinel_kwargs=sentinel_options, **options
    )
    primary: redis_py.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        topology.service_name, db=topology.db, **topology.credentials()
    )
    return primary
