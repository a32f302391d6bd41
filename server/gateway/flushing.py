"""A runtime's outputs on their way into the document: batched, written at most every
`interval` seconds (~50 ms), and which numbered worker messages are not stored yet.

A kernel printing in a loop would otherwise cost one document edit (one update stored and
broadcast) per line. The first output after a quiet spell goes at once; what follows within
the interval waits and goes together. Nothing here knows what an output is: `write` stores a
batch, `stored` is told when one is (the runtime then acknowledges it to the worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from server.errors import FencedOut

log = logging.getLogger(__name__)

T = TypeVar("T")


class OutputFlusher(Generic[T]):
    def __init__(
        self,
        interval: float,
        write: Callable[[list[T]], Awaitable[None]],
        stored: Callable[[], None],
        *,
        label: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval = interval
        self._write = write
        self._stored = stored
        self._label = label
        self._clock = clock
        self._pending: list[T] = []
        self._task: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self._last_flush = 0.0
        # The first message number among outputs waiting to be written, and among those
        # being written now: nothing from there on may be acknowledged yet.
        self._pending_from: int | None = None
        self._writing_from: int | None = None

    @property
    def first_unstored(self) -> int | None:
        """The lowest message number received but not stored yet; None when all are."""
        unstored = [n for n in (self._pending_from, self._writing_from) if n is not None]
        return min(unstored, default=None)

    def add(self, item: T, seq: int = 0) -> None:
        """Queue `item` for the next write; `seq` is the number of the message it came in
        (0 when unnumbered)."""
        if not self._pending and seq:
            self._pending_from = seq
        self._pending.append(item)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop())

    def forget_numbers(self) -> None:
        """A kernel new to this server numbers its messages from 1 again."""
        self._pending_from = self._writing_from = None

    def drop(self) -> None:
        """Forget what waits, unwritten (this server may no longer write it)."""
        if self._task is not None:
            self._task.cancel()
        self._pending = []

    async def flush_now(self) -> None:
        """Write what waits without waiting out the interval; returns once it is stored
        (or its write failed)."""
        task = self._task
        if task is None or task.done():
            return
        self._hurry.set()
        try:
            await asyncio.shield(task)
        finally:
            self._hurry.clear()

    async def _loop(self) -> None:
        while self._pending:
            wait = self._last_flush + self._interval - self._clock()
            if wait > 0 and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), wait)
            batch, self._pending = self._pending, []
            self._writing_from, self._pending_from = self._pending_from, None
            self._last_flush = self._clock()
            try:
                await self._write(batch)
            except FencedOut:
                # Another replica owns the runtime now; the runtime is being dropped.
                log.warning("outputs of %s were fenced out", self._label)
            except Exception:
                # `_writing_from` stays: nothing from there on is acknowledged.
                log.exception("writing outputs of %s failed", self._label)
            else:
                self._writing_from = None
                self._stored()


class Acknowledgements:
    """How far the worker's numbered messages (kernels/messages.py RELIABLE) are stored.

    The worker keeps what is not acknowledged and sends it again after a reconnect, so an
    acknowledgement says only what is stored: everything received, unless outputs still
    wait to be written or a cell's end to be recorded (then only what came before them).
    """

    def __init__(self) -> None:
        self.received = 0  # the highest number received
        self.acked = 0  # the highest acknowledged
        self.unwritten_done: int | None = None  # a cell's end received, not yet written

    def receive(self, seq: int) -> None:
        self.received = max(self.received, seq)

    def renumber(self) -> None:
        """A kernel new to this server numbers its messages from 1."""
        self.received = self.acked = 0
        self.unwritten_done = None

    def forget_sent(self) -> None:
        """Acknowledgements sent were lost (the worker was away): the next says all."""
        self.acked = 0

    def next(self, first_unstored: int | None) -> int | None:
        """The number to acknowledge now, given the first output not stored yet; None
        when that would say nothing new."""
        upto = self.received
        for unstored in (first_unstored, self.unwritten_done):
            if unstored is not None:
                upto = min(upto, unstored - 1)
        if upto > self.acked:
            self.acked = upto
            return upto
        return None
