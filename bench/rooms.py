"""Opening big notebooks and holding many rooms open, on Tandem.

    npm ci --prefix bench/node && python bench/rooms.py [--quick]

- time for a fresh stock client to open a 1,000-cell x 2 KB notebook: cold (the room is
  loaded from the database: snapshot + tail) and warm (someone already has it open);
- 500 rooms x 2 clients (50 opening at a time): the time until all are synced, the CPU
  the server and the client process (Node, on the same machine) spent meanwhile, and
  server RSS per open room.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import psutil
from servers import NODE, Target, start_tandem


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def big_notebook(cells: int, cell_bytes: int) -> bytes:
    line = "x = 1  # " + "padding " * 8 + "\n"
    source = (line * (cell_bytes // len(line) + 1))[:cell_bytes]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for _ in range(cells)])
    return nbformat.writes(nb).encode()


class Opener:
    """open.mjs as a child: opens rooms, reports, holds them until told to let go."""

    def __init__(
        self, target: Target, rooms: list[str], per_room: int, concurrency: int, **options: Any
    ) -> None:
        options |= {
            "server": target.ws_base,
            "token": target.token,
            "rooms": rooms,
            "perRoom": per_room,
            "concurrency": concurrency,
        }
        self.proc = subprocess.Popen(
            ["node", "open.mjs", json.dumps(options)],
            cwd=NODE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def synced(self) -> list[dict[str, Any]]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        return list(json.loads(line)["opens"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("exit\n")
        self.proc.stdin.flush()
        self.proc.wait(30)


def open_times(
    target: Target, room: str, repeats: int, grace: float
) -> tuple[list[float], list[float]]:
    """Sequential opens from one client process (warmed up, as a running browser is): cold
    ones wait out the grace period so the server reads the room from the database; warm
    ones happen while another client holds the room open."""
    cold_runner = Opener(
        target, [room] * (repeats + 1), 1, 1, closeEach=True, pauseMs=int((grace + 0.7) * 1000)
    )
    cold = [o["ms"] for o in cold_runner.synced()][1:]  # the first also warms up the JIT
    cold_runner.close()
    holder = Opener(target, [room], 1, 1)
    holder.synced()
    warm_runner = Opener(target, [room] * (repeats + 1), 1, 1, closeEach=True, pauseMs=50)
    warm = [o["ms"] for o in warm_runner.synced()][1:]
    warm_runner.close()
    holder.close()
    return cold, warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rooms_n = 100 if args.quick else 500
    grace = 0.5
    with tempfile.TemporaryDirectory() as tmp:
        target = start_tandem(Path(tmp) / "tandem", {"TANDEM_ROOM_GRACE_SECONDS": str(grace)})
        try:
            assert target.api is not None
            response = target.api.upload("big.ipynb", big_notebook(1000, 2048))
            response.raise_for_status()
            room = f"{response.json()['id']}/sync"
            cold, warm = open_times(target, room, 3 if args.quick else 7, grace)
            print("\n### Opening a 1,000-cell x 2 KB notebook (fresh stock client, to synced)\n")
            print("| open | median ms | min ms | max ms | runs |")
            print("|---|---|---|---|---|")
            for name, values in (("cold (from the database)", cold), ("warm (room open)", warm)):
                print(
                    f"| {name} | {statistics.median(values):.0f} | {min(values):.0f} | "
                    f"{max(values):.0f} | {len(values)} |"
                )

            rooms = [f"{target.api.create(f'room {i}')}/sync" for i in range(rooms_n)]
            time.sleep(grace + 1)  # the big notebook's room is gone
            process = target.usage()
            before = process.memory_info().rss
            server_cpu = cpu_seconds(process)
            started = time.monotonic()
            holder = Opener(target, rooms, 2, 50)
            opens = holder.synced()
            joined = time.monotonic() - started
            server_cpu = cpu_seconds(process) - server_cpu
            clients_cpu = cpu_seconds(psutil.Process(holder.proc.pid))
            time.sleep(1)
            after = process.memory_info().rss
            holder.close()
            per_room = (after - before) / rooms_n
            print(f"\n### {rooms_n} open rooms x 2 clients\n")
            print(
                "| rooms | clients synced | all joined s | server CPU s | clients CPU s "
                "| RSS before MB | RSS after MB | per room KB |"
            )
            print("|---|---|---|---|---|---|---|---|")
            print(
                f"| {rooms_n} | {len(opens)}/{2 * rooms_n} | {joined:.2f} | {server_cpu:.2f} | "
                f"{clients_cpu:.2f} | {before / 2**20:.0f} | {after / 2**20:.0f} | "
                f"{per_room / 1024:.0f} |"
            )
        finally:
            target.stop()


if __name__ == "__main__":
    main()
