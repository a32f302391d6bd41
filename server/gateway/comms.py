"""Widget comm routing between the kernels' workers and the notebooks' pages.

Up: a worker's `comm` is applied to the notebook's `WidgetStore` and published as a
`widget.comm` event (every page of the notebook gets it on its events socket).
Down: an editor's message to a widget (POST .../widgets/{comm_id}) is checked against the
store and sent to the worker as `comm_msg`; the request returns once the kernel is idle
after it (`comm_idle`), which is what paces the widget's next change, or after a timeout.
When the notebook's kernel changes or stops, its store is dropped (`widget.reset`). When
the kernel's runtime moves to another replica, its store and the events' numbering go with
it (`hand_over` there, `take` here), so pages go on applying events without a reload.
A kernel adopted without its store (this server restarted, or its owner was killed) is
asked for its widgets' whole states (`request_widgets`); each answer (`from_kernel_state`)
makes or refreshes a model and is published as a `comm_open` carrying the whole state,
which a page applies to a model it has or makes the model from.
Outputs of a request an Output widget captures go into it (`capture`), not into the cell.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from kernels import messages as m
from server.errors import InvalidInput, NotFound
from server.events.bus import EventBus
from server.events.types import WidgetComm, WidgetsReset
from server.gateway.registry import Placement
from server.gateway.widgets import (
    WidgetStore,
    capture,
    person_message_problem,
)

# How long a person's widget change waits for the kernel before the page may send the next
# one anyway (a kernel running a long cell handles comm messages only when it ends).
IDLE_WAIT_SECONDS = 10.0


class WidgetRelay:
    def __init__(self, bus: EventBus, max_models: int | None = None) -> None:
        self._bus = bus
        self.max_models = max_models  # of one kernel (None: the store's own cap)
        self._stores: dict[str, WidgetStore] = {}  # by notebook
        self._idle: dict[str, asyncio.Future[None]] = {}  # by kernel msg_id
        # Each notebook's widget events are numbered 1, 2, 3... across kernels: a page that
        # loaded the snapshot numbered N drops events up to N, and one that sees a gap (the
        # events socket dropped some under a flood) loads the snapshot again. With several
        # replicas the numbers go on across owners: handed over with the runtime (`take`),
        # or, when the runtime's previous owner could not hand it over, above any number it
        # could have used (`number_from_epoch`): pages see a gap and reload.
        self._seq: dict[str, int] = {}
        self._epochs: dict[str, int] = {}  # the runtime lease this replica last took

    def store(self, notebook_id: str, kernel_id: str | None) -> WidgetStore | None:
        """The notebook's store while `kernel_id` is the kernel it belongs to."""
        store = self._stores.get(notebook_id)
        return store if store is not None and store.kernel_id == kernel_id else None

    def snapshot(self, notebook_id: str, kernel_id: str | None) -> dict[str, object]:
        store = self.store(notebook_id, kernel_id)
        seq = self._seq.get(notebook_id, 0)
        return {"seq": seq, "models": store.snapshot() if store is not None else []}

    def _next(self, notebook_id: str) -> int:
        seq = self._seq[notebook_id] = self._seq.get(notebook_id, 0) + 1
        return seq

    def _store_of(self, notebook_id: str, kernel_id: str) -> WidgetStore:
        """The notebook's store for `kernel_id`, a new one when it had another kernel's."""
        store = self._stores.get(notebook_id)
        if store is None or store.kernel_id != kernel_id:
            if store is not None:
                self.reset(notebook_id)
            store = self._stores[notebook_id] = WidgetStore(kernel_id, self.max_models)
        return store

    def from_kernel_state(self, notebook_id: str, answer: m.WidgetState) -> None:
        """One widget's whole state, as the kernel answered `request_state`."""
        model = self._store_of(notebook_id, answer.kernel_id).describe(answer)
        if model is None:
            return
        public = model.public()
        self._bus.publish(
            WidgetComm(
                notebook_id=notebook_id,
                seq=self._next(notebook_id),
                msg_type="comm_open",
                comm_id=model.comm_id,
                data={"state": public["state"], "buffer_paths": public["buffer_paths"]},
                metadata=model.metadata,
                buffers=public["buffers"],
                parent_msg_id="",
            )
        )

    def from_kernel(self, notebook_id: str, comm: m.Comm) -> None:
        store = self._store_of(notebook_id, comm.kernel_id)
        if not store.apply(comm):
            return
        self._bus.publish(
            WidgetComm(
                notebook_id=notebook_id,
                seq=self._next(notebook_id),
                msg_type=comm.msg_type,
                comm_id=comm.comm_id,
                data=comm.data,
                metadata=comm.metadata,
                buffers=comm.buffers,
                # A person's own id back (see `send`), so their manager knows its echo.
                parent_msg_id=page_msg_id(comm.parent_msg_id),
            )
        )

    def capture(
        self,
        notebook_id: str,
        kernel_id: str,
        parent_msg_id: str,
        msg_type: str,
        content: dict[str, Any],
    ) -> bool:
        """Put an output into the Output widget capturing its request; False when none does."""
        store = self.store(notebook_id, kernel_id)
        model = store.capturing(parent_msg_id) if store is not None else None
        if store is None or model is None or not capture(model, msg_type, content):
            return False
        self._bus.publish(
            WidgetComm(
                notebook_id=notebook_id,
                seq=self._next(notebook_id),
                msg_type="comm_msg",
                comm_id=model.comm_id,
                data={"method": "update", "state": {"outputs": model.state["outputs"]}},
                metadata={},
                buffers=[],
                parent_msg_id="",
            )
        )
        return True

    def reset(self, notebook_id: str) -> None:
        if self._stores.pop(notebook_id, None) is not None:
            self._bus.publish(WidgetsReset(notebook_id=notebook_id, seq=self._next(notebook_id)))

    def hand_over(self, notebook_id: str, kernel_id: str) -> dict[str, object]:
        """The widgets of `kernel_id` and the events' number, for the replica its runtime
        moved to; the store is forgotten here without a reset (the widgets live on there)."""
        store = self.store(notebook_id, kernel_id)
        if store is not None:
            del self._stores[notebook_id]
        models = store.snapshot() if store is not None else []
        return {"seq": self._seq.get(notebook_id, 0), "models": models}

    def take(self, notebook_id: str, kernel_id: str, handed: dict[str, Any]) -> None:
        """Go on from another replica's `hand_over` of the kernel's widgets, numbering events
        from where it stopped (what the pages saw)."""
        seq, models = handed.get("seq"), handed.get("models")
        if isinstance(seq, int):
            self._seq[notebook_id] = seq
        if isinstance(models, list):
            self._stores[notebook_id] = WidgetStore.restore(kernel_id, models, self.max_models)

    def number_from_epoch(self, notebook_id: str, epoch: int) -> None:
        """This replica took the notebook's runtime lease under `epoch` (with several
        replicas). Unless it held the epoch just before (then nobody numbered since), its
        events are numbered above any number an owner under an older epoch used, 2**32
        apiece (a JavaScript number holds 2**53: two million owners)."""
        if self._epochs.get(notebook_id) != epoch - 1:
            self._seq[notebook_id] = max(self._seq.get(notebook_id, 0), epoch << 32)
        self._epochs[notebook_id] = epoch

    def forget(self, notebook_id: str) -> None:
        """The notebook is gone: nothing of it is kept."""
        self.reset(notebook_id)
        self._seq.pop(notebook_id, None)
        self._epochs.pop(notebook_id, None)

    def idle(self, message: m.CommIdle) -> None:
        future = self._idle.get(message.msg_id)
        if future is not None and not future.done():
            future.set_result(None)

    async def send(
        self,
        notebook_id: str,
        placement: Placement | None,
        comm_id: str,
        msg_id: str,
        data: dict[str, object],
        buffers: list[str],
    ) -> bool:
        """A person's message to a widget of the running kernel; True once the kernel is idle
        after it, False when it did not say so in time."""
        store = self.store(notebook_id, placement.kernel_id if placement else None)
        problem = person_message_problem(store, comm_id, data)
        if problem or placement is None:
            if store is None or comm_id not in store.models:
                raise NotFound(problem)
            raise InvalidInput(problem)
        # The kernel's msg_id is ours, made from the page's (a page cannot pose as another
        # message of the kernel); its echo_update carries it back as the parent.
        kernel_msg_id = f"widget-{uuid.uuid4().hex[:12]}-{msg_id}"
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle[kernel_msg_id] = future
        try:
            placement.worker.send(
                m.CommMsg(
                    kernel_id=placement.kernel_id,
                    msg_id=kernel_msg_id,
                    comm_id=comm_id,
                    data=data,
                    buffers=buffers,
                )
            )
            await asyncio.wait_for(future, IDLE_WAIT_SECONDS)
            return True
        except TimeoutError:
            return False
        finally:
            del self._idle[kernel_msg_id]


def page_msg_id(kernel_msg_id: str) -> str:
    """The page's msg_id inside the kernel msg_id `send` made; "" for any other message."""
    prefix, _, rest = kernel_msg_id.partition("-")
    nonce, _, msg_id = rest.partition("-")
    return msg_id if prefix == "widget" and nonce and msg_id else ""
