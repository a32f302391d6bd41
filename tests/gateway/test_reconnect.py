"""Kernels outlive their worker's connection: a worker that loses the server keeps its
kernels for the reconnect grace, and the server it reaches again (the same one, or one
started anew after a SIGKILL) takes them back where they stopped: the running cell goes
on, every line it printed is shown once, and the kernel's variables are still there."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets

from kernels import messages as m
from tests.gateway.conftest import Cluster, running_cluster, wait_for_workers
from tests.gateway.helpers import cell, run, status, text_of
from tests.support import Api, WorkerProcess, YClient, eventually, notebook_with_code, sync_url

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


async def test_a_worker_cut_off_comes_back_to_its_running_cell(
    tmp_path: Path, scientific_stack: list[str]
) -> None:
    with running_cluster(
        tmp_path / "data",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
        TANDEM_WORKER_TIMEOUT_SECONDS="2",
        # ipywidgets: the environment the widget tests build (one build for both).
        TANDEM_ENVIRONMENTS=json.dumps({"default": scientific_stack}),
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


@contextlib.contextmanager
def frozen(worker: WorkerProcess) -> Iterator[None]:
    """The worker stops answering (its kernels keep running) until the block ends."""
    assert worker.proc is not None
    os.kill(worker.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(worker.proc.pid, signal.SIGCONT)


async def test_a_restarted_kernel_numbers_from_one_and_is_taken_back_whole(
    tmp_path: Path,
) -> None:
    """The server counted a new kernel's messages on from the old one's: a worker coming
    back was told the server had everything up to the old count, forgot what the new kernel
    had said meanwhile, and the cell lost those lines and never ended."""
    with running_cluster(
        tmp_path / "data",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
        TANDEM_WORKER_TIMEOUT_SECONDS="1",
    ) as cluster:
        worker = cluster.start_worker("sleepy")
        wait_for_workers(cluster, 1)
        ann = cluster.api("ann")
        chatty = "import time\nfor i in range(80):\n    print(i, flush=True)\n    time.sleep(0.01)"
        nb, ids = notebook_with_code(ann, [chatty, COUNTING])
        token = cluster.person("ann").token
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            await run(ann, nb, [ids[0]], client)
            restart = ann.client.post(f"/api/notebooks/{nb}/kernel/restart")
            assert restart.status_code in (200, 202, 204), restart.text
            await eventually(lambda: status(ann, nb)["status"] == "idle", 30)
            response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [ids[1]]})
            assert response.status_code == 202, response.text
            await eventually(lambda: "3\n" in text_of(client, ids[1]), 30)
            with frozen(worker):
                await eventually(lambda: status(ann, nb)["status"] == "reconnecting", 20)
                await asyncio.sleep(1)
            await eventually(lambda: done(client, ids[1]), 30)
            assert text_of(client, ids[1]) == EVERY_LINE


ASKING = "name = input('name? ')\nprint('hi', name)"


async def test_a_prompt_is_not_answered_into_a_lost_connection(tmp_path: Path) -> None:
    """While the worker is away an answer (or an interrupt) has nowhere to go: it is refused,
    the prompt stays, and once the worker is back the answer reaches the kernel."""
    with running_cluster(
        tmp_path / "data",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
        TANDEM_WORKER_TIMEOUT_SECONDS="1",
    ) as cluster:
        worker = cluster.start_worker("sleepy")
        wait_for_workers(cluster, 1)
        ann = cluster.api("ann")
        nb, ids = notebook_with_code(ann, [ASKING])
        token = cluster.person("ann").token
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
            assert response.status_code == 202, response.text
            await eventually(lambda: status(ann, nb)["waiting_for_input"] is not None, 30)
            with frozen(worker):
                await eventually(lambda: status(ann, nb)["status"] == "reconnecting", 20)
                # Not "lost": it is waited for.
                assert not status(ann, nb)["reason"].startswith("the runtime was lost")
                answer = ann.client.post(f"/api/notebooks/{nb}/kernel/input", json={"value": "x"})
                assert answer.status_code == 409, answer.text
                stop = ann.client.post(f"/api/notebooks/{nb}/kernel/interrupt")
                assert stop.status_code == 409, stop.text
                assert status(ann, nb)["waiting_for_input"] is not None
            await eventually(lambda: status(ann, nb)["status"] == "busy", 20)
            answer = ann.client.post(f"/api/notebooks/{nb}/kernel/input", json={"value": "bob"})
            assert answer.status_code == 204, answer.text
            await eventually(lambda: done(client, ids[0]), 30)
            assert text_of(client, ids[0]).endswith("hi bob\n")


# Past the 3,000-byte cap at once, then waits for an answer and prints it (dropped: capped).
LOUD_ASK = (
    "for i in range(60):\n    print('x' * 99, flush=True)\n"
    "name = input('name? ')\nprint('hi', name)"
)


async def test_an_adopted_cell_keeps_its_prompt_its_cap_and_its_queue_honest(
    tmp_path: Path,
) -> None:
    """After a restart the cell waiting on input() is still answered by whoever ran it (and
    only by them), it keeps its one truncation notice, and a cell that was queued behind it
    (the new server never queued it) does not stay 'queued' for ever."""
    with running_cluster(
        tmp_path / "data",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
        TANDEM_WORKER_TIMEOUT_SECONDS="5",
        TANDEM_MAX_OUTPUT_BYTES_PER_CELL="3000",
    ) as cluster:
        cluster.start_worker("keeper")
        wait_for_workers(cluster, 1)
        ann, ben = cluster.api("ann"), cluster.api("ben")
        nb, ids = notebook_with_code(ann, [LOUD_ASK, "1 + 1"])
        ann.share(nb, "ben", "editor")
        token = cluster.person("ann").token
        response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
        assert response.status_code == 202, response.text
        await eventually(lambda: status(ann, nb)["waiting_for_input"] is not None, 30)
        await asyncio.sleep(0.3)  # the outputs stored
        cluster.server.kill()
        cluster.server.start()
        # Adopted before anyone opens the notebook (opening it first would tidy it up).
        await eventually(lambda: status(ann, nb)["waiting_for_input"] is not None, 30)
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            answer = ben.client.post(f"/api/notebooks/{nb}/kernel/input", json={"value": "eve"})
            assert answer.status_code == 403, answer.text
            answer = ann.client.post(f"/api/notebooks/{nb}/kernel/input", json={"value": "bob"})
            assert answer.status_code == 204, answer.text
            await eventually(lambda: done(client, ids[0]), 30)
            notices = [
                output
                for output in cell(client, ids[0])["outputs"]
                if output.get("metadata", {}).get("tandem_truncated")
            ]
            assert len(notices) == 1, cell(client, ids[0])["outputs"]
            await eventually(lambda: cell(client, ids[1])["execution_state"] == "idle", 10)


@dataclass
class Secret:
    """A notebook whose kernel, on a worker of its own, ran `secret = 41` (cell 0; cell 1
    reads it), open in ann's client."""

    cluster: Cluster
    worker: WorkerProcess
    ann: Api
    nb: str
    ids: list[str]
    client: YClient


