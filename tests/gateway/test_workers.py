"""Workers joining, leaving and failing; runtime types and GPUs; worker tokens.

A "GPU worker" here is a real worker process whose `nvidia-smi` prints a recorded H100
listing: scheduling and `CUDA_VISIBLE_DEVICES` are real, the GPUs are not (this machine has
none). bench/gpu_check.sh runs the same path on a real GPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import websockets

from tests.gateway.conftest import Cluster, running_cluster, wait_for_workers
from tests.gateway.helpers import Events, cell, events_url, finished_since, run, status, text_of
from tests.support import (
    ServerProcess,
    WorkerProcess,
    YClient,
    eventually,
    notebook_with_code,
    sync_url,
)

DATA = Path(__file__).resolve().parent.parent / "kernels" / "data"


def fake_gpu_path(tmp_path: Path, listing: str) -> dict[str, str]:
    """PATH with an nvidia-smi that prints a recorded listing."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat '{DATA / listing}'\n")
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path / "data", TANDEM_WORKER_TIMEOUT_SECONDS="3") as cluster:
        yield cluster


async def test_notebook_moves_between_runtimes_and_gpus_are_exclusive(
    own_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = own_cluster
    cluster.start_worker("cpu-node")
    cluster.start_worker("gpu-node", env=fake_gpu_path(tmp_path, "nvidia-smi-h100x2.csv"))
    wait_for_workers(cluster, 2)
    listed = {w["name"]: w for w in cluster.workers_online()}
    assert [g["name"] for g in listed["gpu-node"]["gpus"]] == ["NVIDIA H100 80GB HBM3"] * 2
    assert listed["cpu-node"]["gpus"] == []
    assert listed["cpu-node"]["cpus"] >= 1 and listed["cpu-node"]["memory_mb"] > 0

    ann = cluster.api("ann")
    probe = "import os, socket\nprint(repr(os.environ['CUDA_VISIBLE_DEVICES']))"
    nb, ids = notebook_with_code(ann, [probe])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, ids, client)
        assert text_of(client, ids[0]) == "''\n"  # a CPU kernel sees no GPU
        assert cell(client, ids[0])["metadata"]["executionInfo"]["worker"] == "cpu-node"

        response = ann.client.put(f"/api/notebooks/{nb}/runtime", json={"type": "gpu"})
        assert response.status_code == 200, response.text
        await eventually(lambda: status(ann, nb)["status"] == "idle", 30)
        assert status(ann, nb)["worker"] == "gpu-node"
        assert status(ann, nb)["gpus"] == ["NVIDIA H100 80GB HBM3"]
        await run(ann, nb, ids, client)
        first_gpu = text_of(client, ids[0])
        assert first_gpu in ("'0'\n", "'1'\n")
        info = cell(client, ids[0])["metadata"]["executionInfo"]
        assert info["worker"] == "gpu-node" and info["runtime"] == "gpu"

        # A second GPU notebook gets the other GPU; a third waits in line.
        nb2, ids2 = notebook_with_code(ann, [probe])
        nb3, ids3 = notebook_with_code(ann, [probe])
        for other in (nb2, nb3):
            assert ann.client.put(
                f"/api/notebooks/{other}/runtime", json={"type": "gpu"}
            ).is_success
        async with YClient(sync_url(cluster.server, nb2, cluster.person("ann").token)) as c2:
            await run(ann, nb2, ids2, c2)
            assert text_of(c2, ids2[0]) != first_gpu
            assert text_of(c2, ids2[0]) in ("'0'\n", "'1'\n")
        response = ann.client.post(f"/api/notebooks/{nb3}/execute", json={"cell_ids": ids3})
        assert response.status_code == 202
        await eventually(lambda: status(ann, nb3)["status"] == "waiting")
        assert status(ann, nb3)["queue_position"] == 1
        # Back to CPU: the GPU is freed and the waiting notebook gets it.
        assert ann.client.put(f"/api/notebooks/{nb}/runtime", json={"type": "cpu"}).is_success
        await eventually(lambda: status(ann, nb3)["status"] == "idle", 30)
        assert status(ann, nb3)["worker"] == "gpu-node"
        gpus_in_use = {w["name"]: w["gpus_in_use"] for w in cluster.workers_online()}
        assert sorted(gpus_in_use["gpu-node"]) == [0, 1]
    response = ann.client.put(f"/api/notebooks/{nb}/runtime", json={"type": "tpu"})
    assert response.status_code == 400
    assert "cpu, gpu" in response.json()["detail"]
    ann.client.close()


