"""Fan-out benchmark: N stock Yjs clients typing into one notebook, against Tandem and its
peers in the same run; prints latencies, throughput, server CPU and RSS, and the ratios.

    npm ci --prefix bench/node && python bench/sync.py [--quick]

Peers: pycrdt-websocket's ASGI server (JupyterLab's engine), the Node reference
y-websocket server, and a bare byte relay (no CRDT, no storage). Only Tandem stores every
update before broadcasting it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from servers import (
    NODE,
    Target,
    start_node_reference,
    start_pycrdt_websocket,
    start_relay,
    start_tandem,
)


def run_load(target: Target, clients: int, rate: float, seconds: float) -> dict[str, Any]:
    options = {
        "server": target.ws_base,
        "room": target.room(f"bench-{clients}x{rate}"),
        "token": target.token,
        "clients": clients,
        "rate": rate,
        "seconds": seconds,
        "warmup": 2,
        "relay": target.name == "byte relay",
    }
    process = target.usage()
    cpu_before = process.cpu_times()
    wall_before = time.monotonic()
    done = subprocess.run(
        ["node", "load.mjs", json.dumps(options)],
        cwd=NODE,
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    cpu_after = process.cpu_times()
    busy = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    result["cpu"] = busy / (time.monotonic() - wall_before)
    result["rss_mb"] = process.memory_info().rss / 2**20
    return result


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict[str, Any]], scenario: str) -> None:
    print(f"\n### {scenario}\n")
    head = [
        "server",
        "p50 ms",
        "p99 ms",
        "all-others p50",
        "all-others p99",
        "delivered/s",
        "drain ms",
        "CPU %",
        "RSS MB",
        "joined",
        "converged",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [
            r["server"],
            fmt(r["p50"], 2),
            fmt(r["p99"], 2),
            fmt(r["allOthersP50"], 2),
            fmt(r["allOthersP99"], 2),
            fmt(r["deliveredPerSecond"], 0),
            fmt(r["drainMs"], 0),
            fmt(100 * r["cpu"], 0),
            fmt(r["rss_mb"], 0),
            f"{r['joined']}/{r['clients']}",
            fmt(r["converged"] and r["lateJoinerAgrees"] is not False),
        ]
        print("| " + " | ".join(cells) + " |")


def ratios(rows: list[dict[str, Any]]) -> None:
    ours = next((r for r in rows if r["server"] == "tandem"), None)
    if ours is None:
        return
    for peer in rows:
        if peer is ours or not peer["p50"]:
            continue
        print(
            f"- tandem / {peer['server']}: p50 x{ours['p50'] / peer['p50']:.2f}, "
            f"p99 x{ours['p99'] / peer['p99']:.2f}, "
            f"delivered/s x{ours['deliveredPerSecond'] / peer['deliveredPerSecond']:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--only", help="run one server: tandem, pycrdt-websocket, node, relay")
    args = parser.parse_args()
    seconds = 4 if args.quick else 10
    scenarios = [(20, 5.0), (100, 2.0)]
    with tempfile.TemporaryDirectory() as tmp:
        starters = [
            ("tandem", lambda: start_tandem(Path(tmp) / "tandem")),
            ("pycrdt-websocket", start_pycrdt_websocket),
            ("node y-websocket", start_node_reference),
            ("byte relay", start_relay),
        ]
        results: dict[tuple[int, float], list[dict[str, Any]]] = {s: [] for s in scenarios}
        if args.only:
            starters = [(n, s) for n, s in starters if n.startswith(args.only)]
        for name, start in starters:
            target = start()
            try:
                for clients, rate in scenarios:
                    print(
                        f"running {name}: {clients} x {rate:g}/s ...", file=sys.stderr, flush=True
                    )
                    row = run_load(target, clients, rate, seconds)
                    row["server"] = name
                    results[(clients, rate)].append(row)
            finally:
                target.stop()
    for (clients, rate), rows in results.items():
        table(rows, f"{clients} clients x {rate:g} edits/s, {seconds} s")
        ratios(rows)


if __name__ == "__main__":
    main()
