"""Runs asked for while the kernel restarts (Restart and run all, or someone else's Run at
that moment): none runs on the old kernel, none is left hanging, and the runtime settles.
The moment is a race: each round sends a volley of runs around a restart, five rounds
(without the guard, one test in two or more failed)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.gateway.conftest import Cluster, wait_for_workers
from tests.gateway.helpers import cell, run, status, text_of
from tests.support import Api, YClient, eventually, notebook_with_code, sync_url


@pytest.fixture(autouse=True)
def _workers(cluster: Cluster) -> None:
    wait_for_workers(cluster, 1)


def settled(ann: Api, nb: str, client: YClient, ids: list[str]) -> bool:
    """Every run asked for has run: the runtime idle with nothing queued, every cell idle
    (a cell run again while it ran stays "queued" until its last run)."""
    now = status(ann, nb)
    return (
        now["status"] == "idle"
        and not now["queued_cells"]
        and all(cell(client, c)["execution_state"] == "idle" for c in ids)
    )


@pytest.mark.timeout(600)
async def test_runs_sent_while_the_kernel_restarts_go_to_the_new_kernel(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    sources = [
        "secret = 41",
        "import time\nprint('sleeping', flush=True)\ntime.sleep(60)",
        "runs = globals().get('runs', 0) + 1\n"
        "print('old' if 'secret' in globals() else 'fresh', runs)",
    ]
    nb, ids = notebook_with_code(ann, sources)
    token = cluster.person("ann").token
    async with (
        YClient(sync_url(cluster.server, nb, token)) as client,
        httpx.AsyncClient(
            base_url=cluster.server.url,
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=None),
            timeout=60,
        ) as http,
    ):

        async def execute_after(delay: float) -> None:
            await asyncio.sleep(delay)
            response = await http.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [ids[2]]})
            assert response.status_code == 202, response.text

        async def restart_after(delay: float) -> httpx.Response:
            await asyncio.sleep(delay)
            return await http.post(f"/api/notebooks/{nb}/kernel/restart")

        for restart_at in (0.005, 0.01, 0.02, 0.03, 0.04):
            # The old kernel's mark on the cell: a volley run that reached the old kernel
            # would change it, one in the new kernel replaces it.
            await run(ann, nb, [ids[0], ids[2]], client)
            before = text_of(client, ids[2])
            assert before.startswith("old ")
            response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [ids[1]]})
            assert response.is_success
            await eventually(lambda: "sleeping" in text_of(client, ids[1]), 30)
            # The restart, and runs sent before, during and after it: those queued before
            # are dropped with the old queue, the others run in the new kernel.
            volley = [execute_after(i * 0.001) for i in range(40)]
            done = await asyncio.gather(restart_after(restart_at), *volley)
            assert done[0].status_code == 204
            await eventually(lambda: settled(ann, nb, client, ids), 60)
            # Every run the new kernel made was of this cell, and it saw no `secret`. When
            # the whole volley came before the restart (dropped with the old queue), the
            # cell still shows the old kernel's mark and the new kernel ran nothing.
            after = text_of(client, ids[2])
            fresh_runs = 0 if after == before else int(cell(client, ids[2])["execution_count"])
            if fresh_runs:
                assert after == f"fresh {fresh_runs}\n"
            await run(ann, nb, [ids[2]], client)
            assert text_of(client, ids[2]) == f"fresh {fresh_runs + 1}\n"
    ann.client.close()
