"""Kernels outlive their worker's connection: a worker that loses the server keeps its
kernels for the reconnect grace, and the server it reaches again (the same one, or one
started anew after a SIGKILL) takes them back where they stopped: the running cell goes
on, every line it printed is shown once, and the kernel's variables are still there."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from tests.gateway.conftest import running_cluster, wait_for_workers
from tests.gateway.helpers import cell, run, status, text_of
from tests.support import YClient, eventually, notebook_with_code, sync_url

COUNT = 40
# Prints 0..39, one line every 0.2 s: about 8 s, long enough to lose the server mid-run.
COUNTING = f"import time\nfor i in range({COUNT}):\n    print(i, flush=True)\n    time.sleep(0.2)"
EVERY_LINE = "".join(f"{i}\n" for i in range(COUNT))


def done(client: YClient, cell_id: str) -> bool:
    view = cell(client, cell_id)
    return view.get("execution_state") == "idle" and view.get("execution_count") is not None


async def test_a_server_killed_mid_run_takes_the_kernel_and_its_finished_cell_back(
    tmp_path: Path,
) -> None:
    with running_cluster(
        tmp_path / "data",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
        TANDEM_WORKER_TIMEOUT_SECONDS="5",
    ) as cluster:
        cluster.start_worker("keeper")
        wait_for_workers(cluster, 1)
        ann = cluster.api("ann")
        nb, ids = notebook_with_code(ann, ["secret = 41", COUNTING, "secret + 1"])
        token = cluster.person("ann").token
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            await run(ann, nb, [ids[0]], client)
            response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [ids[1]]})
            assert response.status_code == 202, response.text
            await eventually(lambda: "3\n" in text_of(client, ids[1]), 30)
            cluster.server.kill()
        # The cell ends while no server runs: its last lines and its end wait on the worker.
        await asyncio.sleep(COUNT * 0.2)
        cluster.server.start()
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            await eventually(lambda: done(client, ids[1]), 60)
            # What the old server stored, what the worker kept meanwhile, what came after:
            # each line once, in order.
            assert text_of(client, ids[1]) == EVERY_LINE
            assert cell(client, ids[1])["execution_count"] == 2
            assert cell(client, ids[1])["metadata"]["executionInfo"]["user"]["displayName"] == "ann"
            # The same kernel: what the first cell defined is still there.
            await run(ann, nb, [ids[2]], client)
            assert text_of(client, ids[2]) == "42"
            assert cell(client, ids[2])["execution_count"] == 3


def slider_value(api: Any, notebook_id: str) -> Any:
    response = api.client.get(f"/api/notebooks/{notebook_id}/widgets")
    assert response.status_code == 200, response.text
    sliders = [m["state"] for m in response.json()["models"] if "IntSlider" in str(m["state"])]
    return sliders[0].get("value") if sliders else None


async def test_a_worker_cut_off_comes_back_to_its_running_cell(tmp_path: Path) -> None:
    with running_cluster(
        tmp_path / "data",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
        TANDEM_WORKER_TIMEOUT_SECONDS="2",
    ) as cluster:
        worker = cluster.start_worker("sleepy")
        wait_for_workers(cluster, 1)
        ann = cluster.api("ann")
        # The loop also moves a widget: its last moves happen while the worker is stopped.
        slider = "secret = 41\nimport ipywidgets\nw = ipywidgets.IntSlider(max=100)\nw"
        counting = COUNTING.replace(
            "    print(i, flush=True)", "    w.value = i\n    print(i, flush=True)"
        )
        nb, ids = notebook_with_code(ann, [slider, counting, "secret + 1"])
        token = cluster.person("ann").token
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            await run(ann, nb, [ids[0]], client)
            response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [ids[1]]})
            assert response.status_code == 202, response.text
            await eventually(lambda: "3\n" in text_of(client, ids[1]), 30)
            assert worker.proc is not None
            # The worker stops answering (its kernel keeps running): the server cuts it off
            # after the heartbeat timeout and waits for it, the notebook says so.
            os.kill(worker.proc.pid, signal.SIGSTOP)
            try:
                await eventually(lambda: status(ann, nb)["status"] == "reconnecting", 20)
                assert "waiting up to 60 s" in status(ann, nb)["reason"]
                await asyncio.sleep(COUNT * 0.2)  # the cell ends while the worker is stopped
            finally:
                os.kill(worker.proc.pid, signal.SIGCONT)
            await eventually(lambda: done(client, ids[1]), 60)
            assert text_of(client, ids[1]) == EVERY_LINE
            # What the kernel's widget said meanwhile reached the server too.
            assert slider_value(ann, nb) == COUNT - 1
            await run(ann, nb, [ids[2]], client)
            assert text_of(client, ids[2]) == "42"
            assert status(ann, nb)["worker"] == "sleepy"
