"""A real Redis server for the tests: Debian's `redis-server` on a port of its own, in a temp
dir of its own, nothing persisted; it can be killed and started again on the same port."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from tests.support import free_port, kill_now, terminate

BINARY = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tandem-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.root / "redis.log"

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115  (the child process owns it)
        self.proc = subprocess.Popen(
            [
                BINARY,
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root)),
                *("--save", "", "--appendonly", "no", "--protected-mode", "no"),
                *("--daemonize", "no", "--loglevel", "warning"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 20
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server exited:\n{self.log()}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        finally:
            client.connection_pool.disconnect()
            client.close()

    def kill(self) -> None:
        """SIGKILL: every subscription and connection drops at once."""
        kill_now(self.proc)

    def stop(self) -> None:
        terminate(self.proc, grace=5)

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A started Redis server, stopped and removed afterwards."""
    if not Path(BINARY).exists():
        raise RuntimeError("Redis is not installed (apt-get install redis-server)")
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()
