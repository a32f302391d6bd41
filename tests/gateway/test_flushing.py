"""The output flusher on its own: a fake clock, a list for a document, no server."""

from __future__ import annotations

import asyncio

import pytest

from server.gateway.flushing import Acknowledgements, OutputFlusher


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0  # time.monotonic() counts from boot: long past the last flush

    def __call__(self) -> float:
        return self.now


class Store:
    """Where batches go; `gate` holds a write until the test opens it."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.acks: list[int | None] = []
        self.gate: asyncio.Event | None = None
        self.fail = False
        self.flusher: OutputFlusher[str] | None = None

    async def write(self, batch: list[str]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise OSError("disk full")
        self.batches.append(batch)

    def stored(self) -> None:
        assert self.flusher is not None
        self.acks.append(self.flusher.first_unstored)


def make(interval: float = 0.05) -> tuple[OutputFlusher[str], Store, Clock]:
    store, clock = Store(), Clock()
    flusher = OutputFlusher(interval, store.write, store.stored, label="nb", clock=clock)
    store.flusher = flusher
    return flusher, store, clock


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_the_first_output_after_a_quiet_spell_goes_at_once() -> None:
    flusher, store, _ = make(interval=3600)
    flusher.add("a", 1)
    await settle()
    assert store.batches == [["a"]]
    assert store.acks == [None]  # told once stored, with nothing left unstored


async def test_outputs_within_the_interval_wait_and_go_together() -> None:
    flusher, store, _ = make(interval=3600)
    flusher.add("a", 1)
    await settle()
    flusher.add("b", 2)
    flusher.add("c", 3)
    await settle()
    assert store.batches == [["a"]]  # the interval is not over
    assert flusher.first_unstored == 2
    await flusher.flush_now()  # hurried: no hour's wait
    assert store.batches == [["a"], ["b", "c"]]
    assert flusher.first_unstored is None


async def test_once_the_interval_is_over_the_next_batch_goes_without_hurry() -> None:
    flusher, store, clock = make(interval=0.05)
    flusher.add("a", 1)
    await settle()
    clock.now += 0.06
    flusher.add("b", 2)
    await settle()
    assert store.batches == [["a"], ["b"]]


async def test_what_is_being_written_is_not_stored_yet() -> None:
    flusher, store, _ = make(interval=0)
    store.gate = asyncio.Event()
    flusher.add("a", 5)
    await settle()
    assert store.batches == [] and flusher.first_unstored == 5  # being written
    flusher.add("b", 6)
    assert flusher.first_unstored == 5  # still the lowest
    store.gate.set()
    await flusher.flush_now()
    assert store.batches == [["a"], ["b"]]
    # After the first write only "b" (6) was still unstored; after the second, nothing.
    assert store.acks == [6, None]


async def test_a_failed_write_is_never_reported_stored() -> None:
    flusher, store, _ = make(interval=0)
    store.fail = True
    flusher.add("a", 7)
    await flusher.flush_now()
    await settle()
    assert store.acks == []
    assert flusher.first_unstored == 7  # nothing from 7 on may be acknowledged
    store.fail = False
    flusher.add("b", 8)
    await flusher.flush_now()
    await settle()
    assert store.batches == [["b"]]
    assert store.acks == [None]


async def test_unnumbered_outputs_and_a_kernel_numbering_anew() -> None:
    flusher, store, _ = make(interval=3600)
    flusher.add("a", 1)
    await settle()
    flusher.add("b")  # before any numbered message
    assert flusher.first_unstored is None
    flusher.add("c", 9)  # not the first waiting: "b" came first and had no number
    assert flusher.first_unstored is None
    flusher.forget_numbers()
    await flusher.flush_now()
    assert store.batches == [["a"], ["b", "c"]]


async def test_flush_now_with_nothing_waiting_returns_at_once() -> None:
    flusher, store, _ = make()
    await asyncio.wait_for(flusher.flush_now(), 1)
    assert store.batches == []


@pytest.mark.parametrize("outputs", [1, 7, 100])
async def test_every_output_is_written_once_in_order(outputs: int) -> None:
    flusher, store, clock = make(interval=0.05)
    for n in range(outputs):
        flusher.add(str(n), n + 1)
        if n % 3 == 0:
            clock.now += 0.02
            await asyncio.sleep(0)
    await flusher.flush_now()
    assert [item for batch in store.batches for item in batch] == [str(n) for n in range(outputs)]
    assert flusher.first_unstored is None


def test_an_acknowledgement_stops_before_the_first_unstored_message() -> None:
    acks = Acknowledgements()
    for seq in (1, 2, 3, 4):
        acks.receive(seq)
    assert acks.next(first_unstored=3) == 2  # outputs 3.. still wait to be written
    assert acks.next(first_unstored=3) is None  # nothing new to say
    acks.unwritten_done = 4  # a cell's end not recorded yet
    assert acks.next(first_unstored=None) == 3
    acks.unwritten_done = None
    assert acks.next(first_unstored=None) == 4
    acks.receive(2)  # numbers never go back
    assert acks.received == 4


def test_acknowledgements_after_a_reconnect_and_with_a_new_kernel() -> None:
    acks = Acknowledgements()
    acks.receive(5)
    assert acks.next(None) == 5
    acks.forget_sent()  # sent while the worker was away: lost
    assert acks.next(None) == 5  # said again, all of it
    acks.renumber()  # a kernel new to this server counts from 1
    acks.receive(1)
    assert acks.next(None) == 1
