"""The workers connected to this server, what each has free, and who waits for capacity.

A kernel is placed on the least busy worker that matches its runtime type and has a free
kernel slot and enough free GPUs that match (CPU kernels avoid GPU machines when they can);
those GPUs are its alone until it stops.
Requests that find no room wait in one FIFO line and are served as capacity appears.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kernels import messages as m
from server.gateway.models import WorkerPublic
from server.timeutil import utcnow
from server.vocabulary import RuntimeType

log = logging.getLogger(__name__)

# How long a worker may still push a notebook's files after its kernel there was stopped.
FINAL_PUSH_SECONDS = 120.0


@dataclass
class Placement:
    worker: WorkerLink
    kernel_id: str
    gpus: list[int]
    owner: str  # the notebook the kernel serves

    @property
    def gpu_names(self) -> list[str]:
        names = {gpu.index: gpu.name for gpu in self.worker.resources.gpus}
        return [names.get(index, str(index)) for index in self.gpus]


@dataclass(eq=False)
class WorkerLink:
    """One connected worker, as the server sees it."""

    name: str
    resources: m.Resources
    max_kernels: int
    sandbox: m.Sandbox
    token_id: int | None
    send_text: Callable[[str], None]
    close: Callable[[int, str], None]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    kernels: dict[str, Placement] = field(default_factory=dict)
    connected_at: datetime = field(default_factory=utcnow)
    last_heartbeat: datetime = field(default_factory=utcnow)
    last_seen: float = field(default_factory=time.monotonic)
    # Notebooks whose kernels this worker ran lately, and until when it may still push
    # their files (the last changes of a kernel that was just stopped).
    released: dict[str, float] = field(default_factory=dict)

    def send(self, message: m.FromServer) -> None:
        self.send_text(m.encode(message))

    def hosts(self, notebook_id: str) -> bool:
        """Whether this worker may read and write the notebook's files now."""
        if any(p.owner == notebook_id for p in self.kernels.values()):
            return True
        return self.released.get(notebook_id, 0.0) > time.monotonic()

    @property
    def gpus_in_use(self) -> set[int]:
        return {index for placement in self.kernels.values() for index in placement.gpus}

    def free_gpus_for(self, runtime: RuntimeType) -> list[int] | None:
        """GPU indices to give a new kernel of `runtime`, or None when it does not fit now."""
        if len(self.kernels) >= self.max_kernels:
            return None
        if runtime.gpus == 0:
            return []
        in_use = self.gpus_in_use
        free = [
            g.index for g in self.resources.gpus if g.index not in in_use and runtime.accepts(g)
        ]
        return free[: runtime.gpus] if len(free) >= runtime.gpus else None

    def could_ever_run(self, runtime: RuntimeType) -> bool:
        return sum(1 for g in self.resources.gpus if runtime.accepts(g)) >= runtime.gpus

    def public(self) -> WorkerPublic:
        return WorkerPublic(
            id=self.id,
            name=self.name,
            cpus=self.resources.cpus,
            memory_mb=self.resources.memory_mb,
            gpus=self.resources.gpus,
            gpus_in_use=sorted(self.gpus_in_use),
            max_kernels=self.max_kernels,
            sandbox=self.sandbox,
            kernels=[
                {"kernel_id": p.kernel_id, "notebook_id": p.owner, "gpus": p.gpus}
                for p in self.kernels.values()
            ],
            connected_at=self.connected_at,
            last_heartbeat=self.last_heartbeat,
        )


@dataclass(eq=False)
class _Waiter:
    runtime: RuntimeType
    owner: str
    future: asyncio.Future[Placement]


class WorkerRegistry:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self.workers: dict[str, WorkerLink] = {}
        self._waiters: list[_Waiter] = []
        self._on_change = on_change  # tells waiting notebooks their place in line moved

    def add(self, worker: WorkerLink) -> None:
        self.workers[worker.id] = worker
        log.info(
            "worker %s (%s) joined: %d CPUs, %d GPUs",
            worker.id,
            worker.name,
            worker.resources.cpus,
            len(worker.resources.gpus),
        )
        self._serve_waiters()

    def remove(self, worker: WorkerLink) -> list[Placement]:
        """Forget a worker; returns the kernels that were on it (now lost)."""
        if self.workers.pop(worker.id, None) is None:
            return []
        log.info("worker %s (%s) left", worker.id, worker.name)
        lost = list(worker.kernels.values())
        worker.kernels.clear()
        return lost

    def try_place(self, runtime: RuntimeType, owner: str) -> Placement | None:
        candidates = []
        for worker in self.workers.values():
            gpus = worker.free_gpus_for(runtime)
            if gpus is not None:
                # A CPU kernel goes to a machine without GPUs when it can, keeping GPU
                # nodes for the work that needs them; then to the least loaded.
                spares_gpus = runtime.gpus == 0 and bool(worker.resources.gpus)
                load = len(worker.kernels) / worker.max_kernels
                candidates.append(((spares_gpus, load), worker, gpus))
        if not candidates:
            return None
        _, worker, gpus = min(candidates, key=lambda c: c[0])
        placement = Placement(worker, uuid.uuid4().hex, gpus, owner)
        worker.kernels[placement.kernel_id] = placement
        return placement

    async def place(self, runtime: RuntimeType, owner: str) -> Placement:
        """A kernel slot for `runtime`, now or when one frees up (first come, first served)."""
        waiter = _Waiter(runtime, owner, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        self._serve_waiters()
        if not waiter.future.done():
            self._on_change()
        try:
            return await waiter.future
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                self._on_change()

    def position(self, owner: str) -> int | None:
        for number, waiter in enumerate(self._waiters, start=1):
            if waiter.owner == owner:
                return number
        return None

    def anyone_offers(self, runtime: RuntimeType) -> bool:
        return any(worker.could_ever_run(runtime) for worker in self.workers.values())

    def offered(self, runtimes: list[RuntimeType]) -> list[str]:
        """The names of `runtimes` some connected worker could run."""
        return [runtime.name for runtime in runtimes if self.anyone_offers(runtime)]

    def release(self, placement: Placement) -> None:
        worker = placement.worker
        worker.kernels.pop(placement.kernel_id, None)
        worker.released[placement.owner] = time.monotonic() + FINAL_PUSH_SECONDS
        self._serve_waiters()

    def _serve_waiters(self) -> None:
        served = False
        for waiter in list(self._waiters):
            if waiter.future.done():
                self._waiters.remove(waiter)
                continue
            placement = self.try_place(waiter.runtime, waiter.owner)
            if placement is not None:
                self._waiters.remove(waiter)
                waiter.future.set_result(placement)
                served = True
        if served:
            self._on_change()

    def find_kernel(self, kernel_id: str) -> Placement | None:
        for worker in self.workers.values():
            placement = worker.kernels.get(kernel_id)
            if placement is not None:
                return placement
        return None
