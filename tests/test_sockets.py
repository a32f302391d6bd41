"""The outbound side every websocket shares (`server.sockets.Outbox`), with an in-memory
peer: order, the 1013 cut-off, closes that jump or follow the queue, merging, stopping.
The sockets that use it are tested through a real server in tests/collab, tests/events
and tests/gateway."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest

from server.errors import CloseCode
from server.sockets import Outbox, close_reason
from tests.support import eventually


class Peer:
    """What reached the other end; `hold` keeps the writer stuck in a write."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.hold = asyncio.Event()
        self.hold.set()
        self.writes = 0

    async def write(self, message: str) -> None:
        self.writes += 1
        await self.hold.wait()
        self.received.append(message)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_messages_go_out_in_order_then_the_close() -> None:
    peer = Peer()
    outbox: Outbox[str] = Outbox(peer.write, peer.close, 10)
    for i in range(5):
        outbox.send(str(i))
    task = outbox.start()
    assert outbox.start() is task  # one writer
    await eventually(lambda: len(peer.received) == 5)
    peer.hold.clear()
    outbox.send("5")
    await eventually(lambda: peer.writes == 6)
    outbox.send("6")  # stop's close jumps the queue: dropped
    peer.hold.set()
    await outbox.stop(1.0)
    assert peer.received == ["0", "1", "2", "3", "4", "5"]
    assert peer.closed == (CloseCode.NORMAL, "")
    assert task.done()


async def test_a_peer_that_lags_past_the_limit_is_cut_loose_with_1013() -> None:
    peer = Peer()
    peer.hold.clear()
    outbox: Outbox[str] = Outbox(peer.write, peer.close, 3)
    outbox.start()
    outbox.send("stuck")  # the writer takes it and waits in the write
    await eventually(lambda: peer.writes == 1)
    for i in range(3):
        outbox.send(str(i))
    assert not outbox.closing
    outbox.send("one too many")
    assert outbox.closing and len(outbox) == 0
    outbox.send("after the cut")  # dropped
    peer.hold.set()
    await eventually(lambda: peer.closed is not None)
    assert peer.closed is not None and peer.closed[0] == CloseCode.TOO_FAR_BEHIND
    assert peer.received == ["stuck"]


async def test_no_limit_keeps_everything() -> None:
    peer = Peer()
    outbox: Outbox[str] = Outbox(peer.write, peer.close, None)
    for i in range(10_000):
        outbox.send(str(i))
    assert not outbox.closing
    outbox.start()
    await eventually(lambda: len(peer.received) == 10_000)
    await outbox.stop(1.0)


async def test_a_close_jumps_the_queue_unless_it_flushes() -> None:
    jumped, flushed = Peer(), Peer()
    first: Outbox[str] = Outbox(jumped.write, jumped.close, 10)
    second: Outbox[str] = Outbox(flushed.write, flushed.close, 10)
    for outbox in (first, second):
        outbox.send("a")
        outbox.send("b")
    first.close(CloseCode.ACCESS_REMOVED, "gone")
    second.close(CloseCode.DELETED, "deleted", flush=True)
    second.close(CloseCode.NORMAL, "")  # the first close wins
    for outbox in (first, second):
        await outbox.start()
    assert jumped.received == [] and jumped.closed == (CloseCode.ACCESS_REMOVED, "gone")
    assert flushed.received == ["a", "b"] and flushed.closed == (CloseCode.DELETED, "deleted")


async def test_take_may_fold_waiting_messages_into_one() -> None:
    def take_all(waiting: deque[str]) -> str:
        folded = "".join(waiting)
        waiting.clear()
        return folded

    peer = Peer()
    outbox: Outbox[str] = Outbox(peer.write, peer.close, 10, take=take_all)
    for letter in "abc":
        outbox.send(letter)
    outbox.start()
    await eventually(lambda: peer.received == ["abc"])
    await outbox.stop(1.0)


async def test_stop_ends_a_stuck_writer_after_the_grace() -> None:
    peer = Peer()
    peer.hold.clear()
    outbox: Outbox[str] = Outbox(peer.write, peer.close, 10)
    task = outbox.start()
    outbox.send("never written")
    await eventually(lambda: peer.writes == 1)
    await outbox.stop(0.05)
    assert task.cancelled() and peer.closed is None


async def test_stop_hands_back_what_the_writer_raised() -> None:
    async def broken(message: str) -> None:
        raise ConnectionResetError("peer gone")

    peer = Peer()
    outbox: Outbox[str] = Outbox(broken, peer.close, 10)
    task = outbox.start()
    outbox.send("x")
    await eventually(task.done)
    with pytest.raises(ConnectionResetError):
        await outbox.stop(1.0)
    await Outbox(peer.write, peer.close, 1).stop(1.0)  # never started: nothing to do


def test_close_reasons_fit_a_close_frame() -> None:
    assert close_reason("é" * 100).encode() == ("é" * 61).encode()
    assert close_reason("short") == "short"
