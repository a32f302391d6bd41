"""Interrupt, restart, input(), a kernel that dies, and runs with nobody watching."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.gateway.conftest import Cluster, wait_for_workers
from tests.gateway.helpers import Events, cell, events_url, finished_since, run, status, text_of
from tests.support import YClient, eventually, notebook_with_code, sync_url


@pytest.fixture(autouse=True)
def _workers(cluster: Cluster) -> None:
    wait_for_workers(cluster, 1)


async def test_interrupt_a_long_sleep(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, ["import time\nprint('sleeping')\ntime.sleep(60)", "2"])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        since = int(time.time() * 1000) - 5
        response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
        assert response.status_code == 202
        await eventually(lambda: "sleeping" in text_of(client, ids[0]), 30)
        assert cell(client, ids[0])["execution_state"] == "running"
        assert cell(client, ids[1])["execution_state"] == "queued"
        started = time.monotonic()
        assert ann.client.post(f"/api/notebooks/{nb}/kernel/interrupt").status_code == 204
        await eventually(lambda: finished_since(client, ids[0], since), 20)
        assert time.monotonic() - started < 10
        assert "KeyboardInterrupt" in text_of(client, ids[0])
        # What was run together with it does not run, as in Jupyter.
        await eventually(lambda: cell(client, ids[1])["execution_state"] == "idle")
        # The kernel survived: its state is still there.
        nb_state = status(ann, nb)
        assert nb_state["status"] == "idle"
        await run(ann, nb, [ids[1]], client)
        assert text_of(client, ids[1]) == "2"
    ann.client.close()


async def test_restart_clears_state_and_queue(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(
        ann, ["secret = 41", "import time\ntime.sleep(30)", "print('never')", "print(secret)"]
    )
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, [ids[0]], client)
        response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids[1:3]})
        assert response.status_code == 202
        await eventually(lambda: cell(client, ids[1])["execution_state"] == "running", 20)
        assert ann.client.post(f"/api/notebooks/{nb}/kernel/restart").status_code == 204
        await eventually(lambda: status(ann, nb)["status"] == "idle", 30)
        await eventually(lambda: cell(client, ids[2])["execution_state"] == "idle")
        assert cell(client, ids[2])["execution_count"] is None
        assert cell(client, ids[1])["execution_state"] == "idle"
        await run(ann, nb, [ids[3]], client)
        assert "NameError" in text_of(client, ids[3])  # a fresh kernel
        assert cell(client, ids[3])["execution_count"] == 1
    ann.client.close()


async def test_input_prompts_the_person_who_ran_the_cell(cluster: Cluster) -> None:
    ann, ben = cluster.api("ann"), cluster.api("ben")
    nb, ids = notebook_with_code(ann, ["name = input('Your name? ')\nprint('hi', name)"])
    ann.share(nb, "ben", "editor")
    ann_events = Events(events_url(cluster.server, nb, cluster.person("ann").token))
    ben_events = Events(events_url(cluster.server, nb, cluster.person("ben").token))
    async with (
        ann_events,
        ben_events,
        YClient(sync_url(cluster.server, nb, cluster.person("ben").token)) as client,
    ):
        since = int(time.time() * 1000) - 5
        ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
        asked = await ann_events.wait("kernel.input_requested")
        assert asked["prompt"] == "Your name? "
        assert asked["username"] == "ann"
        # Everyone sees that the cell waits, and for whom.
        seen = await ben_events.wait("kernel.input_requested")
        assert seen["cell_id"] == ids[0]
        assert status(ben, nb)["waiting_for_input"]["username"] == "ann"
        # Only the person who ran it may answer.
        refused = ben.client.post(f"/api/notebooks/{nb}/kernel/input", json={"value": "ben"})
        assert refused.status_code == 403
        answered = ann.client.post(f"/api/notebooks/{nb}/kernel/input", json={"value": "Ann"})
        assert answered.status_code == 204
        await eventually(lambda: finished_since(client, ids[0], since), 20)
        assert "hi Ann" in text_of(client, ids[0])
        await ben_events.wait("kernel.input_answered")
        again = ann.client.post(f"/api/notebooks/{nb}/kernel/input", json={"value": "x"})
        assert again.status_code == 409
    ann.client.close()
    ben.client.close()


async def test_a_dying_kernel_fails_its_cell_and_the_next_run_starts_anew(
    cluster: Cluster,
) -> None:
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(
        ann, ["x = 1", "import os\nprint('bye', flush=True)\nos._exit(1)", "print('after')", "x"]
    )
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, [ids[0]], client)
        since = int(time.time() * 1000) - 5
        ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids[1:3]})
        await eventually(lambda: finished_since(client, ids[1], since), 30)
        assert "RuntimeLost" in text_of(client, ids[1])
        assert "exited" in text_of(client, ids[1])
        await eventually(lambda: cell(client, ids[2])["execution_state"] == "idle")
        assert cell(client, ids[2])["outputs"] == []
        assert status(ann, nb)["status"] == "disconnected"
        await run(ann, nb, [ids[3]], client)
        assert "NameError" in text_of(client, ids[3])
    ann.client.close()


async def test_a_killed_kernel_says_so(cluster: Cluster) -> None:
    """SIGKILL, as the OOM killer sends it."""
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, ["import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, ids, client)
        assert "RuntimeLost" in text_of(client, ids[0])
        assert "SIGKILL" in text_of(client, ids[0])
        assert status(ann, nb)["status"] == "disconnected"


async def test_outputs_keep_arriving_with_no_browser_open(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    code = "import time\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.3)"
    nb, ids = notebook_with_code(ann, [code])
    since = int(time.time() * 1000) - 5
    response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
    assert response.status_code == 202
    await eventually(lambda: status(ann, nb)["status"] == "idle", 30)
    await asyncio.sleep(1.5)  # past the room's grace: it is unloaded and reloaded
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        assert finished_since(client, ids[0], since)
        assert text_of(client, ids[0]) == "0\n1\n2\n3\n4\n"
    assert ann.export(nb)["cells"][0]["outputs"][0]["text"] == "0\n1\n2\n3\n4\n"
    ann.client.close()


async def test_runtime_status_goes_out_as_events(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, ["import time\ntime.sleep(0.5)"])
    async with Events(events_url(cluster.server, nb, cluster.person("ann").token)) as events:
        assert events.of("hello")[0]["runtime"]["status"] == "stopped"
        ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
        await events.wait("runtime.status", lambda e: e["runtime"]["status"] == "busy")
        busy = next(e for e in events.of("runtime.status") if e["runtime"]["status"] == "busy")
        assert busy["runtime"]["running_cell"] == ids[0]
        assert busy["runtime"]["worker"] == "cpu-1"
        idle = await events.wait("runtime.status", lambda e: e["runtime"]["status"] == "idle")
        assert idle["runtime"]["idle_deadline"] is not None
        assert idle["runtime"]["lifetime_deadline"] is not None
        states = [e["runtime"]["status"] for e in events.of("runtime.status")]
        assert states.index("starting") < states.index("busy") < states.index("idle")
    ann.client.close()
