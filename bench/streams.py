"""What folding streams as a terminal costs the server: chunks written through
`CellWriter` into a pycrdt document, as the gateway writes kernel output (one transaction
per chunk; the gateway coalesces to one per 50 ms, so this is the worst case).

For each kind of output: chunks per second, MB of printed text per second, and how big the
document's update is at the end (a progress bar must not grow it with every redraw).

    python bench/streams.py [--chunks 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pycrdt import Array, Doc, Map

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.gateway.outputs import CellWriter

BAR = "━" * 40


def plain(i: int) -> str:
    return f"epoch {i}: loss 0.{i % 997:03}\n"


def tqdm(i: int) -> str:
    return f"\r{i % 100:3}%|{'█' * (i % 100 // 10):10}| {i}/100000 [00:01<00:02, 812.3it/s]"


def pip(i: int) -> str:
    done = i % 40
    return (
        f"\r\x1b[2K   \x1b[91m{BAR[:done]}\x1b[0m\x1b[90m╺{BAR[done + 1 :]}\x1b[0m "
        f"\x1b[32m{i % 731}/731 kB\x1b[0m \x1b[31m9.1 MB/s\x1b[0m eta \x1b[36m0:00:01\x1b[0m"
    )


def nested(i: int) -> str:
    return f"\router {i // 100}\n\rinner {i % 100:3}%\x1b[A"


def rainbow(i: int) -> str:
    # One line that never ends, a colour change per character (hostile, or a log in colour).
    return "".join(f"\x1b[3{(i + k) % 8}m." for k in range(50))


def run(make: Callable[[int], str], chunks: int) -> tuple[float, float, int]:
    doc: Doc[Any] = Doc()
    cell = Map({"id": "c", "cell_type": "code", "outputs": Array()})
    doc.get("cells", type=Array).append(cell)
    writer = CellWriter(limit_bytes=50_000_000)
    printed = 0
    start = time.perf_counter()
    for i in range(chunks):
        text = make(i)
        printed += len(text.encode())
        with doc.transaction():
            writer.write(cell, "stream", {"name": "stdout", "text": text})
    took = time.perf_counter() - start
    return chunks / took, printed / took / 1e6, len(doc.get_update())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=20_000)
    args = parser.parse_args()
    print(f"{'output':<22}{'chunks/s':>10}{'MB/s':>8}{'doc bytes':>12}")
    for name, make in [
        ("print lines", plain),
        ("tqdm bar (\\r)", tqdm),
        ("pip bar (\\r ESC[2K)", pip),
        ("nested bars (ESC[A)", nested),
        ("one rainbow line", rainbow),
    ]:
        rate, mb, size = run(make, args.chunks)
        print(f"{name:<22}{rate:>10,.0f}{mb:>8.2f}{size:>12,}")


if __name__ == "__main__":
    main()