async def test_worker_killed_mid_execution(own_cluster: Cluster) -> None:
    cluster = own_cluster
    doomed = cluster.start_worker("doomed")
    wait_for_workers(cluster, 1)
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(
        ann, ["print('working', flush=True)\nimport time\ntime.sleep(60)", "print('queued')", "1"]
    )
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        since = int(time.time() * 1000) - 5
        ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids[:2]})
        await eventually(lambda: "working" in text_of(client, ids[0]), 30)
        doomed.kill()
        killed_at = time.monotonic()
        await eventually(lambda: finished_since(client, ids[0], since), 10)
        assert time.monotonic() - killed_at < 5
        assert "RuntimeLost" in text_of(client, ids[0])
        assert "doomed" in text_of(client, ids[0])
        assert text_of(client, ids[0]).startswith("working\n")  # nothing already there lost
        await eventually(lambda: cell(client, ids[1])["execution_state"] == "idle")
        assert status(ann, nb)["status"] == "disconnected"
        # The next run starts a new kernel on another worker.
        cluster.start_worker("spare")
        await run(ann, nb, [ids[2]], client)
        assert text_of(client, ids[2]) == "1"
        assert cell(client, ids[2])["metadata"]["executionInfo"]["worker"] == "spare"
    ann.client.close()


async def test_a_silent_worker_is_declared_lost(own_cluster: Cluster) -> None:
    cluster = own_cluster
    frozen = cluster.start_worker("frozen")
    wait_for_workers(cluster, 1)
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, ["import time\nprint('on', flush=True)\ntime.sleep(60)"])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        since = int(time.time() * 1000) - 5
        ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
        await eventually(lambda: "on" in text_of(client, ids[0]), 30)
        assert frozen.proc is not None
        frozen.proc.send_signal(signal.SIGSTOP)  # alive, connected, silent
        try:
            await eventually(lambda: finished_since(client, ids[0], since), 15)
            assert "stopped responding" in text_of(client, ids[0])
            assert cluster.workers_online() == []
        finally:
            frozen.proc.send_signal(signal.SIGCONT)
        # Awake again, it reconnects by itself.
        await eventually(lambda: len(cluster.workers_online()) == 1, 30)
    ann.client.close()


async def test_worker_reconnects_after_a_server_restart(own_cluster: Cluster) -> None:
    cluster = own_cluster
    cluster.start_worker("steady")
    wait_for_workers(cluster, 1)
    cluster.server.stop()
    cluster.server.start()
    await eventually(lambda: len(cluster.workers_online()) == 1, 40)
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, ["40 + 2"])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, ids, client)
        assert text_of(client, ids[0]) == "42"
    ann.client.close()


