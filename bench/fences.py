"""What the runtime fence costs the update log, on a real PostgreSQL (Debian's).

    python bench/fences.py [--quick]

Appends to one notebook, `concurrency` in flight at a time (as a busy room's typists and a
kernel's outputs are), unfenced (clients: no fence query) and fenced (a runtime's writes:
the fence row read FOR SHARE in each batch's transaction). Prints appends/s and the p50 /
p99 of one append's latency.
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

from sqlmodel import Session

import server.models  # noqa: F401
from server.auth import service as auth
from server.collab.fences import raise_fence
from server.collab.update_log import SqlUpdateLog
from server.config import Settings
from server.db import make_engine, migrate
from server.notebooks.models import Notebook
from tests.support_pg import running_postgres


async def measure(
    log: SqlUpdateLog, total: int, concurrency: int, fence: int | None
) -> list[float]:
    latencies: list[float] = []
    update = b"\x01\x01\x00\x00" + b"x" * 60

    async def one() -> None:
        started = time.perf_counter()
        await log.append("nb", update, lambda _: None, fence=fence)
        latencies.append(time.perf_counter() - started)

    for _ in range(total // concurrency):
        await asyncio.gather(*(one() for _ in range(concurrency)))
    return latencies


async def main(quick: bool) -> None:
    total = 1000 if quick else 5000
    with tempfile.TemporaryDirectory(), running_postgres() as postgres:
        engine = make_engine(Settings(database_url=postgres.create_database()))
        migrate(engine)
        with Session(engine) as db:
            owner = auth.create_user(db, "owner", "owner-password")
            db.add(Notebook(id="nb", title="bench", owner_id=owner.id))
            db.commit()
        raise_fence(engine, "nb", 1)
        log = SqlUpdateLog(engine)
        await log.start()
        print(f"{total} appends to one notebook on PostgreSQL")
        print(f"{'in flight':>9} {'writes':>9} {'appends/s':>10} {'p50 ms':>7} {'p99 ms':>7}")
        try:
            for concurrency in (1, 20):
                for label, fence in (("unfenced", None), ("fenced", 1)):
                    await measure(log, 200, concurrency, fence)  # warm up
                    started = time.perf_counter()
                    latencies = await measure(log, total, concurrency, fence)
                    rate = len(latencies) / (time.perf_counter() - started)
                    cuts = statistics.quantiles(latencies, n=100)
                    print(
                        f"{concurrency:>9} {label:>9} {rate:>10.0f}"
                        f" {cuts[49] * 1000:>7.2f} {cuts[98] * 1000:>7.2f}"
                    )
        finally:
            await log.stop()
            engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
