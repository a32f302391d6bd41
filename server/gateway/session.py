"""One notebook's runtime: its kernel, its execution queue, and the outputs it writes.

Cells run one at a time, first in first out, whoever queued them. The server drives it all:
it places a kernel on a worker, sends each cell's code, and writes what comes back into the
shared document through `Room.edit` (persisted before anyone sees it), batched every
~50 ms. Everything people should see (queued / running / idle, counts, outputs, who ran a
cell) is in the document; the runtime's own state goes out as `runtime.*` events.

`NotebookRuntime` orchestrates: the queue, the runner, the kernel's placement, a worker's
reconnect and a kernel's adoption. Its parts with their own concern live apart: the states
and their moves (`lifecycle`), output batching and acknowledgements (`flushing`), the idle
and lifetime limits (`limits`), and what goes into the document (`cell_edits`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kernels import messages as m
from server.collab.room import Room
from server.collab.rooms import RoomManager
from server.config import Settings
from server.errors import Conflict, NotFound, PermissionDenied
from server.events.bus import EventBus
from server.events.types import (
    InputAnswered,
    InputRequested,
    RuntimeLimitWarning,
    RuntimeStatusChanged,
)
from server.gateway import outputs
from server.gateway.cell_edits import CellEdits
from server.gateway.execution import Execution, Outcome, Output
from server.gateway.flushing import Acknowledgements, OutputFlusher
from server.gateway.lifecycle import Lifecycle, RuntimeState, settled
from server.gateway.limits import LimitKind, LimitTimers
from server.gateway.models import ExecuteAccepted, RuntimeStatus, RuntimeUsage
from server.gateway.registry import Placement, WorkerRegistry
from server.notebooks.document import cells_by_id, cells_of
from server.timeutil import utcnow
from server.vocabulary import RuntimeType

log = logging.getLogger(__name__)


def _unfenced(notebook_id: str) -> int | None:
    return None


def _never_fenced_out(notebook_id: str, epoch: int) -> None:
    return None


@dataclass
class GatewayContext:
    settings: Settings
    registry: WorkerRegistry
    rooms: RoomManager
    bus: EventBus
    # Raises when this server may no longer write the notebook's runtime state (several
    # replicas: it lost the runtime's lease); checked before every write. Returns the lease
    # epoch the writes carry, which the database checks (None: one server, unfenced).
    fence: Callable[[str], int | None] = _unfenced
    # The database refused a write made under the epoch (another replica owns the runtime).
    fenced_out: Callable[[str, int], None] = _never_fenced_out


class NotebookRuntime:
    def __init__(self, notebook_id: str, runtime: RuntimeType, ctx: GatewayContext) -> None:
        self.notebook_id = notebook_id
        self.runtime = runtime
        self._ctx = ctx
        self._settings = ctx.settings
        self._lifecycle = Lifecycle()
        self._placement: Placement | None = None
        self._started_at: datetime | None = None
        self._queue: deque[Execution] = deque()
        self._current: Execution | None = None
        self._runner: asyncio.Task[None] | None = None
        # Restarts, stops, interrupts and runtime changes under way: while one is, a Run
        # only queues its cells (a runner started then would run on a kernel being shut);
        # the last to end starts the runner for what is queued, and for a kernel when the
        # latest of them was a restart or a runtime change (`_start_wanted`).
        self._holds = 0
        self._start_wanted = False
        self._kernel_up: asyncio.Future[str] | None = None  # "" when started, else why not
        self._cells = CellEdits(
            notebook_id,
            ctx.rooms,
            functools.partial(ctx.fence, notebook_id),
            functools.partial(ctx.fenced_out, notebook_id),
        )
        self._outputs: OutputFlusher[Output] = OutputFlusher(
            self._settings.output_flush_seconds, self._cells.write, self._ack, label=notebook_id
        )
        self._limits = LimitTimers(
            self._settings.kernel_idle_timeout_seconds,
            self._settings.kernel_max_lifetime_seconds,
            self._settings.kernel_warning_seconds,
            warn=self._warn,
            reached=self._limit_reached,
        )
        self._background: set[asyncio.Task[None]] = set()
        self._usage: RuntimeUsage | None = None
        self._last_sandbox: m.Sandbox | None = None
        self._last_progress = 0.0
        # How far the worker's numbered messages are stored (with `_outputs.first_unstored`).
        self._acks = Acknowledgements()
        self._away: asyncio.TimerHandle | None = None

    # --- what everyone sees ------------------------------------------------------------

    def status(self) -> RuntimeStatus:
        placement = self._placement
        current = self._current
        return RuntimeStatus(
            type=self.runtime.name,
            types=self._settings.runtime_types,
            status=self._lifecycle.state.value,
            reason=self._lifecycle.reason,
            queue_position=self._ctx.registry.position(self.notebook_id),
            worker=placement.worker.name if placement else None,
            gpus=placement.gpu_names if placement else [],
            started_at=self._started_at,
            idle_deadline=self._limits.idle_deadline,
            lifetime_deadline=self._limits.lifetime_deadline,
            queued_cells=[e.cell_id for e in self._queue],
            available_types=self._ctx.registry.offered(self._settings.runtime_types),
            running_cell=current.cell_id if current else None,
            waiting_for_input=(
                {"cell_id": current.cell_id, "username": current.username, **current.prompt}
                if current is not None and current.prompt is not None
                else None
            ),
            # After a kernel is gone, the last worker's sandbox still says why (unavailable).
            sandbox=placement.worker.sandbox if placement else self._last_sandbox,
            usage=self._usage if placement else None,
        )

    @property
    def _has_work(self) -> bool:
        return bool(self._queue) or self._current is not None

    def _set_state(self, state: RuntimeState, reason: str = "") -> None:
        self._lifecycle.move(state, reason, has_work=self._has_work)
        self.publish_status()

    def publish_status(self) -> None:
        runtime = self.status().model_dump(mode="json")
        self._ctx.bus.publish(RuntimeStatusChanged(notebook_id=self.notebook_id, runtime=runtime))

    def mark_waiting(self) -> None:
        if self._ctx.registry.anyone_offers(self.runtime):
            reason = "waiting for a free worker"
        else:
            reason = f"waiting for a worker that offers the {self.runtime.name} runtime"
        self._set_state(RuntimeState.WAITING, reason)

    @property
    def running_kernel(self) -> Placement | None:
        """Where the kernel runs once it has started; None while none runs or it starts."""
        return self._placement if self._kernel_ready else None

    @property
    def busy(self) -> bool:
        return self._runner is not None or self._placement is not None

    @property
    def changing(self) -> bool:
        """A restart, stop, interrupt or runtime change is under way (it may have let go of
        the kernel already, and a kernel adopted now would be shut by it or go unseen)."""
        return self._holds > 0

    # --- requests from people ----------------------------------------------------------

    async def execute(
        self, cell_ids: list[str], username: str, user_id: int, seen: dict[int, int] | None = None
    ) -> ExecuteAccepted:
        """Queue cells; with `seen` (the requester's state vector), first wait until the
        document holds all of it, so the code that runs is the code they see."""
        room = await self._cells.room()
        if seen:
            await self._wait_for(room, seen)
        found = cells_by_id(cells_of(room.doc), set(cell_ids))
        kinds = {cell_id: cell.get("cell_type") for cell_id, cell in found.items()}
        unknown = [cell_id for cell_id in cell_ids if cell_id not in kinds]
        if unknown:
            await self._release_room_if_unused()
            raise unknown_cells(unknown)
        batch = uuid.uuid4().hex
        queued = [cell_id for cell_id in dict.fromkeys(cell_ids) if kinds[cell_id] == "code"]
        skipped = [cell_id for cell_id in cell_ids if kinds[cell_id] != "code"]
        loop = asyncio.get_running_loop()
        for cell_id in queued:
            writer = outputs.CellWriter(self._settings.max_output_bytes_per_cell)
            self._queue.append(
                Execution(cell_id, batch, username, user_id, writer, loop.create_future())
            )
        if queued and self._lifecycle.state is RuntimeState.IDLE:
            # Published below with the queue: never "idle" with cells waiting.
            self._lifecycle.move(RuntimeState.BUSY, has_work=True)
        marked = self._cells.start_set_states(room, queued, "queued")
        self._start_runner()
        await marked
        self.publish_status()
        return ExecuteAccepted(queued=queued, skipped=skipped)

    async def _wait_for(self, room: Room, seen: dict[int, int]) -> None:
        try:
            async with asyncio.timeout(self._settings.execute_sync_timeout_seconds):
                await room.holds(seen)
        except TimeoutError:
            await self._release_room_if_unused()
            raise Conflict(
                "your latest edits have not reached the server yet; run again once "
                "you are connected"
            ) from None

    async def interrupt(self) -> None:
        self._refuse_while_away()
        placement = self._placement
        if self._kernel_ready:
            if self._current is not None and placement is not None:
                placement.worker.send(m.Interrupt(kernel_id=placement.kernel_id))
            elif self._queue:
                # Between two cells of a batch (the last one's end being stored): the
                # rest of it does not run, as when a cell is interrupted; the kernel stays.
                await self._drop_batch(self._queue[0].batch)
        elif self._runner is not None or self._queue or self._holds:
            # Still waiting for a worker or a kernel (or a restart is getting one):
            # interrupting gives up on the queue, and on runs asked for meanwhile.
            with self._hold():
                self._start_wanted = False
                await self._stop_runner("interrupted before it ran")
                await self._stop_kernel()
                await self._fail_queue(None)
                self._set_state(RuntimeState.STOPPED, "interrupted while starting")

    async def restart(self) -> None:
        """Clear the queue and start a fresh kernel (on a worker matching the runtime).

        No runner starts while it stops the old kernel: one started by a Run at that moment
        found the old kernel still up, ran on it and waited for ever on a kernel shut under
        it. Such cells are dropped with the old queue or, once that is cleared, wait for the
        new kernel (as Restart and run all's do, asked for after the restart). Everyone
        sees "starting" from the moment it is asked for."""
        with self._hold():
            self._start_wanted = True  # unless a stop or an interrupt comes after it
            self._cancel_away()  # a worker coming back now brings a kernel being shut
            self._set_state(RuntimeState.STARTING, "restarting")
            await self._stop_runner("the kernel was restarted")
            await self._stop_kernel()

    async def change_runtime(self, runtime: RuntimeType) -> None:
        """Move to another runtime type: a kernel (or one starting, or a wait for a worker)
        goes, and what was queued runs once on the new type. Restarting dropped the queue,
        so switching back while a run waited for a GPU lost that run without a word."""
        self.runtime = runtime
        if not self.busy:
            self.publish_status()
            return
        with self._hold():
            self._start_wanted = True
            self._cancel_away()
            queued, self._queue = list(self._queue), deque()
            self._set_state(RuntimeState.STARTING, f"switching to {runtime.name}")
            await self._stop_runner("the runtime type was changed while it ran")
            await self._stop_kernel()
            self._queue.extendleft(reversed(queued))

    def answer_input(self, username: str, value: str) -> None:
        current, placement = self._current, self._placement
        if current is None or current.prompt is None or placement is None:
            raise Conflict("no cell is waiting for input")
        if current.username != username:
            raise PermissionDenied("only the person who ran this cell can answer its prompt")
        self._refuse_while_away()
        current.prompt = None
        placement.worker.send(m.InputReply(kernel_id=placement.kernel_id, value=value))
        self._ctx.bus.publish(InputAnswered(notebook_id=self.notebook_id, cell_id=current.cell_id))
        self.publish_status()

    async def write_pending(self) -> None:
        """Store the outputs received so far (the server is stopping; the kernel is not)."""
        await self._outputs.flush_now()

    async def stop(self, reason: str, cell_error: str) -> None:
        """Shut the kernel down (a limit, the notebook deleted, the server stopping); runs
        asked for while it stops are dropped with the rest."""
        with self._hold():
            self._start_wanted = False
            self._cancel_away()
            await self._stop_runner(cell_error)
            await self._stop_kernel()
            await self._fail_queue(None)
            self._set_state(RuntimeState.STOPPED, reason)
            await self._release_room_if_unused()

    # --- from the worker ---------------------------------------------------------------

    def on_numbered(self, seq: int) -> None:
        """A numbered message arrived (handled next): acknowledged once it is stored."""
        self._acks.receive(seq)

    def acknowledge(self) -> None:
        """A numbered message was handled with nothing to store (a widget's)."""
        self._ack()

    def _number_anew(self) -> None:
        """A kernel new to this server numbers its messages from 1."""
        self._acks.renumber()
        self._outputs.forget_numbers()

    def _ack(self) -> None:
        """Tell the worker what is stored: everything received, unless outputs still wait
        to be written or a cell's end to be recorded (then only what came before)."""
        placement = self._placement
        if placement is None:
            return
        upto = self._acks.next(self._outputs.first_unstored)
        if upto is not None:
            placement.worker.send(m.Ack(kernel_id=placement.kernel_id, seq=upto))

    def on_kernel_started(self) -> None:
        if self._kernel_up is not None and not self._kernel_up.done():
            self._kernel_up.set_result("")
        self._ack()

    def on_kernel_progress(self, detail: str) -> None:
        """The worker is still preparing the kernel (building its environment, say): the
        start timeout counts from the latest news, and everyone sees what it waits for."""
        self._last_progress = time.monotonic()
        if self._lifecycle.state is RuntimeState.STARTING:
            self._set_state(RuntimeState.STARTING, detail)

    def on_kernel_usage(self, usage: m.KernelUsage) -> None:
        self._usage = RuntimeUsage(
            memory_bytes=usage.memory_bytes,
            disk_bytes=usage.disk_bytes,
            gpu_memory_bytes=usage.gpu_memory_bytes,
            limits=usage.limits,
        )
        self.publish_status()

    def on_kernel_lost(self, reason: str) -> None:
        """The kernel or its worker is gone (died, killed, disconnected, failed to start)."""
        if self._kernel_up is not None and not self._kernel_up.done():
            self._kernel_up.set_result(reason)
        self._placement = None  # the registry already let go of it
        self._limits.cancel_all()
        self._cancel_away()
        current = self._current
        if current is not None and not current.done.done():
            current.done.set_result(Outcome("lost", reason=reason))
        elif self._runner is None:
            self._set_state(RuntimeState.DISCONNECTED, reason)
            self._spawn(self._lost_while_idle())

    async def _lost_while_idle(self) -> None:
        # Runs asked for while the worker was away go as a lost kernel's queue does.
        await self._fail_queue(None)
        await self._release_room_if_unused()

    def on_output(self, execution_id: str, msg_type: str, content: dict[str, Any]) -> None:
        current = self._current
        if current is None or current.id != execution_id:
            self._ack()
            return
        # The message's number is the latest received (see on_numbered).
        self._outputs.add((current, msg_type, content), self._acks.received)

    def on_input_request(self, execution_id: str, prompt: str, password: bool) -> None:
        current = self._current
        if current is None or current.id != execution_id:
            return
        current.prompt = {"prompt": prompt, "password": password}
        self._ack()  # a worker coming back says again that the cell waits for input
        self._ctx.bus.publish(
            InputRequested(
                notebook_id=self.notebook_id,
                cell_id=current.cell_id,
                username=current.username,
                prompt=prompt,
                password=password,
            )
        )
        self.publish_status()

    def on_execute_done(self, message: m.ExecuteDone) -> None:
        current = self._current
        if current is not None and current.id == message.execution_id and not current.done.done():
            if message.seq:
                self._acks.unwritten_done = message.seq
            current.done.set_result(Outcome(message.status, message.execution_count))
        else:
            self._ack()

    # --- a worker that went away and came back -------------------------------------------

    def on_worker_away(self, reason: str, grace: float, expire: Callable[[], None]) -> None:
        """The kernel's worker lost its connection; it keeps the kernel for `grace`
        seconds: wait as long for it (cells keep their place), then the runtime is lost."""
        self._cancel_away()
        self._away = asyncio.get_running_loop().call_later(grace, expire)
        self._set_state(
            RuntimeState.RECONNECTING, f"{reason}; waiting up to {grace:g} s for it to return"
        )

    def on_worker_back(self, placement: Placement) -> int:
        """The worker is back with the kernel (`placement` on its new connection): carry on
        where it stopped. Returns the number it should send again from."""
        self._cancel_away()
        self._placement = placement
        self._acks.forget_sent()
        self._set_state(settled(self._has_work))
        self._start_runner()  # runs asked for while it was away
        return self._acks.received

    def resumed(self) -> None:
        """The worker was told to resume: tell it what is stored already."""
        self._ack()

    async def hand_over(self, *, store: bool = True) -> int:
        """Another replica takes the kernel over (its worker reconnected there): store what
        came (unless this server may no longer write), stop waiting, and let go of
        everything without writing more; returns the number up to which the kernel's
        messages are stored (the new owner resumes after it)."""
        if store:
            await self._outputs.flush_now()
        else:
            self._outputs.drop()
        upto = self._acks.received
        for unstored in (self._outputs.first_unstored, self._acks.unwritten_done):
            if unstored is not None:
                upto = min(upto, unstored - 1)
        self._cancel_away()
        self._limits.cancel_all()
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        self._placement, self._current = None, None
        self._queue.clear()
        await self._cells.release()
        return upto

    def _cancel_away(self) -> None:
        if self._away is not None:
            self._away.cancel()
            self._away = None

    @property
    def reconnecting(self) -> bool:
        return self._away is not None

    def _refuse_while_away(self) -> None:
        # What is sent to the kernel now would go down the lost connection, unseen.
        if self.reconnecting:
            raise Conflict("the runtime is reconnecting to its worker; try again once it is back")

    async def adopt(self, placement: Placement, held: m.HeldKernel) -> None:
        """Take over a kernel this server did not start (it restarted while a worker kept
        the kernel running): it becomes this notebook's, and its running cell goes on."""
        loop = asyncio.get_running_loop()
        self._placement = placement
        self._kernel_up = loop.create_future()
        self._kernel_up.set_result("")
        self._number_anew()
        self._started_at = utcnow()
        self._last_sandbox = placement.worker.sandbox
        self._limits.arm_lifetime()
        running = held.execution
        if running is None or not running.cell_id:
            self._arm_idle_timers()
            self._set_state(settled(self._has_work), "taken back after a reconnect")
            self._start_runner()  # runs asked for while nobody held the kernel
            return
        execution = Execution(
            running.cell_id,
            uuid.uuid4().hex,
            running.run_by or "someone",
            running.run_by_id,
            outputs.CellWriter(self._settings.max_output_bytes_per_cell),
            loop.create_future(),
            id=running.execution_id,
            started=time.monotonic(),
            started_at=utcnow(),
        )
        if running.waiting_input:
            execution.prompt = {"prompt": running.prompt, "password": running.password}
        self._current = execution
        with self._hold():  # a Run meanwhile queues behind the adopted cell
            await self._cells.resume_run(execution)
            if self._queue:  # un-marked by the resume, which knows only the adopted cell
                await self._cells.set_states([e.cell_id for e in self._queue], "queued")
            self._set_state(RuntimeState.BUSY)
            self._runner = asyncio.create_task(
                self._as_runner(functools.partial(self._run_adopted, execution))
            )

    async def _run_adopted(self, execution: Execution) -> None:
        if await self._complete(execution):
            await self._run_queue()

    # --- the runner ----------------------------------------------------------------------

    @property
    def _kernel_ready(self) -> bool:
        return (
            self._kernel_up is not None and self._kernel_up.done() and self._placement is not None
        )

    def _start_runner(self) -> None:
        """Start the runner for what is queued (and for a kernel alone after a restart or
        a runtime change), unless one runs, a restart, stop or interrupt holds it back, or
        the kernel's worker is away (it starts when the worker is back)."""
        wanted = self._start_wanted or bool(self._queue)
        if self._runner is None and not self._holds and not self.reconnecting and wanted:
            run = functools.partial(self._run, self._start_wanted)
            self._runner = asyncio.create_task(self._as_runner(run))
            self._start_wanted = False

    @contextlib.contextmanager
    def _hold(self) -> Iterator[None]:
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            self._start_runner()

    async def _as_runner(self, work: Callable[[], Awaitable[None]]) -> None:
        """The runner's task. One stopped from outside was let go of already; one that
        ends by itself (done, its kernel lost or not started) leaves no run behind: runs
        asked for while it wound down start a fresh one. One that failed (this server may
        no longer write, say) starts none: it would fail again, a cell a time."""
        failed = True
        try:
            await work()  # made here: a task cancelled before it began leaves no coroutine
            failed = False
        finally:
            if self._runner is asyncio.current_task():
                self._runner = None
                if not failed:
                    self._start_runner()

    async def _run(self, start_only: bool = False) -> None:
        if self._kernel_ready:
            await self._run_queue()  # idle again when nothing is left to run
        elif (start_only or self._queue) and await self._start_kernel():
            await self._run_queue()

    async def _run_queue(self) -> None:
        while self._queue:
            execution = self._queue.popleft()
            if not await self._run_one(execution):
                return
        self._arm_idle_timers()
        self._set_state(RuntimeState.IDLE)

    async def _start_kernel(self) -> bool:
        # While no worker has room, the registry's line marks us waiting (mark_waiting).
        placement = await self._ctx.registry.place(self.runtime, self.notebook_id)
        self._placement = placement
        self._kernel_up = asyncio.get_running_loop().create_future()
        self._number_anew()
        self._set_state(RuntimeState.STARTING)
        self._usage = None
        self._last_sandbox = placement.worker.sandbox
        name = self.runtime.environment_name
        placement.worker.send(
            m.StartKernel(
                kernel_id=placement.kernel_id,
                gpus=placement.gpus,
                workspace=self.notebook_id,
                environment=m.Environment(
                    name=name, packages=self._settings.environments.get(name, [])
                ),
                limits=self.runtime.limits(),
            )
        )
        failure = await self._wait_for_kernel(self._kernel_up)
        if failure:
            await self._fail_queue(f"The runtime could not start: {failure}")
            await self._stop_kernel()
            self._set_state(RuntimeState.DISCONNECTED, failure)
            await self._release_room_if_unused()
            return False
        self._started_at = utcnow()
        self._limits.arm_lifetime()
        return True

    async def _wait_for_kernel(self, kernel_up: asyncio.Future[str]) -> str:
        """ "" once the kernel started, else why not; gives up after the start timeout
        without any progress from the worker."""
        timeout = self._settings.kernel_start_timeout_seconds
        self._last_progress = time.monotonic()
        while True:
            left = self._last_progress + timeout - time.monotonic()
            if left <= 0:
                return "the kernel did not start in time"
            try:
                return await asyncio.wait_for(asyncio.shield(kernel_up), left)
            except TimeoutError:
                continue

    async def _run_one(self, execution: Execution) -> bool:
        """Run one cell; False when the kernel was lost on the way."""
        placement = self._placement
        assert placement is not None
        self._limits.cancel_idle()
        self._current = execution
        execution.started = time.monotonic()
        execution.started_at = utcnow()
        # The code goes out while "running" is being stored: the outputs' edits queue after
        # it in the log, so order holds and the kernel does not wait for the disk.
        code, begun = await self._cells.begin_run(execution)
        if code is not None:
            placement.worker.send(
                m.Execute(
                    kernel_id=placement.kernel_id,
                    execution_id=execution.id,
                    code=code,
                    cell_id=execution.cell_id,
                    run_by=execution.username,
                    run_by_id=execution.user_id,
                )
            )
        await begun
        if code is None:  # the cell was deleted while it waited
            self._current = None
            return True
        self._set_state(RuntimeState.BUSY)
        return await self._complete(execution)

    async def _complete(self, execution: Execution) -> bool:
        """Wait for the running cell's end and write it; False when the kernel was lost."""
        outcome = await execution.done
        await self._outputs.flush_now()
        self._current = None
        if outcome.status == "lost":
            await self._finish(execution, outcome, error=("RuntimeLost", outcome.reason))
            await self._fail_queue(None)
            self._set_state(RuntimeState.DISCONNECTED, outcome.reason)
            await self._release_room_if_unused()
            return False
        await self._finish(execution, outcome)
        self._acks.unwritten_done = None
        self._ack()
        if outcome.status != "ok":
            # As Jupyter does on an error: the rest of what was run together does not run.
            await self._drop_batch(execution.batch)
        return True

    async def _drop_batch(self, batch: str) -> None:
        """The queued cells of one Run go back to idle."""
        dropped = [e for e in self._queue if e.batch == batch]
        self._queue = deque(e for e in self._queue if e.batch != batch)
        if dropped:
            await self._cells.set_states([e.cell_id for e in dropped], "idle")
            self.publish_status()

    async def _finish(
        self, execution: Execution, outcome: Outcome, error: tuple[str, str] | None = None
    ) -> None:
        again = any(queued.cell_id == execution.cell_id for queued in self._queue)
        await self._cells.finish(
            execution, outcome, self.runtime.name, self._placement, error, queued_again=again
        )

    async def _fail_queue(self, message: str | None) -> None:
        """Queued cells go back to idle; the first one says why when there is a reason."""
        queued, self._queue = list(self._queue), deque()
        if not queued:
            return
        await self._cells.fail(queued, message)
        self.publish_status()

    async def _stop_runner(self, cell_error: str) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        current, self._current = self._current, None
        if current is not None:
            await self._outputs.flush_now()
            if current.started_at is None:
                current.started_at = utcnow()
            await self._finish(current, Outcome("aborted"), error=("Interrupted", cell_error))
        await self._fail_queue(None)

    async def _stop_kernel(self) -> None:
        placement, self._placement = self._placement, None
        self._kernel_up = None
        self._limits.cancel_all()
        self._cancel_away()
        self._started_at = None
        if placement is not None:
            placement.worker.send(m.ShutdownKernel(kernel_id=placement.kernel_id))
            self._ctx.registry.release(placement)

    async def _release_room_if_unused(self) -> None:
        if self.busy or self._queue or not self._cells.held:
            return
        await self._outputs.flush_now()
        await self._cells.release()

    # --- limits (timers in limits.py) ------------------------------------------------------

    def _arm_idle_timers(self) -> None:
        self._limits.cancel_idle()
        if self._placement is not None:
            self._limits.arm_idle()

    def _warn(self, kind: LimitKind, deadline: datetime, seconds_left: int) -> None:
        self._ctx.bus.publish(
            RuntimeLimitWarning(
                notebook_id=self.notebook_id,
                reason=kind,
                seconds_left=seconds_left,
                deadline=deadline,
            )
        )

    def _limit_reached(self, kind: LimitKind, reason: str) -> None:
        log.info("notebook %s: runtime %s", self.notebook_id, reason)
        self._spawn(self.stop(reason, f"The runtime was {reason}."))

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def unknown_cells(unknown: list[str]) -> NotFound:
    shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
    return NotFound(f"no cell with id {shown} in this notebook")
