"""`tandem worker`: dial out to a server, say what this machine has, run its kernels.

The connection goes out from the worker, so a GPU node behind NAT works. When it drops, the
worker reconnects with backoff and keeps its kernels running for the server's reconnect
grace (`welcome.reconnect_grace_seconds`): what they say meanwhile is kept (an `_Outbox` per
kernel, until the server acknowledges it as stored), the next `hello` lists them, and the
server (this one restarted, or another) takes them back and has the rest sent again. Past
the grace the kernels are shut down: a GPU must not stay held by a kernel nobody can reach.
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
HELD_BACKOFF_SECONDS = 1.0
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


# At most this many unacknowledged messages, and bytes, are kept per kernel; past either
# the oldest outputs go (a cell printing in a tight loop, or drawing images, while the
# server is away for a minute), and the cell says how many went.
MAX_HELD_MESSAGES = 20_000
MAX_HELD_BYTES = 64 * 1024 * 1024


class _Outbox:
    """What one kernel said that the server has not yet stored, numbered. While `live`, new
    messages go out at once; otherwise (no connection, or one whose server has not yet
    taken the kernel back) they wait for `resume`."""

    def __init__(
        self, max_messages: int = MAX_HELD_MESSAGES, max_bytes: int = MAX_HELD_BYTES
    ) -> None:
        self.seq = 0
        self.held: list[m.Reliable] = []
        self.live = False
        self.ending: tuple[str, int] | None = None  # a cell's end: execution id, number
        self._max_messages, self._max_bytes = max_messages, max_bytes
        self._bytes = 0
        self._sizes: dict[int, int] = {}  # seq -> encoded size
        self._dropped: dict[str, tuple[int, int]] = {}  # execution -> its notice's seq, count

    def number(self, message: m.Reliable) -> m.Reliable:
        self.seq += 1
        numbered = message.model_copy(update={"seq": self.seq})
        self.held.append(numbered)
        self._sizes[self.seq] = size = len(m.encode(numbered))
        self._bytes += size
        while len(self.held) > self._max_messages or self._bytes > self._max_bytes:
            if not self._drop_oldest_output():
                break
        return numbered

    def _drop_oldest_output(self) -> bool:
        """The oldest output goes; the first one dropped of a cell becomes its notice."""
        notices = {seq for seq, _ in self._dropped.values()}
        index = next(
            (
                i
                for i, held in enumerate(self.held)
                if isinstance(held, m.Output) and held.seq not in notices
            ),
            None,
        )
        if index is None or index == len(self.held) - 1:
            return False  # the newest is kept, whatever its size
        victim = self.held[index]
        assert isinstance(victim, m.Output)
        notice_seq, count = self._dropped.get(victim.execution_id, (victim.seq, 0))
        self._dropped[victim.execution_id] = (notice_seq, count + 1)
        notice = victim.model_copy(
            update={
                "seq": notice_seq,
                "msg_type": "stream",
                "content": {
                    "name": "stderr",
                    "text": f"[{count + 1} outputs were dropped while no server was reachable]\n",
                },
            }
        )
        self._bytes -= self._sizes.pop(victim.seq, 0)
        if notice_seq == victim.seq:
            self.held[index] = notice
        else:
            del self.held[index]
            where = next(i for i, held in enumerate(self.held) if held.seq == notice_seq)
            self.held[where] = notice
        return True

    def ack(self, seq: int) -> bool:
        """Forget what is stored; True when that includes the running cell's end."""
        self.held = [message for message in self.held if message.seq > seq]
        for number in [number for number in self._sizes if number <= seq]:
            self._bytes -= self._sizes.pop(number)
        self._dropped = {e: d for e, d in self._dropped.items() if d[0] > seq}
        return self.ending is not None and self.ending[1] <= seq


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
        # Surviving a dropped connection: the current one's send, each kernel's outbox and
        # running cell, the grace timer, and how long the server said to hold kernels.
        self._link: Send | None = None
        self._outboxes: dict[str, _Outbox] = {}
        self._gpus_of: dict[str, list[int]] = {}
        self._started: set[str] = set()
        self._running: dict[str, m.HeldExecution] = {}
        self._grace = 0.0
        self._orphaned: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Stay connected until cancelled; raises WorkerRejected on a refused token."""
        try:
            await self._connect_forever()
        finally:
            if self._orphaned is not None:
                self._orphaned.cancel()
            await self._shutdown_kernels()
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
                self._link = None
                for outbox in self._outboxes.values():
                    outbox.live = False
                self._hold_kernels()
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            # Kernels held for the server come back sooner: at most a second between tries.
            backoff = min(
                backoff * 2, HELD_BACKOFF_SECONDS if self._kernels else MAX_BACKOFF_SECONDS
            )

    def _hold_kernels(self) -> None:
        """The connection is gone: keep the kernels for the grace, then shut them down."""
        if not self._kernels and not self._starting:
            return
        if self._grace <= 0:
            self._spawn(self._shutdown_kernels())
            return
        if self._orphaned is None or self._orphaned.done():
            held = len(self._kernels)
            log.warning("keeping %d kernels for %gs while reconnecting", held, self._grace)
            self._orphaned = asyncio.create_task(self._shutdown_after(self._grace))

    async def _shutdown_after(self, grace: float) -> None:
        await asyncio.sleep(grace)
        log.warning("no server took the kernels back in %gs: shutting them down", grace)
        await self._shutdown_kernels()

    def _held(self) -> list[m.HeldKernel]:
        return [
            m.HeldKernel(
                kernel_id=kernel_id,
                workspace=self._workspace_of.get(kernel_id, "scratch"),
                gpus=self._gpus_of.get(kernel_id, []),
                started=kernel_id in self._started,
                execution=self._running.get(kernel_id),
            )
            for kernel_id in self._kernels
        ]

    async def _session(self, ws: websockets.ClientConnection) -> None:
        hello = m.Hello(
            name=self.name,
            resources=self.resources,
            max_kernels=self.max_kernels,
            sandbox=self._sandboxer.describe(),
            kernels=self._held(),
        )
        await ws.send(m.encode(hello))
        welcome = m.parse_from_server(await asyncio.wait_for(ws.recv(), 10))
        if not isinstance(welcome, m.Welcome):
            raise ConnectionError("the server did not welcome this worker")
        self._max_output_bytes = welcome.max_output_bytes
        self._grace = welcome.reconnect_grace_seconds
        if self._orphaned is not None:
            # The server answers each held kernel (resume or shutdown) before anything else.
            self._orphaned.cancel()
            self._orphaned = None
        log.info("connected to %s as worker %s", self.url.split("?")[0], welcome.worker_id)

        async def send(message: m.FromWorker) -> None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(m.encode(message))

        self._link = send
        for kernel_id in self._kernels.keys() - {held.kernel_id for held in hello.kernels}:
            # Started while the hello was on its way: new to this server, nothing to resume.
            self._outboxes.setdefault(kernel_id, _Outbox()).live = True
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

    async def _deliver(self, message: m.FromWorker) -> None:
        """Every kernel's way to the server: reliable messages are numbered and kept until
        acknowledged, and go out only while the kernel is live on a connection."""
        outbox = self._outboxes.get(message.kernel_id) if isinstance(message, m.RELIABLE) else None
        if outbox is not None and isinstance(message, m.RELIABLE):
            self._note(message)
            message = outbox.number(message)
            if isinstance(message, m.ExecuteDone):
                # The cell stays this kernel's running one until its end is acknowledged:
                # a server that takes the kernel back before then finishes it itself.
                outbox.ending = (message.execution_id, message.seq)
            if not outbox.live:
                return
        link = self._link
        if link is not None:
            await link(message)

    def _note(self, message: m.Reliable) -> None:
        """Keep what a reconnecting hello must tell: started kernels, their running cell."""
        kernel_id = message.kernel_id
        if isinstance(message, m.KernelStarted):
            self._started.add(kernel_id)
        elif isinstance(message, m.InputRequest):
            running = self._running.get(kernel_id)
            if running is not None and running.execution_id == message.execution_id:
                self._running[kernel_id] = running.model_copy(
                    update={
                        "waiting_input": True,
                        "prompt": message.prompt,
                        "password": message.password,
                    }
                )

    def _acked(self, kernel_id: str, seq: int) -> None:
        outbox = self._outboxes.get(kernel_id)
        if outbox is None or not outbox.ack(seq):
            return
        assert outbox.ending is not None
        running = self._running.get(kernel_id)
        if running is not None and running.execution_id == outbox.ending[0]:
            del self._running[kernel_id]
        outbox.ending = None

    async def _resume(self, message: m.Resume) -> None:
        outbox = self._outboxes.setdefault(message.kernel_id, _Outbox())
        # What came up to `after_seq` reached the server but may not be stored yet: it is
        # kept until acknowledged (the server acks again right after its resume).
        index = next(
            (i for i, held in enumerate(outbox.held) if held.seq > message.after_seq),
            len(outbox.held),
        )
        while index < len(outbox.held):  # what arrives meanwhile is sent too, in order
            link = self._link
            if link is None:
                return
            await link(outbox.held[index])
            index += 1
        outbox.live = True
        log.info("kernel %s taken back by the server", message.kernel_id[:8])

    async def _handle(self, message: m.FromServer, send: Send) -> None:
        if isinstance(message, m.Ack):
            self._acked(message.kernel_id, message.seq)
            return
        if isinstance(message, m.Resume):
            if message.kernel_id in self._kernels:
                await self._resume(message)
            else:
                # Shut down as the hello travelled (the grace ran out): the server would
                # otherwise wait on its cell for ever.
                reason = "the worker shut the kernel down: no server took it back in time"
                await send(m.KernelDied(kernel_id=message.kernel_id, reason=reason))
            return
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
            self._running[message.kernel_id] = m.HeldExecution(
                execution_id=message.execution_id,
                cell_id=message.cell_id,
                run_by=message.run_by,
                run_by_id=message.run_by_id,
            )
            self._spawn(self._execute(kernel, message))
        elif isinstance(message, m.Interrupt):
            await kernel.interrupt()
        elif isinstance(message, m.InputReply):
            running = self._running.get(message.kernel_id)
            if running is not None:
                self._running[message.kernel_id] = running.model_copy(
                    update={"waiting_input": False, "prompt": "", "password": False}
                )
            kernel.reply_input(message.value)
        elif isinstance(message, m.CommMsg):
            kernel.comm_msg(message)
        elif isinstance(message, m.RequestWidgets):
            self._spawn(self._report_widgets(kernel, message.max_widgets))
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

    @staticmethod
    async def _report_widgets(kernel: RunningKernel, max_widgets: int) -> None:
        try:
            asked = await kernel.report_widgets(max_widgets)
        except Exception as error:  # a kernel stopping under the question, say
            log.info("kernel %s: its widgets were not reported: %s", kernel.kernel_id[:8], error)
            return
        log.info("kernel %s: %d widgets asked for their state", kernel.kernel_id[:8], asked)

    async def _start(self, message: m.StartKernel, send: Send) -> None:
        kernel_id = message.kernel_id
        self._outboxes[kernel_id] = _Outbox()
        self._outboxes[kernel_id].live = True
        self._gpus_of[kernel_id] = list(message.gpus)
        send = self._deliver  # from now on, whichever connection is current

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
            self._forget(kernel_id)
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
        self._forget(kernel_id)
        pusher = self._pushers.pop(kernel_id, None)
        if pusher is not None:
            pusher.cancel()
        workspace = self._workspace_of.pop(kernel_id, None)
        await kernel.shutdown()
        if final_push and workspace is not None:
            # What the kernel wrote since the last push, while the server still takes it.
            # The mirror stays: a restarted kernel of the notebook finds its files known.
            await self._push_soon(workspace)

    def _forget(self, kernel_id: str) -> None:
        self._outboxes.pop(kernel_id, None)
        self._gpus_of.pop(kernel_id, None)
        self._started.discard(kernel_id)
        self._running.pop(kernel_id, None)

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
