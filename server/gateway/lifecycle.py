"""The states of a notebook's runtime and the moves between them, as a pure state machine.

No I/O, no asyncio, no document: `NotebookRuntime` moves it and publishes what it says. A
state's value is the `status` the API returns (`RuntimeStatus.status`), so the strings are
public and do not change.

    stopped ─run─> waiting ─a worker has room─> starting ─kernel up─> idle <─> busy
    idle / busy ─its worker dropped, the kernel kept─> reconnecting ─worker back─> idle / busy
    any state ─stop, interrupt─> stopped      any state ─kernel lost─> disconnected

An adopted kernel (one this server did not start) goes from stopped or disconnected straight
to idle or busy. Restart and a runtime change start over from any state (waiting or
starting). A kernel is idle, busy or reconnecting only once one ran: never straight from
the line for a worker.

A runtime is never idle while it has work: a cell running or cells queued (people read
"idle" as "nothing will run"; the editor's Run all waits for it). A move to idle then is
refused like a move the diagram does not have: both are bugs in whoever drives it.
"""

from __future__ import annotations

from enum import StrEnum


class RuntimeState(StrEnum):
    STOPPED = "stopped"  # no kernel (never started, stopped by a person or a limit)
    WAITING = "waiting"  # in line for a worker with room for this runtime type
    STARTING = "starting"  # a worker is starting the kernel (building its environment, say)
    IDLE = "idle"  # the kernel runs, no cell does
    BUSY = "busy"  # a cell runs
    RECONNECTING = "reconnecting"  # the kernel's worker dropped; waited for, kernel kept
    DISCONNECTED = "disconnected"  # the kernel was lost or could not start


S = RuntimeState
_ANY = frozenset(S)
# Where each state may be entered from. Stopping, waiting, starting and losing the kernel
# may happen whatever went before (a restart or a stop cuts anything short). A running
# kernel (idle / busy / reconnecting) is never entered from the line for a worker: it comes
# from a start, an adoption (of a kernel this server did not start: from stopped or
# disconnected) or a worker coming back.
ENTERED_FROM: dict[RuntimeState, frozenset[RuntimeState]] = {
    S.STOPPED: _ANY,
    S.WAITING: _ANY,
    S.STARTING: _ANY,
    S.DISCONNECTED: _ANY,
    S.IDLE: _ANY - {S.WAITING},
    S.BUSY: _ANY - {S.WAITING},
    S.RECONNECTING: _ANY - {S.WAITING},
}


class IllegalTransition(RuntimeError):
    """A move the state machine does not allow: a bug in whoever drives it."""

    def __init__(self, source: RuntimeState, target: RuntimeState, why: str = "") -> None:
        super().__init__(why or f"a runtime cannot go from {source} to {target}")
        self.source, self.target = source, target


class InconsistentState(IllegalTransition):
    """A move to idle while cells are queued or one runs."""

    def __init__(self, source: RuntimeState, target: RuntimeState) -> None:
        super().__init__(source, target, f"a runtime cannot be {target} while cells wait or run")


def allowed(source: RuntimeState, target: RuntimeState) -> bool:
    return source in ENTERED_FROM[target]


def consistent(state: RuntimeState, has_work: bool) -> bool:
    """Whether `state` may be shown while cells are queued or running (`has_work`)."""
    return not (has_work and state is RuntimeState.IDLE)


def settled(has_work: bool) -> RuntimeState:
    """The state of a running kernel the runtime waits for no one about."""
    return RuntimeState.BUSY if has_work else RuntimeState.IDLE


class Lifecycle:
    """One runtime's state and why it is in it (shown to people: "waiting for a free
    worker", the reason a kernel was lost)."""

    def __init__(self) -> None:
        self.state = RuntimeState.STOPPED
        self.reason = ""

    def move(self, target: RuntimeState, reason: str = "", *, has_work: bool = False) -> None:
        """Enter `target` (again, with a new reason, when already in it); raises
        IllegalTransition, changing nothing, when the move is not allowed, or would show
        idle while cells are queued or running (`has_work`)."""
        if not allowed(self.state, target):
            raise IllegalTransition(self.state, target)
        if not consistent(target, has_work):
            raise InconsistentState(self.state, target)
        self.state, self.reason = target, reason
