"""Reading the Redis URL forms: one server, Sentinel, Cluster."""

from __future__ import annotations

import pytest

from realtime.exceptions import RedisURLError
from realtime.redis_topology import Kind, describe, parse


def test_plain_urls_go_to_the_client_as_they_are() -> None:
    for url in ("redis://h:1/2", "rediss://u:p@h", "unix:///tmp/r.sock"):
        topology = parse(url)
        assert (topology.kind, topology.url) == (Kind.SINGLE, url)


def test_sentinel_url() -> None:
    topology = parse("redis+sentinel://user:p%40ss@a:26380,b/mymaster/3")
    assert topology.kind is Kind.SENTINEL
    assert topology.nodes == (("a", 26380), ("b", 26379))
    assert (topology.service_name, topology.db) == ("mymaster", 3)
    assert topology.credentials() == {"username": "user", "password": "p@ss"}


def test_cluster_url() -> None:
    topology = parse("redis+cluster://:secret@a:7000,b:7001")
    assert topology.kind is Kind.CLUSTER
    assert topology.nodes == (("a", 7000), ("b", 7001))
    assert topology.credentials() == {"password": "secret"}


@pytest.mark.parametrize(
    "url",
    [
        "127.0.0.1:6379",
        "redis+sentinel://a:26379",
        "redis+sentinel://a:26379/m/x",
        "redis+sentinel://a:port/m",
        "redis+cluster://,",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(RedisURLError):
        parse(url)


def test_describe_hides_the_password() -> None:
    assert describe("redis+sentinel://u:secret@a/m") == "redis+sentinel://u:***@a/m"
    assert describe("redis://a:1") == "redis://a:1"
