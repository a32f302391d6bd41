"""The gateway: worker connections in, one `NotebookRuntime` per notebook, messages routed.

A worker's socket is served here: `hello`, then heartbeats and kernel traffic. A worker
that closes its socket or stays silent past the timeout keeps its kernels for the
reconnect grace: their notebooks show "reconnecting", and when the worker comes back (its
`hello` lists the kernels it still runs) each is taken back where it stopped, by this
server or, after a restart, by the one that reads that hello. Past the grace the runtime is
lost (running cell fails, queue returns to idle, status disconnected).
Widget comm messages are handed to the `WidgetRelay` (`comms.py`).

With several replicas (`TANDEM_REDIS_URL`), a notebook's runtime is owned by one replica at
a time, the one its kernel's worker is connected to, under a lease (`cluster.py`): commands
made at another replica are forwarded to the owner, a new kernel goes to a replica that has
a worker for it, and a worker that reconnects to another replica has its kernel handed over
there (or taken over once the old owner's lease lapses).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import os
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlmodel import Session

from kernels import messages as m
from server.auth.service import hash_secret
from server.collab.fences import raise_fence
from server.collab.room import Room
from server.collab.rooms import RoomManager
from server.config import Settings
from server.errors import CloseCode, Conflict, InvalidInput, NotAuthenticated, TandemError
from server.events.bus import EventBus
from server.events.types import NotebookDeleted, NotebookEvent, RuntimeStatusChanged
from server.gateway import completion, tokens
from server.gateway.cell_edits import has_stale_states, reset_stale_states
from server.gateway.cluster import Cluster, OwnerUnreachable
from server.gateway.comms import WidgetRelay
from server.gateway.keys import shared_key
from server.gateway.lifecycle import RuntimeState
from server.gateway.models import (
    CompleteRequest,
    Completions,
    ExecuteAccepted,
    Inspection,
    InspectRequest,
    RuntimeStatus,
    VariableList,
    WorkerPublic,
)
from server.gateway.registry import Placement, WorkerLink, WorkerRegistry
from server.gateway.session import GatewayContext, NotebookRuntime
from server.notebooks.models import Notebook
from server.timeutil import utcnow
from server.vocabulary import RuntimeType

log = logging.getLogger(__name__)
# A runtime entering one of these has no kernel any more (or a new one coming).
_KERNEL_GONE = (RuntimeState.STOPPED, RuntimeState.STARTING, RuntimeState.DISCONNECTED)

ReceiveText = Callable[[], Awaitable[str]]


def _kernel_key(data_dir: Path) -> bytes:
    """The key kernel ids are signed with, kept in the data dir for the next server."""
    path = data_dir / "kernel-ids.key"
    with contextlib.suppress(FileExistsError):
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(secrets.token_hex(32))
    with contextlib.suppress(ValueError):
        key = bytes.fromhex(path.read_text().strip())
        if len(key) == 32:
            return key
    # Unreadable (cut short by a crash): a new key, and held kernels are not adopted.
    key = secrets.token_bytes(32)
    path.write_text(key.hex())
    return key


class WorkerGone(Exception):
    """The worker's socket closed."""


