"""The worker `tandem serve` runs beside itself, so one command is enough to run code.

It is an ordinary `tandem worker` child process with a token made for this start only
(handed over in the environment, never on the command line); if it exits it is started
again, with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

log = logging.getLogger(__name__)


class LocalWorker:
    def __init__(self, server_url: str, token: str, max_kernels: int | None) -> None:
        self._url = server_url
        self._token = token
        self._max_kernels = max_kernels
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        backoff = 1.0
        while True:
            command = [sys.executable, "-m", "server", "worker", "--server", self._url]
            command += ["--name", "local"]
            if self._max_kernels:
                command += ["--max-kernels", str(self._max_kernels)]
            env = {**os.environ, "TANDEM_WORKER_TOKEN": self._token}
            self._process = await asyncio.create_subprocess_exec(*command, env=env)
            code = await self._process.wait()
            log.warning("the local worker exited (status %s); restarting it", code)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30)

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
