"""Notebook files through a real server: upload and download throughput of a large file, the
server's RSS meanwhile, and how soon a file a cell writes is listed.

Transfer: a file of random bytes (--mb, 200 by default) is PUT as a streamed raw body (the
client reads it from disk in chunks) and streamed back with GET, its sha256 checked. A
thread samples the server process's RSS every 20 ms: streaming means the peak stays far
below baseline + the file's size. Each run uploads fresh bytes, so no blob is reused.

Write -> listed: a cell writes a 10 MB file of random bytes into /content and records
time.time() just after (into a small file, read back over REST); the bench polls the file
list every 10 ms until the file is there whole. "cell ends": the cell finishes right after
writing (the worker pushes before reporting it done). "cell still running": the cell sleeps
8 s after writing, so only the worker's periodic push (every 2 s) can bring it; the trials
write at moments spread evenly over one period.

MB is 2**20 bytes, as TANDEM_NOTEBOOK_FILES_MB counts it (the cell's file is 10**7 bytes).

    python bench/files.py [--runs 3] [--mb 200] [--trials 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import Api, ServerProcess, make_people, notebook_with_code

MB = 1024 * 1024
CHUNK = 1 * MB
CELL_FILE_BYTES = 10_000_000
STILL_RUNNING_SECONDS = 8
PUSH_EVERY_SECONDS = 2.0  # kernels/worker.py's period, from the kernel's start
LIST_POLL_SECONDS = 0.01
LIST_TIMEOUT_SECONDS = 60.0


def table(rows: list[tuple[str, ...]]) -> None:
    """A markdown table; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: tuple[str, ...]) -> str:
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
        )

    print(line(rows[0]))
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows[1:]:
        print(line(row))


class RssSampler:
    """Samples one process's resident set size every `every` seconds, in a thread."""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())


@dataclass
class Transfer:
    seconds: float
    baseline: int  # server RSS just before, bytes
    peak: int  # the highest RSS sampled during the transfer

    def rate(self, size: int) -> float:
        return size / MB / self.seconds


