"""Regression test: the socket sign-in throttle is counted across replicas through Redis, so
a bad-token flood spread over the replicas gains (almost) nothing: a replica learns of a
block that others counted at the first failure it sees itself from that address."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.replicas.conftest import Replicas, start_replicas
from tests.support import bad_sign_ins
from tests.support_pg import PostgresServer
from tests.support_redis import RedisServer


@pytest.fixture
def throttled(
    postgres: PostgresServer, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Replicas]:
    pair = start_replicas(
        postgres,
        redis_server.url,
        tmp_path,
        TANDEM_TRUSTED_PROXIES='["127.0.0.1"]',
        TANDEM_SOCKET_AUTH_MAX_FAILURES="3",
        TANDEM_SOCKET_AUTH_WINDOW_SECONDS="60",
    )
    try:
        yield pair
    finally:
        pair.stop()
    pair.check_logs()


async def test_failures_at_one_replica_count_at_the_other(throttled: Replicas) -> None:
    # Addresses of this run's own: Redis outlives one test.
    flooder = f"203.0.113.{random.randrange(1, 255)}"
    bystander = f"198.51.100.{random.randrange(1, 255)}"
    notebook = throttled.api(throttled.a, "alice").create("flooded on both")
    assert await bad_sign_ins(throttled.a, notebook, flooder, 4) == [401, 401, 401, 429]
    # One look-up at b (where b learns of it), then b refuses too: not three more.
    assert await bad_sign_ins(throttled.b, notebook, flooder, 2) == [401, 429]
    assert await bad_sign_ins(throttled.b, notebook, bystander, 1) == [401]
    assert await bad_sign_ins(throttled.a, notebook, bystander, 1) == [401]