@contextlib.asynccontextmanager
async def a_kept_secret(tmp_path: Path, worker_name: str, grace: int) -> AsyncIterator[Secret]:
    with running_cluster(
        tmp_path / "data",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS=str(grace),
        TANDEM_WORKER_TIMEOUT_SECONDS="1",
    ) as cluster:
        worker = cluster.start_worker(worker_name)
        wait_for_workers(cluster, 1)
        ann = cluster.api("ann")
        nb, ids = notebook_with_code(ann, ["secret = 41", "secret + 1"])
        token = cluster.person("ann").token
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            await run(ann, nb, [ids[0]], client)
            yield Secret(cluster, worker, ann, nb, ids, client)


async def test_a_worker_back_after_the_grace_does_not_revive_its_lost_kernel(
    tmp_path: Path,
) -> None:
    """Past the grace the server says the runtime is lost; a worker that comes back later
    still holding the kernel (its own grace started when it noticed) is told to shut it
    down, not adopted as if the server had never known it."""
    async with a_kept_secret(tmp_path, "late", grace=2) as kept:
        ann, nb, ids, client = kept.ann, kept.nb, kept.ids, kept.client
        with frozen(kept.worker):
            await eventually(lambda: status(ann, nb)["status"] == "disconnected", 20)
        wait_for_workers(kept.cluster, 1)
        await asyncio.sleep(1)
        assert status(ann, nb)["status"] == "disconnected"
        await run(ann, nb, [ids[1]], client)
        assert "NameError" in text_of(client, ids[1])


