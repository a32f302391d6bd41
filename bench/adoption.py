"""How long a running cell is dark when its worker's connection drops and comes back.

Two ways a connection drops, each timed from the moment the cause is gone to the first
output line the kernel printed *after* it, as seen by a client of the notebook:

- worker cut off: the worker is stopped (SIGSTOP) until the server cuts it off for missed
  heartbeats and shows the notebook "reconnecting"; timed from SIGCONT.
- server restarted: the server is SIGKILLed and started again on the same data; timed from
  the new server answering /api/health (the worker retries at most once a second while it
  holds kernels; the client reconnects at once).

The cell prints a line every 20 ms; the server and a sandboxed worker run on this machine.

    python bench/adoption.py [--trials 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.gateway.conftest import running_cluster, wait_for_workers
from tests.gateway.helpers import status, text_of
from tests.support import YClient, eventually, notebook_with_code, sync_url

PRINTING = "import time\nfor i in range(10**9):\n    print(i, flush=True)\n    time.sleep(0.02)"


def lines(client: YClient, cell_id: str) -> int:
    return text_of(client, cell_id).count("\n")


async def first_line_after(client: YClient, cell_id: str, since: float, seen: int) -> float:
    """Seconds from `since` until more than `seen` lines show (the replay of what was held
    comes first: the first line printed after `since` is at the latest the one that
    follows them)."""
    await eventually(lambda: lines(client, cell_id) > seen, 90, interval=0.005)
    return time.monotonic() - since


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    cut_off: list[float] = []
    restarted: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_cluster(
            Path(tmp) / "data",
            TANDEM_WORKER_RECONNECT_GRACE_SECONDS="120",
            TANDEM_WORKER_TIMEOUT_SECONDS="2",
        ) as cluster,
    ):
        worker = cluster.start_worker("bench")
        wait_for_workers(cluster, 1)
        assert worker.proc is not None
        ann = cluster.api("ann")
        nb, ids = notebook_with_code(ann, [PRINTING])
        token = cluster.person("ann").token
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
            assert response.status_code == 202, response.text
            await eventually(lambda: lines(client, ids[0]) > 10, 60)
            for _ in range(args.trials):
                os.kill(worker.proc.pid, signal.SIGSTOP)
                try:
                    await eventually(lambda: status(ann, nb)["status"] == "reconnecting", 30)
                finally:
                    os.kill(worker.proc.pid, signal.SIGCONT)
                since = time.monotonic()
                # Everything printed while stopped is held on the worker: wait past it.
                held_until = lines(client, ids[0])
                cut_off.append(await first_line_after(client, ids[0], since, held_until))
                await asyncio.sleep(0.5)
        for _ in range(args.trials):
            cluster.server.kill()
            await asyncio.sleep(1.0)
            cluster.server.start()  # returns once /api/health answers
            since = time.monotonic()
            async with YClient(sync_url(cluster.server, nb, token)) as client:
                seen = lines(client, ids[0])
                restarted.append(await first_line_after(client, ids[0], since, seen))
            await asyncio.sleep(0.5)
        ann.client.post(f"/api/notebooks/{nb}/kernel/interrupt")

    print(f"{'drop':<20} {'trials':>6} {'p50 s':>8} {'p95 s':>8} {'max s':>8}")
    for name, times in (("worker cut off", cut_off), ("server restarted", restarted)):
        ordered = sorted(times)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        print(
            f"{name:<20} {len(times):>6} {statistics.median(times):>8.2f} {p95:>8.2f} "
            f"{max(times):>8.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
