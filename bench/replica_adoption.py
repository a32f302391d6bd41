"""How long a running cell is dark when its worker moves to another replica: two replicas on
one PostgreSQL and one Redis (Debian's, started here), a sandboxed worker dialling them
through a TCP balancer that this script switches.

- handed over: the balancer cuts the worker's connection and sends it to the other replica,
  which asks the owner to hand the runtime over; timed from the cut.
- owner killed: the owning replica is SIGKILLed and the worker sent to the other, which
  takes over once the lease lapses (`--lease`, seconds); timed from the kill.

Each time is until the first output line printed after the cause shows in a client (the
cell prints a line every 20 ms).

    python bench/replica_adoption.py [--trials 5] [--lease 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.gateway.helpers import text_of
from tests.replicas.conftest import start_replicas
from tests.support import (
    Api,
    ServerProcess,
    WorkerProcess,
    YClient,
    eventually,
    notebook_with_code,
    sync_url,
)
from tests.support_pg import running_postgres
from tests.support_proxy import switching_proxy
from tests.support_redis import running_redis

PRINTING = "import time\nfor i in range(10**9):\n    print(i, flush=True)\n    time.sleep(0.02)"


def lines(client: YClient, cell_id: str) -> int:
    return text_of(client, cell_id).count("\n")


async def dark_for(client: YClient, cell_id: str, since: float) -> float:
    seen = lines(client, cell_id)
    await eventually(lambda: lines(client, cell_id) > seen + 1, 90, interval=0.005)
    return time.monotonic() - since


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--lease", type=float, default=2.0)
    args = parser.parse_args()
    handed: list[float] = []
    killed: list[float] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_postgres() as postgres,
        running_redis() as redis_server,
    ):
        root = Path(tmp)
        pair = start_replicas(
            postgres,
            redis_server.url,
            root,
            TANDEM_RUNTIME_LEASE_SECONDS=str(args.lease),
            TANDEM_WORKER_RECONNECT_GRACE_SECONDS="120",
            TANDEM_WORKER_HEARTBEAT_SECONDS="1",
        )
        token = pair.worker_token("bench")
        admin = pair.admin()
        with switching_proxy(pair.a.port) as proxy:
            balancer = ServerProcess(root / "balancer", port=proxy.port)
            balancer.data_dir.mkdir()
            worker = WorkerProcess(balancer, token, "bench").start()
            try:
                watcher = Api(pair.b, admin).client
                await eventually(lambda: bool(watcher.get("/api/workers").json()), 30)
                servers = [pair.a, pair.b]
                alice = pair.api(pair.b, "alice")
                nb, ids = notebook_with_code(alice, [PRINTING])
                token = pair.people["alice"].token
                async with YClient(sync_url(pair.b, nb, token)) as client:
                    response = alice.client.post(
                        f"/api/notebooks/{nb}/execute", json={"cell_ids": ids}
                    )
                    assert response.status_code == 202, response.text
                    await eventually(lambda: lines(client, ids[0]) > 10, 90)
                    for trial in range(args.trials):
                        since = time.monotonic()
                        proxy.switch(servers[(trial + 1) % 2].port)
                        handed.append(await dark_for(client, ids[0], since))
                        await asyncio.sleep(0.5)
                    # The worker is on a (even trials) or b; the client stays on the other.
                    owner = servers[args.trials % 2]
                    other = servers[(args.trials + 1) % 2]
                async with YClient(sync_url(other, nb, token)) as client:
                    await eventually(lambda: lines(client, ids[0]) > 10, 30)
                    since = time.monotonic()
                    owner.kill()
                    proxy.switch(other.port)
                    killed.append(await dark_for(client, ids[0], since))
                Api(other, pair.people["alice"]).client.post(
                    f"/api/notebooks/{nb}/kernel/interrupt"
                )
            finally:
                worker.stop()
                pair.stop()

    print(f"{'move':<16} {'trials':>6} {'p50 s':>8} {'max s':>8}")
    for name, times in (("handed over", handed), ("owner killed*", killed)):
        print(f"{name:<16} {len(times):>6} {statistics.median(times):>8.2f} {max(times):>8.2f}")
    print(f"* lease {args.lease:g} s: the takeover waits for it to lapse")


if __name__ == "__main__":
    asyncio.run(main())