async def test_worker_tokens_wrong_revoked_and_bad_messages(own_cluster: Cluster) -> None:
    cluster = own_cluster
    server = cluster.server
    connect = f"{server.ws_url}/api/workers/connect"
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(connect, additional_headers={"Authorization": "Bearer tdw_nope"})
    assert refused.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(connect)
    # An API token is not a worker token.
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(f"{connect}?token={cluster.person('ann').token}")

    good = cluster.start_worker("good")
    wait_for_workers(cluster, 1)
    token = cluster.worker_token("rogue")
    rogue = await websockets.connect(
        connect, additional_headers={"Authorization": f"Bearer {token}"}
    )
    hello = {
        "type": "hello",
        "name": "rogue",
        "resources": {"cpus": 1, "memory_mb": 1},
        "max_kernels": 1,
    }
    await rogue.send(json.dumps(hello))
    welcome = json.loads(await rogue.recv())
    assert welcome["type"] == "welcome"
    for junk in ["not json", json.dumps({"type": "explode"}), json.dumps([1, 2])]:
        await rogue.send(junk)
    await rogue.send(json.dumps({"type": "output", "kernel_id": "x" * 10, "execution_id": "y"}))
    await rogue.send(json.dumps({"type": "kernel_died", "kernel_id": "not-one-of-yours"}))
    await rogue.send(json.dumps({"type": "heartbeat"}))
    assert {w["name"] for w in cluster.workers_online()} == {"good", "rogue"}
    await rogue.close()

    # Others are unaffected: a notebook still runs on the good worker.
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, ["'fine'"])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, ids, client)
        assert text_of(client, ids[0]) == "'fine'"
    # Revoking the token disconnects the worker for good.
    tokens = cluster.admin_api.client.get("/api/workers/tokens").json()
    assert all("token" not in t for t in tokens)
    good_id = next(t["id"] for t in tokens if t["name"] == "good")
    assert cluster.admin_api.client.delete(f"/api/workers/tokens/{good_id}").status_code == 204
    await eventually(lambda: cluster.workers_online() == [], 10)
    assert good.proc is not None
    assert good.proc.wait(20) == 3
    log = server.log() + good.log()
    for t in (token, cluster.workers[0].token):
        assert t not in log
    with server.data_dir.joinpath("tandem.db").open("rb") as db:
        assert token.encode() not in db.read()
    ann.client.close()


async def test_idle_timeout_and_lifetime_stop_the_kernel(tmp_path: Path) -> None:
    with running_cluster(
        tmp_path / "data",
        {"w": []},
        TANDEM_KERNEL_IDLE_TIMEOUT_SECONDS="3",
        TANDEM_KERNEL_MAX_LIFETIME_SECONDS="6",
        TANDEM_KERNEL_WARNING_SECONDS="2",
    ) as cluster:
        server = cluster.server
        ann = cluster.api("ann")
        nb, ids = notebook_with_code(ann, ["print('kept')", "import time\ntime.sleep(30)"])
        async with (
            Events(events_url(server, nb, cluster.person("ann").token)) as events,
            YClient(sync_url(server, nb, cluster.person("ann").token)) as client,
        ):
            await run(ann, nb, ids[:1], client)
            warning = await events.wait("runtime.warning", lambda e: e["reason"] == "idle")
            assert 0 < warning["seconds_left"] <= 2
            await eventually(lambda: status(ann, nb)["status"] == "stopped", 10)
            assert "idle timeout" in status(ann, nb)["reason"]
            assert text_of(client, ids[0]) == "kept\n"  # outputs untouched
            assert cluster.workers_online()[0]["kernels"] == []

            # Busy past the lifetime: stopped anyway, and the cell says why.
            since = int(time.time() * 1000) - 5
            ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids[1:]})
            await events.wait("runtime.warning", lambda e: e["reason"] == "lifetime", 20)
            await eventually(lambda: finished_since(client, ids[1], since), 20)
            assert "maximum runtime lifetime" in text_of(client, ids[1])
            assert status(ann, nb)["status"] == "stopped"
            assert text_of(client, ids[0]) == "kept\n"
        ann.client.close()


