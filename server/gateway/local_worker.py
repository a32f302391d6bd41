"""The worker `tandem serve` runs beside itself, so one command is enough to run code.

It is an ordinary `tandem worker` child process with a token made for this start only,
handed over on its standard input (never on the command line or in its environment, where
/proc would show it); if it exits it is started again, with backoff. It ends when this
server process ends, however that happens (`--parent-pid`: a parent-death signal plus a
watch on its parent), so a `kill -9` of the server leaves no worker behind.
Its kernels are sandboxed like any other worker's, and never see the data directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys

from server.config import Settings

log = logging.getLogger(__name__)


class LocalWorker:
    def __init__(self, server_url: str, token: str, settings: Settings) -> None:
        self._url = server_url
        self._token = token
        self._settings = settings
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None

    def command(self) -> list[str]:
        settings = self._settings
        data_dir = settings.data_dir.resolve()
        command = [sys.executable, "-m", "server", "worker", "--server", self._url]
        command += ["--name", "local", "--token-file", "-", "--parent-pid", str(os.getpid())]
        command += ["--state-dir", str(data_dir / "worker"), "--hide", str(data_dir)]
        if settings.local_worker_max_kernels:
            command += ["--max-kernels", str(settings.local_worker_max_kernels)]
        if settings.unsafe_no_sandbox:
            command.append("--unsafe-no-sandbox")
        return command

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise())

    async def _supervise(self) -> None:
        backoff = 1.0
        while True:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(), stdin=asyncio.subprocess.PIPE
            )
            assert self._process.stdin is not None
            self._process.stdin.write(self._token.encode() + b"\n")
            with contextlib.suppress(ConnectionError):
                await self._process.stdin.drain()
            self._process.stdin.close()
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