def random_file(path: Path, size: int) -> str:
    """Write `size` random bytes to `path`; their sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as file:
        for start in range(0, size, CHUNK):
            data = os.urandom(min(CHUNK, size - start))
            digest.update(data)
            file.write(data)
    return digest.hexdigest()


def read_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as file:
        while data := file.read(CHUNK):
            yield data


def upload(api: Api, sampler_pid: int, url: str, source: Path) -> Transfer:
    size = source.stat().st_size
    headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
    with RssSampler(sampler_pid) as rss:
        baseline = rss.peak
        started = time.perf_counter()
        response = api.client.put(url, content=read_chunks(source), headers=headers, timeout=300)
        seconds = time.perf_counter() - started
    assert response.status_code in (200, 201), response.text
    assert response.json()["size"] == size, response.text
    return Transfer(seconds, baseline, rss.peak)


def download(api: Api, sampler_pid: int, url: str, sha256: str, size: int) -> Transfer:
    digest = hashlib.sha256()
    received = 0
    with RssSampler(sampler_pid) as rss:
        baseline = rss.peak
        started = time.perf_counter()
        with api.client.stream("GET", url, timeout=300) as response:
            assert response.status_code == 200, response.read()
            for data in response.iter_bytes(CHUNK):
                digest.update(data)
                received += len(data)
        seconds = time.perf_counter() - started
    assert received == size, f"downloaded {received} bytes of {size}"
    assert digest.hexdigest() == sha256, "the downloaded file differs from the upload"
    return Transfer(seconds, baseline, rss.peak)


def transfers(api: Api, pid: int, scratch: Path, runs: int, size: int) -> None:
    nb = api.create("files bench: transfer")
    ups: list[Transfer] = []
    downs: list[Transfer] = []
    source = scratch / "upload.bin"
    for run in range(runs):
        sha256 = random_file(source, size)  # fresh bytes: a new blob each run
        url = f"/api/notebooks/{nb}/files/big-{run}.bin"
        ups.append(upload(api, pid, url, source))
        downs.append(download(api, pid, url, sha256, size))
        source.unlink()
        print(
            f"  run {run + 1}: up {ups[-1].rate(size):.0f} MB/s, "
            f"down {downs[-1].rate(size):.0f} MB/s",
            flush=True,
        )

    def mb(value: float) -> str:
        return f"{value / MB:.0f}"

    def row(name: str, done: list[Transfer]) -> tuple[str, ...]:
        growth = [t.peak - t.baseline for t in done]
        return (
            name,
            f"{statistics.median(t.rate(size) for t in done):.0f}",
            mb(statistics.median(t.baseline for t in done)),
            mb(max(t.peak for t in done)),
            mb(statistics.median(growth)),
            mb(max(growth)),
        )

    print(f"\nTransfer of a {size / MB:.0f} MB file, {runs} runs (median; RSS of the server)")
    table(
        [
            ("direction", "MB/s", "RSS base MB", "RSS peak MB", "growth MB", "growth max MB"),
            row("upload (PUT, streamed body)", ups),
            row("download (GET, streamed)", downs),
        ]
    )


def cell_source(name: str, still_running: bool, delay: float) -> str:
    lines = [
        "import os, time",
        f"time.sleep({delay:.3f})",
        f"data = os.urandom({CELL_FILE_BYTES})",
        f"with open({name + '.bin'!r}, 'wb') as f:",
        "    f.write(data)",
        "written = time.time()",
        f"with open({name + '.txt'!r}, 'w') as f:",
        "    f.write(repr(written))",
    ]
    if still_running:
        lines.append(f"time.sleep({STILL_RUNNING_SECONDS})")
    return "\n".join(lines)


def listed(api: Api, nb: str, path: str, size: int | None = None) -> float:
    """Poll the list until `path` is in it (whole, when `size` is given); time.time() then."""
    deadline = time.monotonic() + LIST_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        response = api.client.get(f"/api/notebooks/{nb}/files")
        assert response.status_code == 200, response.text
        seen = time.time()
        for entry in response.json()["files"]:
            if entry["path"] == path and (size is None or entry["size"] == size):
                return seen
        time.sleep(LIST_POLL_SECONDS)
    raise TimeoutError(f"{path} was not listed within {LIST_TIMEOUT_SECONDS:.0f} s")


def run_cell(api: Api, nb: str, cell_id: str) -> None:
    response = api.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [cell_id]})
    assert response.status_code == 202, response.text


def write_to_listed(api: Api, trials: int) -> None:
    cases = {"cell ends": False, "cell still running": True}
    names = {case: [f"{i}-{n}" for n in range(trials)] for i, case in enumerate(cases)}
    sources = ["open('warm.txt', 'w').write('up')"]
    for case, still_running in cases.items():
        # Writes spread evenly over one push period, so the periodic push is met at every
        # phase (the trials would otherwise keep one phase: a sleeping cell lasts 4 periods).
        sources += [
            cell_source(
                name, still_running, PUSH_EVERY_SECONDS * n / trials if still_running else 0
            )
            for n, name in enumerate(names[case])
        ]
    nb, cells = notebook_with_code(api, sources, title="files bench: write -> listed")
    started = time.monotonic()
    run_cell(api, nb, cells[0])  # starts the kernel
    listed(api, nb, "warm.txt")
    print(f"  kernel up and first file listed in {time.monotonic() - started:.1f} s", flush=True)

    latencies: dict[str, list[float]] = {case: [] for case in cases}
    cell_ids = iter(cells[1:])
    for case in cases:
        for name in names[case]:
            run_cell(api, nb, next(cell_ids))
            seen = listed(api, nb, f"{name}.bin", CELL_FILE_BYTES)
            listed(api, nb, f"{name}.txt")
            stamp = api.client.get(f"/api/notebooks/{nb}/files/{name}.txt")
            assert stamp.status_code == 200, stamp.text
            latencies[case].append(seen - float(stamp.text))
            print(f"  {case}: {latencies[case][-1] * 1000:.0f} ms", flush=True)
        if cases[case]:  # let the last sleeping cell end before anything else runs
            time.sleep(STILL_RUNNING_SECONDS)

    print(
        f"\nA cell writes {CELL_FILE_BYTES / 1e6:.0f} MB -> listed over REST, {trials} trials (ms)"
    )
    table(
        [
            ("case", "median", "max", "min"),
            *(
                (
                    f"{case}" + (f" (sleeps {STILL_RUNNING_SECONDS} s)" if cases[case] else ""),
                    f"{statistics.median(values) * 1000:.0f}",
                    f"{max(values) * 1000:.0f}",
                    f"{min(values) * 1000:.0f}",
                )
                for case, values in latencies.items()
            ),
        ]
    )


def main(runs: int, size_mb: int, trials: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        quota = max(2048, 2 * runs * size_mb)
        server = ServerProcess(
            scratch / "tandem",
            env={
                "TANDEM_LOCAL_WORKER": "true",
                "TANDEM_ROOM_GRACE_SECONDS": "30",
                "TANDEM_NOTEBOOK_FILES_MB": str(quota),
            },
        )
        api: Api | None = None
        try:
            server.start()
            assert server.proc is not None
            person = make_people(server.data_dir, ["bench"])["bench"]
            api = Api(server, person)
            began = time.monotonic()
            transfers(api, server.proc.pid, scratch, runs, size_mb * MB)
            middle = time.monotonic()
            write_to_listed(api, trials)
            print(
                f"\ntook {middle - began:.0f} s (transfer) + "
                f"{time.monotonic() - middle:.0f} s (write -> listed)"
            )
        except (AssertionError, TimeoutError, httpx.HTTPError):
            print(f"--- server log ---\n{server.log()[-4000:]}", file=sys.stderr)
            raise
        finally:
            if api is not None:
                api.client.close()
            server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="uploads + downloads of the file")
    parser.add_argument("--mb", type=int, default=200, help="size of the transferred file")
    parser.add_argument("--trials", type=int, default=5, help="write -> listed, per case")
    args = parser.parse_args()
    main(args.runs, args.mb, args.trials)
