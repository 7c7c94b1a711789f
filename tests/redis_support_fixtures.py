"""pytest fixtures over ``redis_support``: one single Redis and one 3-master cluster for the
whole session, emptied before each test that uses them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .redis_support import RedisClusterNodes, RedisServer

STORE_KINDS = ["embedded", "redis", "cluster"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    cluster = RedisClusterNodes(tmp_path_factory.mktemp("cluster")).start()
    yield cluster
    cluster.stop()


RELAXED = "timeout_ms=2000"
"""For tests of behaviour, not of deadlines: a 2-core machine running three Redis servers,
the tests and 100 new connections at once can take longer than 100 ms."""


def store_url(request: pytest.FixtureRequest, kind: str) -> str:
    """The URL of an emptied Redis of ``kind`` ("redis" or "cluster")."""
    if kind == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.cli("FLUSHALL")
        return f"{server.url}?{RELAXED}"
    cluster: RedisClusterNodes = request.getfixturevalue("redis_cluster")
    cluster.flush()
    return f"{cluster.url}&{RELAXED}"