@pytest.mark.parametrize("back", [True, False], ids=["worker back", "grace over"])
async def test_a_run_asked_for_while_the_worker_is_away_waits_for_it(
    tmp_path: Path, back: bool
) -> None:
    """A Run while the runtime is reconnecting is queued, not sent down the lost connection
    (where it vanished and the cell said "running" for ever): it runs once when the worker
    is back, and goes back to idle with the kernel when the grace is over."""
    async with a_kept_secret(tmp_path, "napper", grace=60 if back else 6) as kept:
        ann, nb, ids, client = kept.ann, kept.nb, kept.ids, kept.client
        with frozen(kept.worker):
            await eventually(lambda: status(ann, nb)["status"] == "reconnecting", 20)
            response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [ids[1]]})
            assert response.status_code == 202, response.text
            now = status(ann, nb)
            assert now["status"] == "reconnecting", now
            assert (now["queued_cells"], now["running_cell"]) == ([ids[1]], None)
            await eventually(lambda: cell(client, ids[1])["execution_state"] == "queued")
            if not back:
                await eventually(lambda: status(ann, nb)["status"] == "disconnected", 20)
                assert status(ann, nb)["queued_cells"] == []
                await eventually(lambda: cell(client, ids[1])["execution_state"] == "idle")
                assert cell(client, ids[1]).get("execution_count") is None
        if back:
            await eventually(lambda: done(client, ids[1]), 30)
            assert text_of(client, ids[1]).strip() == "42"  # the same kernel, once
            assert status(ann, nb)["status"] == "idle"
        else:
            wait_for_workers(kept.cluster, 1)
            await run(ann, nb, [ids[1]], client)  # a new kernel
            assert "NameError" in text_of(client, ids[1])


async def test_a_worker_back_without_the_kernel_is_not_waited_for(tmp_path: Path) -> None:
    """A worker restarted (its kernels died with it) says hello without them: the runtime
    is lost then, not 'reconnecting' for the rest of the grace."""
    with running_cluster(
        tmp_path / "data",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
        TANDEM_WORKER_TIMEOUT_SECONDS="1",
    ) as cluster:
        worker = cluster.start_worker("phoenix")
        wait_for_workers(cluster, 1)
        ann = cluster.api("ann")
        nb, ids = notebook_with_code(ann, ["secret = 41"])
        token = cluster.person("ann").token
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            await run(ann, nb, [ids[0]], client)
        worker.kill()
        await eventually(lambda: status(ann, nb)["status"] == "reconnecting", 20)
        cluster.workers.append(WorkerProcess(cluster.server, worker.token, "phoenix").start())
        await eventually(lambda: status(ann, nb)["status"] == "disconnected", 15)
        assert "came back without it" in status(ann, nb)["reason"]


