"""How long a restarted server takes to have an adopted kernel's widgets again.

A kernel holds N sliders (each is three widget models: the slider, its layout, its style);
the server is SIGKILLed and started again on the same data while the worker keeps the
kernel. Timed from the new server answering /api/health until GET .../widgets lists every
model again (the worker reconnects, the server adopts the kernel and asks it for its
widgets, the kernel answers each `request_state`). The server and a sandboxed worker run on
this machine. Each size is a notebook of its own, made after the smaller ones, whose
kernels are adopted and asked again at each restart too.

    python bench/widget_rebuild.py [--sizes 10 100 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernels.environments import SCIENTIFIC_STACK
from tests.gateway.conftest import running_cluster, wait_for_workers
from tests.gateway.helpers import run
from tests.support import Api, YClient, eventually, notebook_with_code, sync_url


def models(api: Api, notebook_id: str) -> int:
    response = api.client.get(f"/api/notebooks/{notebook_id}/widgets")
    return len(response.json()["models"]) if response.status_code == 200 else -1


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    args = parser.parse_args()
    rows: list[tuple[int, int, float]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_cluster(
            Path(tmp) / "data",
            TANDEM_WORKER_RECONNECT_GRACE_SECONDS="120",
            TANDEM_ENVIRONMENTS=json.dumps({"default": SCIENTIFIC_STACK}),
        ) as cluster,
    ):
        cluster.start_worker("keeper")
        wait_for_workers(cluster, 1)
        ann = cluster.api("ann")
        token = cluster.person("ann").token
        for size in args.sizes:
            code = f"import ipywidgets\nsliders = [ipywidgets.IntSlider() for _ in range({size})]"
            notebook_id, ids = notebook_with_code(ann, [code])
            async with YClient(sync_url(cluster.server, notebook_id, token)) as client:
                await run(ann, notebook_id, ids, client, timeout=300)
            expected = models(ann, notebook_id)
            cluster.server.kill()
            cluster.server.start()  # returns once /api/health answers
            since = time.monotonic()
            await eventually(lambda: models(ann, notebook_id) >= expected, 300, interval=0.01)  # noqa: B023
            rows.append((size, expected, time.monotonic() - since))
    print(f"{'sliders':>8} {'models':>7} {'rebuilt in (s)':>15}")
    for size, expected, seconds in rows:
        print(f"{size:>8} {expected:>7} {seconds:>15.2f}")


if __name__ == "__main__":
    asyncio.run(main())