async def test_tandem_serve_alone_runs_code(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", env={"TANDEM_LOCAL_WORKER": "true"})
    server.start()
    try:
        cluster = Cluster(server)
        await eventually(lambda: len(cluster.workers_online()) == 1, 30)
        assert cluster.workers_online()[0]["name"] == "local"
        ann = cluster.api("ann")
        nb, ids = notebook_with_code(ann, ["import sys\nsys.version_info[0]"])
        async with YClient(sync_url(server, nb, cluster.person("ann").token)) as client:
            await run(ann, nb, ids, client)
            assert text_of(client, ids[0]) == "3"
        assert server.proc is not None
        # The worker and its kernel run as children of the server.
        children = psutil.Process(server.proc.pid).children(recursive=True)
        assert len(children) >= 2
        cluster.close()
    finally:
        server.stop()
    # The local worker went with the server, and took its kernels along.
    _, alive = psutil.wait_procs(children, timeout=15)
    assert alive == []
    assert "Traceback" not in server.log(), server.log()[-3000:]


async def test_output_flood_is_capped_and_the_room_stays_live(tmp_path: Path) -> None:
    with running_cluster(
        tmp_path / "data", {"w": []}, TANDEM_MAX_OUTPUT_BYTES_PER_CELL=str(200_000)
    ) as cluster:
        server = cluster.server
        ann = cluster.api("ann")
        flood = "for i in range(100_000):\n    print('line', i)"
        image = (
            "from IPython.display import display\n"
            "display({'image/png': 'A' * 50_000_000}, raw=True)"
        )
        nb, ids = notebook_with_code(ann, [flood, image, "'after'"])
        token = cluster.person("ann").token
        async with (
            YClient(sync_url(server, nb, token)) as client,
            YClient(sync_url(server, nb, token)) as typist,
        ):
            since = int(time.time() * 1000) - 5
            ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
            # Someone types while the flood runs; their edit goes through.
            await eventually(lambda: cell(client, ids[0])["execution_state"] == "running", 30)
            source: Any = next(c for c in typist.cells if c["id"] == ids[2])["source"]
            source += "  # typed during the flood"
            await eventually(lambda: "typed during" in cell(client, ids[2])["source"], 20)
            await eventually(lambda: finished_since(client, ids[2], since), 90)
            flood_out = cell(client, ids[0])["outputs"]
            assert flood_out[0]["text"].startswith("line 0\nline 1\n")
            assert len(flood_out[0]["text"].encode()) <= 200_000
            assert "truncated" in flood_out[-1]["data"]["text/plain"]
            image_out = cell(client, ids[1])["outputs"]
            assert len(image_out) == 1
            assert "not shown" in image_out[0]["data"]["text/plain"]
            assert "image/png" in image_out[0]["data"]["text/plain"]
            assert text_of(client, ids[2]) == "'after'"
            assert len(client.doc.get_update()) < 1_000_000
        ann.client.close()


async def test_server_killed_mid_run_leaves_no_cell_running(tmp_path: Path) -> None:
    """Without a reconnect grace the worker drops its kernels with the connection: the
    restarted server finds the cell it was running idle (test_reconnect.py: with one)."""
    with running_cluster(
        tmp_path / "data",
        TANDEM_WORKER_TIMEOUT_SECONDS="3",
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="0",
    ) as cluster:
        await _server_killed_mid_run(cluster)


async def _server_killed_mid_run(cluster: Cluster) -> None:
    cluster.start_worker("survivor")
    wait_for_workers(cluster, 1)
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(
        ann, ["print('started', flush=True)\nimport time\ntime.sleep(60)", "2"]
    )
    token = cluster.person("ann").token
    async with YClient(sync_url(cluster.server, nb, token)) as client:
        ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
        await eventually(lambda: "started" in text_of(client, ids[0]), 30)
        cluster.server.kill()
    cluster.server.start()
    async with YClient(sync_url(cluster.server, nb, token)) as client:
        await eventually(
            lambda: [cell(client, i)["execution_state"] for i in ids] == ["idle", "idle"], 10
        )
        assert text_of(client, ids[0]) == "started\n"  # what was seen was stored
        await eventually(lambda: len(cluster.workers_online()) == 1, 40)
        await run(ann, nb, [ids[1]], client)
        assert text_of(client, ids[1]) == "2"
    ann.client.close()


async def test_a_worker_token_from_the_command_line(own_cluster: Cluster) -> None:
    """`tandem workers create-token` prints a token; `tandem worker --token` uses it."""
    data_dir = str(own_cluster.server.data_dir)
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "workers",
            "create-token",
            "cli-node",
            "--data-dir",
            data_dir,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    token = made.stdout.strip()
    assert token.startswith("tdw_")
    own_cluster.workers.append(
        WorkerProcess(own_cluster.server, "", "cli-node", args=["--token", token]).start()
    )
    wait_for_workers(own_cluster, 1)
    listed = own_cluster.admin_api.client.get("/api/workers/tokens").json()
    assert [t["name"] for t in listed] == ["cli-node"]
