"""What a worker keeps of its kernels' messages until the server has stored them."""

from __future__ import annotations

from kernels import messages as m
from kernels.worker import MAX_HELD_MESSAGES, _Outbox


def output(text: str) -> m.Output:
    return m.Output(
        kernel_id="k", execution_id="e", msg_type="stream", content={"name": "stdout", "text": text}
    )


def test_messages_are_numbered_and_kept_until_acknowledged() -> None:
    outbox = _Outbox()
    numbered = [outbox.number(output(str(i))) for i in range(5)]
    assert [message.seq for message in numbered] == [1, 2, 3, 4, 5]
    assert not outbox.ack(3)
    assert [message.seq for message in outbox.held] == [4, 5]
    outbox.ack(10)
    assert outbox.held == []
    assert outbox.number(output("x")).seq == 6  # numbers never go back


def test_a_cell_end_is_reported_acknowledged_only_once_stored() -> None:
    outbox = _Outbox()
    outbox.number(output("a"))
    done = outbox.number(m.ExecuteDone(kernel_id="k", execution_id="e", status="ok"))
    outbox.ending = ("e", done.seq)
    assert not outbox.ack(done.seq - 1)
    assert outbox.ack(done.seq)


def test_past_the_cap_the_oldest_outputs_go_never_a_cell_end() -> None:
    outbox = _Outbox()
    outbox.number(m.ExecuteDone(kernel_id="k", execution_id="e0", status="ok"))
    for i in range(MAX_HELD_MESSAGES + 10):
        outbox.number(output(str(i)))
    assert len(outbox.held) == MAX_HELD_MESSAGES
    assert isinstance(outbox.held[0], m.ExecuteDone)
    assert outbox.held[-1].seq == MAX_HELD_MESSAGES + 11


def test_a_reconnecting_hello_lists_held_kernels_and_their_running_cell() -> None:
    hello = m.Hello(
        name="w",
        resources=m.Resources(cpus=1, memory_mb=1),
        max_kernels=1,
        kernels=[
            m.HeldKernel(
                kernel_id="k",
                workspace="nb1",
                execution=m.HeldExecution(execution_id="e", cell_id="c", run_by="ann"),
            )
        ],
    )
    parsed = m.parse_from_worker(m.encode(hello))
    assert isinstance(parsed, m.Hello)
    assert parsed.kernels[0].execution is not None
    assert parsed.kernels[0].execution.cell_id == "c"
    assert isinstance(
        m.parse_from_server('{"type": "resume", "kernel_id": "k", "after_seq": 3}'), m.Resume
    )
