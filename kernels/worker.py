"""`tandem worker`: dial out to a server, say what this machine has, run its kernels.

The connection goes out from the worker, so a GPU node behind NAT works. When it drops the
worker shuts its kernels down (the server has already told everyone the runtime was lost,
and a GPU must not stay held by a kernel nobody can reach) and reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import websockets
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from kernels import messages as m
from kernels.environments import EnvironmentBuildError, EnvironmentStore
from kernels.kernel import RunningKernel, Send
from kernels.resources import detect
from kernels.sandbox import Sandboxer, SandboxUnavailable
from kernels.workspace import FilesClient, Workspace

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
# A running kernel's new files reach the server at least this often (and after every cell).
PUSH_EVERY_SECONDS = 2.0
# How long a cell's end waits for its files to go up before the server hears of it anyway.
PUSH_BEFORE_DONE_SECONDS = 30.0


class WorkerRejected(Exception):
    """The server refused this worker's token: retrying cannot help."""


def connect_url(server: str) -> str:
    return _server_url(server, websocket=True) + "/api/workers/connect"


def _server_url(server: str, *, websocket: bool) -> str:
    parts = urlsplit(server if "://" in server else f"http://{server}")
    if parts.scheme not in ("http", "https", "ws", "wss") or not parts.netloc:
        raise ValueError("--server is a URL such as http://host:8000")
    secure = parts.scheme in ("https", "wss")
    scheme = ("wss" if secure else "ws") if websocket else ("https" if secure else "http")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class _Mirror:
    """One notebook's working directory on this worker, one sync at a time."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.lock = asyncio.Lock()
        self.pull_queued = False  # a pull is waiting: more changes need no second one


class Worker:
    def __init__(
        self,
        server: str,
        token: str,
        *,
        sandboxer: Sandboxer,
        environments: EnvironmentStore,
        name: str | None = None,
        max_kernels: int | None = None,
    ) -> None:
        self.url = connect_url(server)
        self._token = token
        self.resources = detect()
        self.name = name or socket.gethostname()
        # Idle kernels cost memory, not CPU: a few per core is a sane default.
        self.max_kernels = max_kernels or max(4, 2 * self.resources.cpus)
        self._sandboxer = sandboxer
        self._environments = environments
        self._kernels: dict[str, RunningKernel] = {}
        self._starting: set[asyncio.Task[None]] = set()
        self._max_output_bytes = 5 * 1024 * 1024
        self._files = FilesClient(_server_url(server, websocket=False), token)
        self._mirrors: dict[str, _Mirror] = {}
        self._workspace_of: dict[str, str] = {}  # kernel id -> notebook (workspace)
        self._pushers: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Stay connected until cancelled; raises WorkerRejected on a refused token."""
        try:
            await self._connect_forever()
        finally:
            await asyncio.to_thread(self._sandboxer.quotas.release_all)

    async def _connect_forever(self) -> None:
        backoff = 0.2
        while True:
            try:
                async with websockets.connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    max_size=None,
                    open_timeout=10,
                ) as ws:
                    backoff = 0.2
                    await self._session(ws)
            except InvalidStatus as error:
                if error.response.status_code in (401, 403):
                    raise WorkerRejected("the server refused this worker's token") from None
                log.warning("server answered %d; retrying", error.response.status_code)
            except ConnectionClosed as error:
                if error.rcvd is not None and error.rcvd.code in (4401, 4403):
                    raise WorkerRejected(error.rcvd.reason or "token revoked") from None
                log.warning("connection to the server closed; reconnecting")
            except (OSError, InvalidHandshake, TimeoutError) as error:
                log.info("cannot reach the server (%s); retrying", type(error).__name__)
            finally:
                await self._shutdown_kernels()
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _session(self, ws: websockets.ClientConnection) -> None:
        hello = m.Hello(
            name=self.name,
            resources=self.resources,
            max_kernels=self.max_kernels,
            sandbox=self._sandboxer.describe(),
        )
        await ws.send(m.encode(hello))
        welcome = m.parse_from_server(await asyncio.wait_for(ws.recv(), 10))
        if not isinstance(welcome, m.Welcome):
            raise ConnectionError("the server did not welcome this worker")
        self._max_output_bytes = welcome.max_output_bytes
        log.info("connected to %s as worker %s", self.url.split("?")[0], welcome.worker_id)

        async def send(message: m.FromWorker) -> None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(m.encode(message))

        heartbeat = asyncio.create_task(self._beat(send, welcome.heartbeat_seconds))
        try:
            async for raw in ws:
                try:
                    message = m.parse_from_server(raw)
                except m.BadMessage as error:
                    log.warning("ignoring a message from the server: %s", error)
                    continue
                await self._handle(message, send)
        finally:
            heartbeat.cancel()

    @staticmethod
    async def _beat(send: Send, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await send(m.Heartbeat())

    async def _handle(self, message: m.FromServer, send: Send) -> None:
        if isinstance(message, m.StartKernel):
            task = asyncio.create_task(self._start(message, send))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)
            return
        if isinstance(message, m.FilesChanged):
            mirror = self._mirrors.get(message.workspace)
            if mirror is not None and not mirror.pull_queued:
                mirror.pull_queued = True
                self._spawn(self._sync(message.workspace, pull=True))
            return
        kernel = self._kernels.get(getattr(message, "kernel_id", ""))
        if kernel is None:
            return  # a kernel that is already gone: the server learns from kernel_died
        if isinstance(message, m.Execute):
            self._spawn(self._execute(kernel, message))
        elif isinstance(message, m.Interrupt):
            await kernel.interrupt()
        elif isinstance(message, m.InputReply):
            kernel.reply_input(message.value)
        elif isinstance(message, m.Complete | m.Inspect | m.Variables):
            self._spawn(self._query(kernel, message, send))
        elif isinstance(message, m.ShutdownKernel):
            del self._kernels[message.kernel_id]
            # In the background: one kernel's last push must not hold up the others.
            self._spawn(self._stop(message.kernel_id, kernel, final_push=True))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _execute(self, kernel: RunningKernel, message: m.Execute) -> None:
        """Run the cell once the files changes that came before it are in /content (an
        upload is readable by the next cell). Tasks take the lock in the order they were
        made, and the server sends one cell at a time, so cells keep their order."""
        mirror = self._mirrors.get(self._workspace_of.get(message.kernel_id, ""))
        if mirror is not None:
            async with mirror.lock:
                pass
        if self._kernels.get(message.kernel_id) is kernel:
            kernel.execute(message.execution_id, message.code)

    @staticmethod
    async def _query(
        kernel: RunningKernel, message: m.Complete | m.Inspect | m.Variables, send: Send
    ) -> None:
        """Ask the kernel; the server always gets an answer to the request."""
        reply: m.CompleteReply | m.InspectReply | m.VariablesReply
        try:
            if isinstance(message, m.Complete):
                reply = await kernel.complete(message)
            elif isinstance(message, m.Inspect):
                reply = await kernel.inspect(message)
            else:
                reply = await kernel.variables(message)
        except Exception as error:  # a kernel stopping under the question, say
            log.info("kernel %s: %s failed: %s", kernel.kernel_id[:8], message.type, error)
            kind: type[m.CompleteReply | m.InspectReply | m.VariablesReply] = (
                m.CompleteReply
                if isinstance(message, m.Complete)
                else m.InspectReply
                if isinstance(message, m.Inspect)
                else m.VariablesReply
            )
            reply = kind(kernel_id=kernel.kernel_id, request_id=message.request_id, status="error")
        await send(reply)

    async def _start(self, message: m.StartKernel, send: Send) -> None:
        kernel_id = message.kernel_id

        async def progress(detail: str) -> None:
            await send(m.KernelProgress(kernel_id=kernel_id, detail=detail[:200]))

        try:
            environment = await self._environments.get(message.environment, progress)
            disk_mb = self._sandboxer.effective(message.limits).disk_mb
            await self._fetch_files(message.workspace, progress, disk_mb)
            launch = await asyncio.to_thread(
                self._sandboxer.prepare,
                kernel_id,
                environment,
                message.workspace,
                message.gpus,
                message.limits,
            )
        except (SandboxUnavailable, EnvironmentBuildError, OSError, httpx.HTTPError) as error:
            log.error("kernel %s cannot start: %s", kernel_id, error)
            await send(m.KernelFailed(kernel_id=kernel_id, reason=str(error)[:4096]))
            return
        workspace = message.workspace
        kernel = RunningKernel(
            kernel_id,
            message.gpus,
            send,
            launch=launch,
            max_output_bytes=self._max_output_bytes,
            before_done=lambda: self._push_soon(workspace),
            disk_usage=lambda: self._mirror(workspace).workspace.disk_bytes,
        )
        self._kernels[kernel_id] = kernel
        self._workspace_of[kernel_id] = workspace
        try:
            await kernel.start()
        except Exception as error:
            # One line: a kernel stopped while it started (a restart) is routine.
            gone = self._kernels.get(kernel_id) is not kernel
            log.log(
                logging.INFO if gone else logging.ERROR,
                "kernel %s did not start: %s",
                kernel_id,
                error,
            )
            log.debug("kernel %s start failure", kernel_id, exc_info=True)
            self._kernels.pop(kernel_id, None)
            await self._stop(kernel_id, kernel, final_push=False)
            reason = f"the kernel failed to start: {type(error).__name__}: {error}"[:4096]
            await send(m.KernelFailed(kernel_id=kernel_id, reason=reason))
            return
        self._pushers[kernel_id] = asyncio.create_task(self._push_every(workspace))
        await send(m.KernelStarted(kernel_id=kernel_id))

    async def _stop(self, kernel_id: str, kernel: RunningKernel, *, final_push: bool) -> None:
        pusher = self._pushers.pop(kernel_id, None)
        if pusher is not None:
            pusher.cancel()
        workspace = self._workspace_of.pop(kernel_id, None)
        await kernel.shutdown()
        if final_push and workspace is not None:
            # What the kernel wrote since the last push, while the server still takes it.
            # The mirror stays: a restarted kernel of the notebook finds its files known.
            await self._push_soon(workspace)

    async def _shutdown_kernels(self) -> None:
        kernels, self._kernels = list(self._kernels.items()), {}
        await asyncio.gather(
            *(self._stop(kernel_id, kernel, final_push=False) for kernel_id, kernel in kernels),
            return_exceptions=True,
        )

    # --- the notebook's files in /content ----------------------------------------------

    def _mirror(self, notebook_id: str) -> _Mirror:
        mirror = self._mirrors.get(notebook_id)
        if mirror is None:
            root = self._sandboxer.workspace_root(notebook_id)
            owner = self._sandboxer.file_owner
            mirror = _Mirror(Workspace(root, notebook_id, self._files, owner))
            self._mirrors[notebook_id] = mirror
        return mirror

    async def _fetch_files(
        self,
        notebook_id: str,
        progress: Callable[[str], Coroutine[Any, Any, None]],
        disk_mb: int = 0,
    ) -> None:
        """The notebook's files into /content before its kernel starts (what an earlier
        kernel here wrote and never pushed goes up first)."""
        known = notebook_id in self._mirrors
        mirror = self._mirror(notebook_id)
        loop = asyncio.get_running_loop()

        def report(detail: str) -> None:
            asyncio.run_coroutine_threadsafe(progress(detail), loop)

        def sync() -> None:
            if known:
                mirror.workspace.push()
            # /content on a disk of its own, `disk_mb` big (root workers).
            self._sandboxer.quotas.apply(mirror.workspace.root, disk_mb, self._sandboxer.file_owner)
            mirror.workspace.pull(report)

        await self._locked(mirror, sync)

    async def _locked(self, mirror: _Mirror, work: Callable[[], object]) -> None:
        """Run `work` in a thread holding the mirror's lock until the thread is done, even
        when the caller stops waiting (a cancelled wait must not let a pull overlap a push
        still running)."""

        async def run() -> None:
            async with mirror.lock:
                await asyncio.to_thread(work)

        await asyncio.shield(asyncio.ensure_future(run()))

    async def _sync(self, notebook_id: str, *, pull: bool) -> None:
        """Push what the kernel changed; with `pull`, then take what others changed."""
        mirror = self._mirrors.get(notebook_id)
        if mirror is None:
            return
        workspace = mirror.workspace

        def sync() -> None:
            workspace.push()
            if pull:
                mirror.pull_queued = False
                workspace.pull()

        try:
            await self._locked(mirror, sync)
        except Exception as error:
            log.warning("notebook %s: files not synced: %s", notebook_id, error)

    async def _push_soon(self, notebook_id: str) -> None:
        sync = asyncio.ensure_future(self._sync(notebook_id, pull=False))
        _, pending = await asyncio.wait({sync}, timeout=PUSH_BEFORE_DONE_SECONDS)
        if pending:
            log.warning("notebook %s: files still going up after a cell ended", notebook_id)

    async def _push_every(self, notebook_id: str) -> None:
        while True:
            await asyncio.sleep(PUSH_EVERY_SECONDS)
            await self._sync(notebook_id, pull=False)