class Gateway:
    def __init__(
        self, settings: Settings, engine: Engine, rooms: RoomManager, bus: EventBus
    ) -> None:
        self.settings = settings
        self._engine = engine
        # Several replicas sign with one key (in the database): any of them adopts a kernel.
        self._kernel_key = (
            shared_key(engine) if settings.redis_url else _kernel_key(settings.data_dir)
        )
        # Starts every kernel id this server makes: one it made and no longer waits for (given
        # up on past the grace, failed to start) is not adopted when its worker comes back.
        self._boot = secrets.token_hex(4)
        self.registry = WorkerRegistry(self._on_capacity_change, self._mint_kernel_id)
        self._ctx = GatewayContext(
            settings, self.registry, rooms, bus, self._fence, self._fenced_out
        )
        self._runtimes: dict[str, NotebookRuntime] = {}
        self._types = {t.name: t for t in settings.runtime_types}
        self._monitor: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._queries = completion.KernelQueries()
        self.widgets = WidgetRelay(bus, settings.max_widgets_per_kernel)
        # Kernels of workers that went away, kept for the reconnect grace (kernel id ->).
        self._orphans: dict[str, Placement] = {}
        # The worker `tandem serve` starts itself gets a fresh token each start, never stored.
        self.local_token_hash: str | None = None
        self.cluster: Cluster | None = None
        if settings.redis_url:
            self.cluster = Cluster(
                settings.redis_url,
                settings.runtime_lease_seconds,
                settings.forward_timeout_seconds,
                workers=self._local_workers,
                hosts=self._hosted_here,
                wanted=self._wants_lease,
                lost=self._lease_lost,
                handle=self._forwarded,
                taken=self.widgets.number_from_epoch,
                record=self._record_fence,
            )
        bus.subscribe_all(self._on_event)
        rooms.on_load(self._on_room_load)

    def authenticate(self, raw: str | None) -> int | None:
        """The worker token's id (None for the local worker); NotAuthenticated otherwise."""
        if not raw:
            raise NotAuthenticated("a worker connects with its token: Authorization: Bearer TOKEN")
        local = self.local_token_hash
        if local is not None and hmac.compare_digest(hash_secret(raw), local):
            return None
        with Session(self._engine) as db:
            return tokens.check(db, raw)

    def _mint_kernel_id(self, worker: WorkerLink, notebook_id: str) -> str:
        """A kernel id that says, to this server and the next (same data dir), that it was
        made for this notebook on a worker of this token: a hello can claim no other."""
        nonce = self._boot + uuid.uuid4().hex[:24]
        return nonce + self._kernel_mac(nonce, notebook_id, worker.token_id)

    def _kernel_mac(self, nonce: str, notebook_id: str, token_id: int | None) -> str:
        said = f"{nonce}|{notebook_id}|{token_id}".encode()
        return hmac.new(self._kernel_key, said, hashlib.sha256).hexdigest()[:32]

    def _minted_for(self, held: m.HeldKernel, worker: WorkerLink) -> bool:
        nonce, mac = held.kernel_id[:32], held.kernel_id[32:]
        expected = self._kernel_mac(nonce, held.workspace, worker.token_id)
        return hmac.compare_digest(mac, expected)

    async def start(self) -> None:
        self._monitor = asyncio.create_task(self._watch_heartbeats())
        if self.cluster is not None:
            await self.cluster.start()

    # --- notebooks -------------------------------------------------------------------------

    def runtime_type(self, name: str) -> RuntimeType:
        runtime = self._types.get(name)
        if runtime is None:
            offered = ", ".join(self._types)
            raise InvalidInput(f"no runtime type {name!r}; this server offers: {offered}")
        return runtime

    async def runtime(self, notebook_id: str) -> NotebookRuntime:
        runtime = self._runtimes.get(notebook_id)
        if runtime is None:
            runtime_type = await self._stored_type(notebook_id)
            runtime = self._runtimes.get(notebook_id)  # someone else made it meanwhile
            if runtime is None:
                runtime = NotebookRuntime(notebook_id, runtime_type, self._ctx)
                self._runtimes[notebook_id] = runtime
        return runtime

    async def _stored_type(self, notebook_id: str) -> RuntimeType:
        """The notebook's chosen runtime type, else the default (the first configured)."""

        def read() -> str | None:
            with Session(self._engine) as db:
                notebook = db.get(Notebook, notebook_id)
                return notebook.runtime_type if notebook is not None else None

        chosen = await asyncio.to_thread(read)
        return self._types.get(chosen or "", self.settings.runtime_types[0])

    async def status(self, notebook_id: str) -> RuntimeStatus:
        owner = await self._elsewhere(notebook_id)
        if owner is not None:
            # An owner gone (killed: its lease not lapsed yet) is not an error to a reader.
            with contextlib.suppress(OwnerUnreachable):
                answer = await self._ask(owner, "status", notebook_id)
                return RuntimeStatus.model_validate(answer)
        return await self._status_here(notebook_id)

    async def _status_here(self, notebook_id: str) -> RuntimeStatus:
        runtime = self._runtimes.get(notebook_id)
        if runtime is not None:
            return runtime.status()
        # Asking does not make a runtime: most notebooks open are never run.
        runtime_type = await self._stored_type(notebook_id)
        return RuntimeStatus(
            type=runtime_type.name,
            types=self.settings.runtime_types,
            available_types=await self._offered(),
            status=RuntimeState.STOPPED.value,
        )

    async def _offered(self) -> list[str]:
        """The runtime types some worker of the deployment could run."""
        types = self.settings.runtime_types
        if self.cluster is None:
            return self.registry.offered(types)
        workers = [w for ws in (await self.cluster.all_workers()).values() for w in ws]
        return [
            t.name
            for t in types
            if any(sum(1 for g in w.gpus if t.accepts(g)) >= t.gpus for w in workers)
        ]

    # --- commands: here, or at the replica that owns the runtime ------------------------------

    async def execute(
        self,
        notebook_id: str,
        cell_ids: list[str],
        username: str,
        user_id: int,
        seen: dict[int, int] | None,
    ) -> ExecuteAccepted:
        owner = await self._elsewhere(notebook_id, start=True)
        if owner is not None:
            args = {
                "cell_ids": cell_ids,
                "username": username,
                "user_id": user_id,
                "seen": sorted(seen.items()) if seen is not None else None,
            }
            return ExecuteAccepted.model_validate(
                await self._ask(owner, "execute", notebook_id, args)
            )
        runtime = await self._owned_runtime(notebook_id)
        return await runtime.execute(cell_ids, username, user_id, seen)

    async def interrupt(self, notebook_id: str) -> None:
        owner = await self._elsewhere(notebook_id)
        if owner is not None:
            await self._ask(owner, "interrupt", notebook_id)
            return
        await (await self.runtime(notebook_id)).interrupt()

    async def restart(self, notebook_id: str) -> None:
        owner = await self._elsewhere(notebook_id, start=True)
        if owner is not None:
            await self._ask(owner, "restart", notebook_id)
            return
        await (await self._owned_runtime(notebook_id)).restart()

    async def answer_input(self, notebook_id: str, username: str, value: str) -> None:
        owner = await self._elsewhere(notebook_id)
        if owner is not None:
            args = {"username": username, "value": value}
            await self._ask(owner, "input", notebook_id, args)
            return
        (await self.runtime(notebook_id)).answer_input(username, value)

    async def change_runtime(self, notebook_id: str, runtime_type: RuntimeType) -> RuntimeStatus:
        """The notebook's type is stored already; a running kernel restarts on a match."""
        owner = await self._elsewhere(notebook_id, start=True)
        if owner is not None:
            answer = await self._ask(owner, "runtime", notebook_id, {"type": runtime_type.name})
            return RuntimeStatus.model_validate(answer)
        runtime = await self._owned_runtime(notebook_id)
        await runtime.change_runtime(runtime_type)
        return runtime.status()

    async def complete(self, notebook_id: str, request: CompleteRequest) -> Completions:
        owner = await self._elsewhere(notebook_id)
        if owner is not None:
            answer = await self._ask(owner, "complete", notebook_id, request.model_dump())
            return Completions.model_validate(answer)
        return await completion.complete(self._queries, self._kernel_of(notebook_id), request)

    async def inspect(self, notebook_id: str, request: InspectRequest) -> Inspection:
        owner = await self._elsewhere(notebook_id)
        if owner is not None:
            answer = await self._ask(owner, "inspect", notebook_id, request.model_dump())
            return Inspection.model_validate(answer)
        return await completion.inspect(self._queries, self._kernel_of(notebook_id), request)

    async def variables(self, notebook_id: str) -> VariableList:
        owner = await self._elsewhere(notebook_id)
        if owner is not None:
            answer = await self._ask(owner, "variables", notebook_id)
            return VariableList.model_validate(answer)
        return await completion.variables(self._queries, self._kernel_of(notebook_id))

    async def widget_state(self, notebook_id: str) -> dict[str, Any]:
        """The widgets of the notebook's running kernel, as a page starts from them."""
        owner = await self._elsewhere(notebook_id)
        if owner is not None:
            with contextlib.suppress(OwnerUnreachable):
                answer = await self._ask(owner, "widgets", notebook_id)
                return dict(answer) if isinstance(answer, dict) else {}
            return self.widgets.snapshot(notebook_id, None)
        placement = self._running(notebook_id)
        return self.widgets.snapshot(notebook_id, placement.kernel_id if placement else None)

    async def widget_message(
        self, notebook_id: str, comm_id: str, msg_id: str, data: dict[str, Any], buffers: list[str]
    ) -> bool:
        """An editor's message to a widget; True once the kernel is idle after it."""
        owner = await self._elsewhere(notebook_id)
        if owner is not None:
            args = {"comm_id": comm_id, "msg_id": msg_id, "data": data, "buffers": buffers}
            return bool(await self._ask(owner, "widget", notebook_id, args))
        placement = self._running(notebook_id)
        return await self.widgets.send(notebook_id, placement, comm_id, msg_id, data, buffers)

    def _running(self, notebook_id: str) -> Placement | None:
        runtime = self._runtimes.get(notebook_id)
        return runtime.running_kernel if runtime is not None else None

    # --- several replicas: who owns a runtime -----------------------------------------------

    async def _elsewhere(self, notebook_id: str, *, start: bool = False) -> str | None:
        """The replica a command for the notebook goes to, None for this one. A command
        that may start a kernel (`start`) takes the lease here when it is free and this
        replica has a worker for the notebook, else goes to a replica that has one."""
        cluster = self.cluster
        if cluster is None or cluster.holds(notebook_id):
            return None
        owner = await cluster.owner(notebook_id)
        if owner is not None and owner != cluster.replica:
            return owner
        if not start:
            return None
        if not self.registry.anyone_offers(await self._stored_type(notebook_id)):
            runtime_type = await self._stored_type(notebook_id)
            other = await cluster.replica_offering(runtime_type)
            if other is not None:
                return other
        if await cluster.acquire(notebook_id):
            return None
        owner = await cluster.owner(notebook_id)
        if owner is None or owner == cluster.replica:
            raise Conflict("the notebook's runtime is changing hands; try again")
        return owner

    async def _owned_runtime(self, notebook_id: str) -> NotebookRuntime:
        """The notebook's runtime, with its lease held here (several replicas)."""
        cluster = self.cluster
        if (
            cluster is not None
            and not cluster.holds(notebook_id)
            and not await cluster.acquire(notebook_id)
        ):
            raise Conflict("another replica runs this notebook's kernel; try again")
        return await self.runtime(notebook_id)

    async def _ask(
        self, replica: str, op: str, notebook_id: str, args: dict[str, Any] | None = None
    ) -> Any:
        assert self.cluster is not None
        return await self.cluster.ask(replica, op, notebook_id, args or {})

    async def _forwarded(self, op: str, notebook_id: str, args: dict[str, Any]) -> Any:
        """A command another replica forwarded here (it checked who may make it)."""
        if op == "execute":
            seen = args.get("seen")
            runtime = await self._owned_runtime(notebook_id)
            accepted = await runtime.execute(
                list(args["cell_ids"]),
                str(args["username"]),
                int(args["user_id"]),
                {int(k): int(v) for k, v in seen} if seen is not None else None,
            )
            return accepted.model_dump(mode="json")
        if op == "hand_over":
            return await self._hand_over(notebook_id, str(args["kernel_id"]))
        if op == "files":
            self._files_changed_here(notebook_id)
            return None
        if op == "revoke":
            self._revoke_here(int(args["token_id"]))
            return None
        answer: Any = None
        if op == "status":
            answer = await self._status_here(notebook_id)
        elif op == "interrupt":
            await (await self.runtime(notebook_id)).interrupt()
        elif op == "restart":
            await (await self._owned_runtime(notebook_id)).restart()
        elif op == "input":
            runtime = await self.runtime(notebook_id)
            runtime.answer_input(str(args["username"]), str(args["value"]))
        elif op == "runtime":
            runtime = await self._owned_runtime(notebook_id)
            await runtime.change_runtime(self.runtime_type(str(args["type"])))
            answer = runtime.status()
        elif op == "complete":
            answer = await completion.complete(
                self._queries, self._kernel_of(notebook_id), CompleteRequest.model_validate(args)
            )
        elif op == "inspect":
            answer = await completion.inspect(
                self._queries, self._kernel_of(notebook_id), InspectRequest.model_validate(args)
            )
        elif op == "variables":
            answer = await completion.variables(self._queries, self._kernel_of(notebook_id))
        elif op == "widgets":
            placement = self._running(notebook_id)
            return self.widgets.snapshot(notebook_id, placement.kernel_id if placement else None)
        elif op == "widgets_handed":
            return self.widgets.hand_over(notebook_id, str(args["kernel_id"]))
        elif op == "widget":
            placement = self._running(notebook_id)
            return await self.widgets.send(
                notebook_id,
                placement,
                str(args["comm_id"]),
                str(args["msg_id"]),
                dict(args["data"]),
                list(args["buffers"]),
            )
        else:
            raise InvalidInput(f"unknown forwarded command {op!r}")
        return answer.model_dump(mode="json") if answer is not None else None

    async def _hand_over(self, notebook_id: str, kernel_id: str) -> int | None:
        """Another replica's worker holds our notebook's kernel `kernel_id` (it reconnected
        there): let it go, saying up to where its messages are stored; None when this
        replica runs another kernel for the notebook."""
        assert self.cluster is not None
        runtime = self._runtimes.get(notebook_id)
        orphan = self._orphans.pop(kernel_id, None)
        if orphan is not None and runtime is not None and runtime.reconnecting:
            upto = await runtime.hand_over()
            del self._runtimes[notebook_id]
            await self.cluster.release(notebook_id)
            log.info("notebook %s: runtime handed over to another replica", notebook_id)
            return upto
        if runtime is not None and runtime.busy:
            return None
        await self.cluster.release(notebook_id)
        return 0

    def _fence(self, notebook_id: str) -> int | None:
        """The lease epoch a runtime write is made under (the database checks it); raises
        when this replica no longer trusts its lease. None: one server, nothing to fence."""
        if self.cluster is None:
            return None
        if not self.cluster.holds(notebook_id):
            raise Conflict("this replica no longer owns the notebook's runtime")
        return self.cluster.epoch(notebook_id)

    async def _record_fence(self, notebook_id: str, epoch: int) -> None:
        await asyncio.to_thread(raise_fence, self._engine, notebook_id, epoch)

    def _fenced_out(self, notebook_id: str, epoch: int) -> None:
        """The database refused a runtime write made under `epoch`: another replica took
        the runtime, whatever this one's lease says. As when the lease is lost."""
        assert self.cluster is not None
        held = self.cluster.epoch(notebook_id)
        if held is not None and held != epoch:
            return  # an older runtime's write; the one under the current lease goes on
        log.warning("notebook %s: a runtime write was fenced out; runtime dropped", notebook_id)
        self._spawn(self.cluster.release(notebook_id))
        self._lease_lost(notebook_id)

    def _wants_lease(self, notebook_id: str) -> bool:
        runtime = self._runtimes.get(notebook_id)
        return runtime is not None and (runtime.busy or runtime.reconnecting)

    def _lease_lost(self, notebook_id: str) -> None:
        """Another replica may own the runtime now: ours must not write any more (the fence
        refuses), and is forgotten; its kernel, if its worker is still here, is shut down."""
        runtime = self._runtimes.pop(notebook_id, None)
        if runtime is None:
            return
        placement = runtime.running_kernel
        if placement is not None:
            self._orphans.pop(placement.kernel_id, None)
            if placement.worker.kernels.get(placement.kernel_id) is placement:
                # Still on a worker of ours: the next owner starts its own kernel.
                self.registry.release(placement)
                placement.worker.send(m.ShutdownKernel(kernel_id=placement.kernel_id))
        self._spawn(runtime.hand_over(store=False))

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def run() -> None:
            with contextlib.suppress(TandemError):
                await work

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _local_workers(self) -> list[WorkerPublic]:
        return [w.public() for w in self.registry.workers.values()]

    async def all_workers(self) -> list[WorkerPublic]:
        """Every worker of the deployment (with several replicas, each replica's)."""
        if self.cluster is None:
            return self._local_workers()
        found = await self.cluster.all_workers()
        return [worker for workers in found.values() for worker in workers]

    def _kernel_of(self, notebook_id: str) -> Placement:
        """The notebook's running kernel; a question about code never starts one."""
        runtime = self._runtimes.get(notebook_id)
        placement = runtime.running_kernel if runtime is not None else None
        if placement is None:
            raise Conflict("no kernel is running: run a cell to start one")
        return placement

    def _on_room_load(self, room: Room) -> None:
        runtime = self._runtimes.get(room.notebook_id)
        if (runtime is not None and runtime.busy) or not has_stale_states(room.doc):
            return
        if self.cluster is not None:
            # The cells another replica's runtime is running are not stale.
            self._spawn(self._tidy_unless_owned(room))
            return
        # Applied now, before whoever loaded the room acts on it; stored in the background.
        saved = room.start_edit(reset_stale_states)
        saved.add_done_callback(lambda future: future.cancelled() or future.exception())

    async def _tidy_unless_owned(self, room: Room) -> None:
        assert self.cluster is not None
        with contextlib.suppress(RedisError):
            if await self.cluster.owner(room.notebook_id) is None:
                await room.edit(reset_stale_states)

    def _on_capacity_change(self) -> None:
        for runtime in self._runtimes.values():
            if self.registry.position(runtime.notebook_id) is not None:
                runtime.mark_waiting()

    def _on_event(self, event: NotebookEvent) -> None:
        if isinstance(event, RuntimeStatusChanged):
            # A kernel restarting, stopped or lost takes its widgets with it (one whose
            # worker is reconnecting keeps them: it may come back with the kernel).
            if event.runtime.get("status") in _KERNEL_GONE:
                self.widgets.reset(event.notebook_id)
            return
        if not isinstance(event, NotebookDeleted):
            return
        self.widgets.forget(event.notebook_id)
        runtime = self._runtimes.pop(event.notebook_id, None)
        if runtime is not None:
            self._spawn(runtime.stop("the notebook was deleted", "The notebook was deleted."))

    # --- workers -----------------------------------------------------------------------

    async def serve_worker(
        self,
        receive_text: ReceiveText,
        send_text: Callable[[str], None],
        close: Callable[[int, str], None],
        token_id: int | None,
    ) -> None:
        """Run one worker connection until it ends; `send_text` and `close` only queue."""
        hello = m.parse_from_worker(await asyncio.wait_for(receive_text(), 10))
        if not isinstance(hello, m.Hello):
            raise m.BadMessage("the first message must be hello")
        worker = WorkerLink(
            name=hello.name,
            resources=hello.resources,
            max_kernels=hello.max_kernels,
            sandbox=hello.sandbox,
            token_id=token_id,
            send_text=send_text,
            close=close,
        )
        worker.send(
            m.Welcome(
                worker_id=worker.id,
                heartbeat_seconds=self.settings.worker_heartbeat_seconds,
                max_output_bytes=self.settings.max_output_bytes_per_cell,
                # The local worker does not outlive its server: no grace (see _lose).
                reconnect_grace_seconds=(
                    self.settings.worker_reconnect_grace_seconds if token_id is not None else 0
                ),
            )
        )
        for held in hello.kernels:
            await self._take_back(worker, held)
        self._forget_unclaimed(worker, {held.kernel_id for held in hello.kernels})
        self.registry.add(worker)
        try:
            while True:
                try:
                    raw = await receive_text()
                except WorkerGone:
                    return
                worker.last_seen = time.monotonic()
                try:
                    message = m.parse_from_worker(raw)
                except m.BadMessage as error:
                    log.warning("worker %s sent a bad message: %s", worker.id, error)
                    continue
                self._dispatch(worker, message)
        finally:
            self._lose(worker, f"the runtime was lost: worker {worker.name} disconnected")

    def _dispatch(self, worker: WorkerLink, message: m.FromWorker) -> None:
        if isinstance(message, m.Heartbeat):
            worker.last_heartbeat = utcnow()
            return
        if isinstance(message, m.Hello):
            log.warning("worker %s said hello twice; ignored", worker.id)
            return
        placement = worker.kernels.get(message.kernel_id)
        if placement is None:
            return  # a kernel the server already let go of
        if isinstance(message, m.CompleteReply | m.InspectReply | m.VariablesReply):
            self._queries.answer(message)
            return
        if isinstance(message, m.CommIdle):
            self.widgets.idle(message)
            return
        if isinstance(message, m.WidgetState):
            self.widgets.from_kernel_state(placement.owner, message)
            return
        runtime = self._runtimes.get(placement.owner)
        if runtime is not None and isinstance(message, m.RELIABLE) and message.seq:
            runtime.on_numbered(message.seq)
        if isinstance(message, m.Comm):
            self.widgets.from_kernel(placement.owner, message)
            if runtime is not None:
                runtime.acknowledge()  # kept in memory: nothing more to store
            return
        if isinstance(message, m.Output | m.WidgetOutput) and self.widgets.capture(
            placement.owner,
            message.kernel_id,
            message.parent_msg_id,
            message.msg_type,
            message.content,
        ):
            if runtime is not None:
                runtime.acknowledge()
            return  # into an Output widget, not the cell
        if runtime is None or isinstance(message, m.WidgetOutput):
            return
        if isinstance(message, m.Output):
            runtime.on_output(message.execution_id, message.msg_type, message.content)
        elif isinstance(message, m.ExecuteDone):
            runtime.on_execute_done(message)
        elif isinstance(message, m.InputRequest):
            runtime.on_input_request(message.execution_id, message.prompt, message.password)
        elif isinstance(message, m.KernelStarted):
            runtime.on_kernel_started()
        elif isinstance(message, m.KernelProgress):
            runtime.on_kernel_progress(message.detail)
        elif isinstance(message, m.KernelUsage):
            runtime.on_kernel_usage(message)
        elif isinstance(message, m.KernelFailed | m.KernelDied):
            self.registry.release(placement)
            log.info("notebook %s: %s", placement.owner, message.reason)
            runtime.on_kernel_lost(message.reason)

    def _lose(self, worker: WorkerLink, reason: str, *, grace: bool = True) -> None:
        # The local worker does not come back without its server: its kernels die with it.
        remote = worker.token_id is not None
        seconds = self.settings.worker_reconnect_grace_seconds if grace and remote else 0
        for placement in self.registry.remove(worker):
            runtime = self._runtimes.get(placement.owner)
            if runtime is None:
                continue
            if seconds > 0 and runtime.running_kernel is placement:
                self._orphans[placement.kernel_id] = placement
                expire = functools.partial(self._give_up, placement, reason)
                # Not lost yet: waited for.
                away = reason.removeprefix("the runtime was lost: ")
                runtime.on_worker_away(away, seconds, expire)
                # Forgotten past the grace even when the runtime stopped waiting before (a
                # restart meanwhile cancels its timer).
                asyncio.get_running_loop().call_later(
                    seconds + 1, functools.partial(self._drop_orphan, placement)
                )
            else:
                runtime.on_kernel_lost(reason)

    def _drop_orphan(self, placement: Placement) -> None:
        if self._orphans.get(placement.kernel_id) is placement:
            del self._orphans[placement.kernel_id]

    def _give_up(self, placement: Placement, reason: str) -> None:
        """The grace is over and the kernel's worker did not come back with it."""
        if self._orphans.pop(placement.kernel_id, None) is None:
            return
        runtime = self._runtimes.get(placement.owner)
        if runtime is not None and runtime.reconnecting:
            log.info("notebook %s: the worker did not come back: %s", placement.owner, reason)
            runtime.on_kernel_lost(reason)

    def _forget_unclaimed(self, worker: WorkerLink, held: set[str]) -> None:
        """The worker is back (same token and name) without kernels we wait for: it was
        restarted, or its own grace ran out first. No use waiting out ours."""
        for kernel_id, orphan in list(self._orphans.items()):
            away = orphan.worker
            if kernel_id not in held and (away.token_id, away.name) == (
                worker.token_id,
                worker.name,
            ):
                self._give_up(
                    orphan, f"the runtime was lost: worker {worker.name} came back without it"
                )

    async def _take_back(self, worker: WorkerLink, held: m.HeldKernel) -> None:
        """A reconnecting worker still runs `held`: resume it where it stopped when it is
        still its notebook's kernel (this server waited for it) or the notebook has none (a
        restarted server); otherwise it is shut down."""
        orphan = self._orphans.get(held.kernel_id)
        if orphan is not None and orphan.worker.token_id != worker.token_id:
            # Only the token that ran it may claim it (and the claim must not cost the
            # real worker its way back).
            log.warning("worker %s claimed a kernel of another worker token", worker.id)
            worker.send(m.ShutdownKernel(kernel_id=held.kernel_id))
            return
        self._orphans.pop(held.kernel_id, None)
        runtime = self._runtimes.get(held.workspace)
        placement = Placement(worker, held.kernel_id, list(held.gpus), held.workspace)
        worker.kernels[held.kernel_id] = placement  # its GPUs stay taken meanwhile
        if orphan is not None and runtime is not None and runtime.reconnecting:
            after = runtime.on_worker_back(placement)
            log.info("notebook %s: kernel %s back", held.workspace, held.kernel_id[:8])
            worker.send(m.Resume(kernel_id=held.kernel_id, after_seq=after))
            runtime.resumed()
            return
        if (
            orphan is None
            and self._minted_for(held, worker)
            and held.started
            and (runtime is None or not (runtime.busy or runtime.changing))
            and await self._notebook_exists(held.workspace)
        ):
            resume_after = await self._take_over(held, held.kernel_id.startswith(self._boot))
            runtime = await self.runtime(held.workspace)
            # Nobody started one, or began a restart or a stop, while we looked.
            if resume_after is not None and not (runtime.busy or runtime.changing):
                await runtime.adopt(placement, held)
                log.info("notebook %s: kernel %s adopted", held.workspace, held.kernel_id[:8])
                worker.send(m.Resume(kernel_id=held.kernel_id, after_seq=resume_after))
                if self.widgets.store(held.workspace, held.kernel_id) is None:
                    # Not handed over: the kernel says what its widgets are (in the
                    # background, as it answers; see `kernels/messages.py`).
                    limit = self.settings.max_widgets_per_kernel
                    worker.send(m.RequestWidgets(kernel_id=held.kernel_id, max_widgets=limit))
                return
        worker.kernels.pop(held.kernel_id, None)
        worker.send(m.ShutdownKernel(kernel_id=held.kernel_id))

    async def _take_over(self, held: m.HeldKernel, made_here: bool) -> int | None:
        """Whether to adopt a kernel nobody here waits for, and the number its worker
        resends from (None: shut it down). One this server made and no longer waits for
        was given up on. With several replicas, a kernel another replica owns (it moved
        there, maybe from here) is taken with the notebook's lease: handed over by its
        owner, or once the lease of an owner that is gone lapses."""
        cluster = self.cluster
        if cluster is None or cluster.holds(held.workspace):
            return None if made_here else 0
        notebook_id, after = held.workspace, 0
        owner = await cluster.owner(notebook_id)
        if owner is None and made_here:
            return None
        widgets: Any = None
        if owner is not None and owner != cluster.replica:
            try:
                upto = await cluster.ask(
                    owner, "hand_over", notebook_id, {"kernel_id": held.kernel_id}
                )
            except OwnerUnreachable:
                upto = None  # gone: its lease lapses
            else:
                if upto is None:
                    return None
                widgets = await self._widgets_handed(owner, notebook_id, held.kernel_id)
            after = int(upto or 0)
        wait = self.settings.runtime_lease_seconds + 1
        if not await cluster.take_over(notebook_id, wait):
            return None
        if isinstance(widgets, dict):
            # Before the kernel resumes: its next comm messages apply to these widgets.
            self.widgets.take(notebook_id, held.kernel_id, widgets)
        return after

    async def _widgets_handed(self, owner: str, notebook_id: str, kernel_id: str) -> Any:
        """The widgets the runtime's previous owner kept (None when it cannot say: the
        kernel's widgets then start anew here)."""
        assert self.cluster is not None
        try:
            return await self.cluster.ask(
                owner, "widgets_handed", notebook_id, {"kernel_id": kernel_id}
            )
        except TandemError as error:
            log.warning("notebook %s: the widgets were not handed over: %s", notebook_id, error)
            return None

    async def _notebook_exists(self, notebook_id: str) -> bool:
        def read() -> bool:
            with Session(self._engine) as db:
                return db.get(Notebook, notebook_id) is not None

        return await asyncio.to_thread(read)

    async def _watch_heartbeats(self) -> None:
        timeout = self.settings.worker_timeout_seconds
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = time.monotonic()
            for worker in list(self.registry.workers.values()):
                if now - worker.last_seen > timeout:
                    log.warning("worker %s (%s) missed its heartbeats", worker.id, worker.name)
                    worker.close(CloseCode.NO_HEARTBEAT, "no heartbeat")
                    self._lose(
                        worker, f"the runtime was lost: worker {worker.name} stopped responding"
                    )

    def revoke(self, token_id: int) -> None:
        """Disconnect the token's workers, here and (several replicas) at every replica."""
        self._revoke_here(token_id)
        if self.cluster is not None:
            self._spawn(self._tell_everyone("revoke", "", {"token_id": token_id}))

    async def _tell_everyone(self, op: str, notebook_id: str, args: dict[str, Any]) -> None:
        assert self.cluster is not None
        for replica in await self.cluster.all_workers():
            if replica != self.cluster.replica:
                with contextlib.suppress(TandemError):
                    await self.cluster.ask(replica, op, notebook_id, args)

    def _revoke_here(self, token_id: int) -> None:
        for worker in list(self.registry.workers.values()):
            if worker.token_id == token_id:
                worker.close(CloseCode.NOT_AUTHENTICATED, "worker token revoked")
                self._lose(
                    worker, f"the runtime was lost: worker {worker.name} was removed", grace=False
                )

    # --- notebook files ----------------------------------------------------------------

    def may_touch_files(self, token_id: int | None, notebook_id: str) -> bool:
        """A worker reads and writes only the files of notebooks it runs (or just ran), at
        any replica."""
        here = any(
            worker.token_id == token_id and worker.hosts(notebook_id)
            for worker in self.registry.workers.values()
        )
        if here or self.cluster is None or token_id is None:
            return here
        return self.cluster.hosted_elsewhere(token_id, notebook_id)

    def _hosted_here(self) -> dict[str, list[str]]:
        hosted: dict[str, set[str]] = {}
        for worker in self.registry.workers.values():
            if worker.token_id is not None:
                notebooks = hosted.setdefault(str(worker.token_id), set())
                notebooks.update(p.owner for p in worker.kernels.values())
                notebooks.update(n for n in worker.released if worker.hosts(n))
        return {token: sorted(notebooks) for token, notebooks in hosted.items()}

    def files_changed(self, notebook_id: str) -> None:
        """Have the workers holding the notebook's working directory mirror a change (with
        several replicas, those connected to any replica)."""
        self._files_changed_here(notebook_id)
        if self.cluster is not None:
            self._spawn(self._tell_everyone("files", notebook_id, {}))

    def _files_changed_here(self, notebook_id: str) -> None:
        for worker in self.registry.workers.values():
            if worker.hosts(notebook_id):
                worker.send(m.FilesChanged(workspace=notebook_id))

    def workers(self) -> list[dict[str, Any]]:
        return [w.model_dump(mode="json") for w in self._local_workers()]

    async def shutdown(self) -> None:
        """Kernels on dialled-in workers outlive a server restart (their workers keep them
        for the reconnect grace and the next server takes them back): only their outputs are
        written down. The local worker's go with the server, so their cells are told."""
        if self._monitor is not None:
            self._monitor.cancel()
        keep = self.settings.worker_reconnect_grace_seconds > 0
        for runtime in list(self._runtimes.values()):
            placement = runtime.running_kernel
            if keep and placement is not None and placement.worker.token_id is not None:
                with contextlib.suppress(Exception):
                    await runtime.write_pending()
            elif runtime.busy:
                with contextlib.suppress(Exception):
                    await runtime.stop(
                        "the server stopped", "The server stopped while this cell ran."
                    )
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.cluster is not None:
            await self.cluster.stop()  # its leases free: another replica may take over now
        for worker in list(self.registry.workers.values()):
            worker.close(CloseCode.RESTARTING, "server restarting")
