"""The runtime lease and the command channel between replicas (`server/gateway/cluster.py`)
on a real Redis, without servers: a lapsed lease goes to the next replica under a higher
epoch and the old holder is fenced before it can be taken; commands get their answers and
errors back, and a command to a replica that is gone fails fast."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from server.errors import Conflict
from server.gateway.cluster import Cluster, OwnerUnreachable
from tests.support_redis import RedisServer


def replica(redis_server: RedisServer, lost: list[str], lease: float = 1.0) -> Cluster:
    async def handle(op: str, notebook_id: str, args: dict[str, Any]) -> Any:
        if op == "refuse":
            raise Conflict(f"not now, {args['who']}")
        return {"op": op, "notebook": notebook_id, **args}

    return Cluster(
        redis_server.url,
        lease,
        2.0,
        workers=list,
        wanted=lambda notebook_id: True,
        lost=lost.append,
        handle=handle,
    )


async def test_a_lapsed_lease_goes_to_another_replica_and_fences_its_old_holder(
    redis_server: RedisServer,
) -> None:
    lost_x: list[str] = []
    x, y = replica(redis_server, lost_x), replica(redis_server, [])
    notebook = uuid.uuid4().hex
    try:
        assert await x.acquire(notebook)
        first = x.epoch(notebook)
        assert first is not None and x.holds(notebook)
        assert not await y.acquire(notebook)
        assert await y.owner(notebook) == x.replica
        # x is cut off (it renews nothing): y gets the lease once it lapses, never while
        # x still trusts it.
        deadline = time.monotonic() + 5
        while not await y.acquire(notebook):
            assert time.monotonic() < deadline, "the lease never lapsed"
            await asyncio.sleep(0.02)
        assert not x.holds(notebook)
        second = y.epoch(notebook)
        assert second is not None and second > first
        # x is back: its renewal names the old epoch and fails; it learns it lost.
        await x._renew_all()
        assert lost_x == [notebook]
        assert not await x.acquire(notebook)
        assert await x.owner(notebook) == y.replica
        # y hands it back: the next holder's epoch is higher still.
        await y.release(notebook)
        assert await x.acquire(notebook)
        third = x.epoch(notebook)
        assert third is not None and third > second
    finally:
        await x.stop()
        await y.stop()


@pytest.mark.parametrize("op", ["status", "refuse"])
async def test_a_command_reaches_the_owner_and_its_answer_comes_back(
    redis_server: RedisServer, op: str
) -> None:
    x, y = replica(redis_server, []), replica(redis_server, [])
    await x.start()
    await y.start()
    try:
        if op == "status":
            answer = await y.ask(x.replica, "status", "nb", {"who": "y"})
            assert answer == {"op": "status", "notebook": "nb", "who": "y"}
        else:
            with pytest.raises(Conflict, match="not now, y"):
                await y.ask(x.replica, "refuse", "nb", {"who": "y"})
        await x.stop()
        started = time.monotonic()
        with pytest.raises(OwnerUnreachable):
            await y.ask(x.replica, "status", "nb", {})
        assert time.monotonic() - started < 1.5  # nobody listens: no waiting out the timeout
    finally:
        await y.stop()
