"""Good joins while another address floods the sockets with bad tokens, with the socket
sign-in throttle off (TANDEM_SOCKET_AUTH_MAX_FAILURES=0, as before it existed) and on (the
defaults).

    python bench/socket_flood.py [--joins 200] [--flood 64]

The server sits "behind a proxy" (TANDEM_TRUSTED_PROXIES=["127.0.0.1"]) so that the good
client and the flood come from different addresses (X-Forwarded-For). A good join is one
sync socket opened with a valid token, timed from connect to the handshake's 101; they are
made one after the other. The flood is another process keeping `--flood` handshakes in
flight with well-shaped random tokens (which only a database look-up can refuse), as fast
as the server answers them; it is started before the joins and stopped after them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import secrets
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path

import websockets
from servers import Target, start_tandem

from server.auth.service import TOKEN_PREFIX
from tests.support_pg import running_postgres

GOOD = "198.51.100.1"
FLOODER = "203.0.113.66"


async def _flood(port: int, path: str, in_flight: int, rate: float, stop: Event) -> Counter[int]:
    answers: Counter[int] = Counter()
    interval = in_flight / rate  # each worker's pace, so that all together keep `rate`

    async def one_after_another() -> None:
        due = time.monotonic()
        while not stop.is_set():
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            request = (
                f"GET {path}?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                f"X-Forwarded-For: {FLOODER}\r\n\r\n"
            )
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request.encode())
                status = await reader.readline()
                answers[int(status.split()[1])] += 1
                writer.close()
            except (OSError, IndexError, ValueError):
                answers[0] += 1

    await asyncio.gather(*(one_after_another() for _ in range(in_flight)))
    return answers


def flood(
    port: int,
    path: str,
    in_flight: int,
    rate: float,
    stop: Event,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    started = time.monotonic()
    answers = asyncio.run(_flood(port, path, in_flight, rate, stop))
    out.put((dict(answers), time.monotonic() - started))


async def good_joins(url: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        async with websockets.connect(
            url, additional_headers={"X-Forwarded-For": GOOD}, compression=None
        ):
            times.append((time.perf_counter() - started) * 1000)
    return times


@dataclass
class Row:
    throttle: str
    flooded: bool
    p50: float
    p95: float
    rate: float
    refused: float


def run(target: Target, throttle: str, args: argparse.Namespace, flooded: bool) -> Row:
    assert target.api is not None and target.tandem is not None
    notebook = target.api.create("flooded")
    url = f"{target.ws_base}/{notebook}/sync?token={target.token}"
    asyncio.run(good_joins(url, 20))  # warm up
    stop = multiprocessing.Event()
    out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    flooder = None
    if flooded:
        path = f"/api/notebooks/{notebook}/sync"
        flooder = multiprocessing.Process(
            target=flood, args=(target.tandem.port, path, args.flood, args.rate, stop, out)
        )
        flooder.start()
        time.sleep(1)  # the flood is under way (and past the limit, when there is one)
    times = sorted(asyncio.run(good_joins(url, args.joins)))
    rate, refused = 0.0, 0.0
    if flooder is not None:
        stop.set()
        answers, seconds = out.get(timeout=60)
        flooder.join(30)
        total = sum(answers.values())
        rate, refused = total / seconds, answers.get(429, 0) / max(total, 1)
    p95 = times[int(len(times) * 0.95) - 1]
    return Row(throttle, flooded, statistics.median(times), p95, rate, refused)


def measure(args: argparse.Namespace, limit: str, database: str) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            "TANDEM_TRUSTED_PROXIES": '["127.0.0.1"]',
            "TANDEM_SOCKET_AUTH_MAX_FAILURES": limit,
            "TANDEM_DATABASE_URL": database,
        }
        target = start_tandem(Path(tmp) / "tandem", env, database_url=database)
        try:
            throttle = "off" if limit == "0" else "on"
            return [run(target, throttle, args, flooded) for flooded in (False, True)]
        finally:
            target.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--joins", type=int, default=200)
    parser.add_argument("--flood", type=int, default=64, help="flood handshakes in flight")
    parser.add_argument("--rate", type=float, default=1500, help="flood handshakes a second")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(running_postgres()) if args.postgres else None
        rows = []
        for limit in ("0", "300"):
            database = postgres.create_database("flood") if postgres is not None else ""
            rows += measure(args, limit, database)
    where = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"\n### {args.joins} good joins one after another ({where}); flood: {args.rate:.0f} "
        f"bad tokens a second, {args.flood} in flight\n"
    )
    print("| throttle | flood | p50 ms | p95 ms | p95 vs no flood | flood handshakes/s | 429 |")
    print("|---|---|---|---|---|---|---|")
    quiet = {row.throttle: row for row in rows if not row.flooded}
    for row in rows:
        ratio = row.p95 / quiet[row.throttle].p95
        flood_cells = f"{row.rate:.0f} | {row.refused:.0%}" if row.flooded else "- | -"
        print(
            f"| {row.throttle} | {'yes' if row.flooded else 'no'} | {row.p50:.1f} | "
            f"{row.p95:.1f} | {ratio:.1f}x | {flood_cells} |"
        )
    on, off = (next(r for r in rows if r.flooded and r.throttle == t) for t in ("on", "off"))
    print(f"\nflooded p50 off/on: {off.p50 / on.p50:.1f}x; p95 off/on: {off.p95 / on.p95:.1f}x")


if __name__ == "__main__":
    main()
