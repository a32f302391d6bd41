"""The runtime's status agrees with its queue: never "idle" while a cell runs or waits to
(the editor and API clients read "idle" as "nothing more will run"), "starting" from the
moment a restart is asked for, and idle again once everything asked for has run."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import Cluster, wait_for_workers
from tests.gateway.helpers import Events, events_url, run, status
from tests.support import YClient, eventually, notebook_with_code, sync_url


@pytest.fixture(autouse=True)
def _workers(cluster: Cluster) -> None:
    wait_for_workers(cluster, 1)


def contradictions(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        s
        for s in statuses
        if s["status"] == "idle" and (s["queued_cells"] or s["running_cell"] is not None)
    ]


@pytest.mark.timeout(300)
async def test_no_status_says_idle_while_runs_are_queued(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    token = cluster.person("ann").token
    nb, ids = notebook_with_code(
        ann, ["import time\ntime.sleep(0.05)\nn = globals().get('n', 0) + 1\nn", "n * 2"]
    )
    async with (
        Events(events_url(cluster.server, nb, token)) as events,
        YClient(sync_url(cluster.server, nb, token)) as client,
        httpx.AsyncClient(
            base_url=cluster.server.url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as http,
    ):
        await run(ann, nb, ids, client)  # the kernel is up and idle

        async def execute(cell_ids: list[str], delay: float) -> None:
            await asyncio.sleep(delay)
            response = await http.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": cell_ids})
            assert response.status_code == 202, response.text

        # Runs asked for on an idle kernel, on a busy one, and as it goes idle.
        for round_ in range(4):
            await asyncio.gather(*(execute(ids, 0.03 * i + 0.01 * round_) for i in range(5)))
            await eventually(
                lambda: (now := status(ann, nb))["status"] == "idle" and not now["queued_cells"],
                60,
            )
        statuses = [e["runtime"] for e in events.of("runtime.status")]
        assert statuses, "no runtime.status event arrived"
        assert contradictions(statuses) == []
        assert any(s["status"] == "busy" and s["queued_cells"] for s in statuses)


@pytest.mark.timeout(300)
async def test_a_restart_says_starting_at_once_and_settles_idle(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    token = cluster.person("ann").token
    nb, ids = notebook_with_code(ann, ["x = 1", "x"])
    async with (
        Events(events_url(cluster.server, nb, token)) as events,
        YClient(sync_url(cluster.server, nb, token)) as client,
    ):
        await run(ann, nb, ids, client)
        assert status(ann, nb)["status"] == "idle"
        # The run's own last events may still be on their way: counted from after them.
        await eventually(
            lambda: [e["runtime"]["status"] for e in events.of("runtime.status")][-1:] == ["idle"]
        )
        seen = len(events.of("runtime.status"))
        response = ann.client.post(f"/api/notebooks/{nb}/kernel/restart")
        assert response.status_code == 204, response.text
        # The old kernel is gone when the request returns: nobody may read "idle" now.
        assert status(ann, nb)["status"] in ("starting", "waiting")
        await eventually(lambda: status(ann, nb)["status"] == "idle", 60)

        def after() -> list[str]:
            return [e["runtime"]["status"] for e in events.of("runtime.status")[seen:]]

        await eventually(lambda: "idle" in after())  # events arrive after the REST answer
        assert "starting" in after()
        assert "idle" not in after()[: after().index("starting") + 1]
        await run(ann, nb, [ids[0]], client)
        assert contradictions([e["runtime"] for e in events.of("runtime.status")]) == []