async def test_another_worker_token_cannot_claim_a_kernel_held_for_its_worker(
    tmp_path: Path,
) -> None:
    """A hello from a second worker token naming a kernel the server waits for is told to
    shut it down: the kernel stays its worker's, which takes it back when it returns."""
    with running_cluster(
        tmp_path / "data",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
        TANDEM_WORKER_TIMEOUT_SECONDS="1",
    ) as cluster:
        worker = cluster.start_worker("owner")
        wait_for_workers(cluster, 1)
        other = cluster.worker_token("forger")
        ann = cluster.api("ann")
        nb, ids = notebook_with_code(ann, ["secret = 41", "secret + 1"])
        token = cluster.person("ann").token
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            await run(ann, nb, [ids[0]], client)
            (listed,) = cluster.workers_online()
            kernel_id = listed["kernels"][0]["kernel_id"]  # type: ignore[index]
            with frozen(worker):
                await eventually(lambda: status(ann, nb)["status"] == "reconnecting", 20)
                answer = await forged_hello(cluster, other, kernel_id, nb)
                assert answer == {"type": "shutdown_kernel", "kernel_id": kernel_id}
                assert status(ann, nb)["status"] == "reconnecting"
            await eventually(lambda: status(ann, nb)["status"] == "idle", 20)
            assert status(ann, nb)["worker"] == "owner"
            await run(ann, nb, [ids[1]], client)
            assert text_of(client, ids[1]) == "42"


async def test_a_worker_cannot_claim_a_notebook_it_runs_no_kernel_for(tmp_path: Path) -> None:
    """A hello naming a kernel for a notebook whose runtime is stopped was adopted: the
    worker became the notebook's (its files readable, its next cells sent there). Only a
    kernel id this server (or the one before it) made for that notebook and token is."""
    with running_cluster(tmp_path / "data", TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60") as cluster:
        forger = cluster.worker_token("forger")
        ann = cluster.api("ann")
        nb, _ = notebook_with_code(ann, ["secret = 41"])
        kernel_id = "f" * 64
        answer = await forged_hello(cluster, forger, kernel_id, nb)
        assert answer == {"type": "shutdown_kernel", "kernel_id": kernel_id}
        assert status(ann, nb)["status"] == "stopped"
        assert status(ann, nb)["worker"] is None


async def forged_hello(cluster: Cluster, token: str, kernel_id: str, notebook_id: str) -> Any:
    """Say hello as a worker holding `kernel_id`; the server's first answer after welcome."""
    hello = m.Hello(
        name="forger",
        resources=m.Resources(cpus=1, memory_mb=1024),
        max_kernels=4,
        kernels=[m.HeldKernel(kernel_id=kernel_id, workspace=notebook_id)],
    )
    url = f"{cluster.server.ws_url}/api/workers/connect"
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(m.encode(hello))
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert welcome["type"] == "welcome"
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_the_local_worker_still_loses_its_kernels_with_the_connection(
    tmp_path: Path,
) -> None:
    """The server gives the local worker no grace (it does not outlive its server); the
    worker was still told to keep its kernels, and its next hello had the server adopt the
    kernel it had just declared lost."""
    with running_cluster(
        tmp_path / "data",
        TANDEM_LOCAL_WORKER="true",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
        TANDEM_WORKER_TIMEOUT_SECONDS="1",
    ) as cluster:
        wait_for_workers(cluster, 1)
        ann = cluster.api("ann")
        nb, ids = notebook_with_code(ann, ["secret = 41", "secret + 1"])
        token = cluster.person("ann").token
        assert cluster.server.proc is not None
        server_pid = cluster.server.proc.pid
        children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
        (local,) = [int(pid) for pid in children]
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            await run(ann, nb, [ids[0]], client)
            os.kill(local, signal.SIGSTOP)
            try:
                await eventually(lambda: status(ann, nb)["status"] == "disconnected", 20)
            finally:
                os.kill(local, signal.SIGCONT)
            wait_for_workers(cluster, 1)
            await asyncio.sleep(1)
            assert status(ann, nb)["status"] == "disconnected"
            await run(ann, nb, [ids[1]], client)
            assert "NameError" in text_of(client, ids[1])
