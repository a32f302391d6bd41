"""The runtime's state machine on its own: no server, no worker, no event loop."""

from __future__ import annotations

import pytest

from server.gateway.lifecycle import (
    ENTERED_FROM,
    IllegalTransition,
    InconsistentState,
    Lifecycle,
    RuntimeState,
    allowed,
    consistent,
    settled,
)
from server.gateway.models import RuntimeStatus

S = RuntimeState


def test_the_status_strings_stay_the_public_ones() -> None:
    # RuntimeStatus.status is read by the editor and by API clients.
    assert [state.value for state in S] == [
        "stopped",
        "waiting",
        "starting",
        "idle",
        "busy",
        "reconnecting",
        "disconnected",
    ]
    assert RuntimeStatus(type="cpu", types=[], status=S.BUSY.value).model_dump()["status"] == "busy"


def test_a_new_runtime_is_stopped_without_a_reason() -> None:
    lifecycle = Lifecycle()
    assert (lifecycle.state, lifecycle.reason) == (S.STOPPED, "")


def test_a_run_goes_through_the_usual_states() -> None:
    lifecycle = Lifecycle()
    for state in (S.WAITING, S.STARTING, S.STARTING, S.BUSY, S.IDLE, S.BUSY):
        lifecycle.move(state)
    lifecycle.move(S.RECONNECTING, "worker gone; waiting up to 60 s for it to return")
    lifecycle.move(S.BUSY)
    lifecycle.move(S.DISCONNECTED, "the kernel died")
    assert (lifecycle.state, lifecycle.reason) == (S.DISCONNECTED, "the kernel died")


def test_moving_again_into_the_same_state_updates_the_reason() -> None:
    lifecycle = Lifecycle()
    lifecycle.move(S.WAITING, "waiting for a free worker")
    lifecycle.move(S.STARTING, "building the environment")
    lifecycle.move(S.STARTING, "installing numpy")
    assert lifecycle.reason == "installing numpy"


def test_a_reason_is_dropped_when_a_move_gives_none() -> None:
    lifecycle = Lifecycle()
    lifecycle.move(S.DISCONNECTED, "the kernel died")
    lifecycle.move(S.STARTING)
    assert lifecycle.reason == ""


@pytest.mark.parametrize("target", [S.IDLE, S.BUSY, S.RECONNECTING])
def test_a_kernel_never_runs_straight_from_the_line_for_a_worker(target: RuntimeState) -> None:
    lifecycle = Lifecycle()
    lifecycle.move(S.WAITING, "waiting for a free worker")
    with pytest.raises(IllegalTransition, match=f"from waiting to {target}"):
        lifecycle.move(target)
    # Nothing changed.
    assert (lifecycle.state, lifecycle.reason) == (S.WAITING, "waiting for a free worker")


@pytest.mark.parametrize("source", list(S))
@pytest.mark.parametrize("target", [S.STOPPED, S.WAITING, S.STARTING, S.DISCONNECTED])
def test_stop_restart_and_loss_cut_anything_short(
    source: RuntimeState, target: RuntimeState
) -> None:
    assert allowed(source, target)


@pytest.mark.parametrize("target", [S.IDLE, S.BUSY])
@pytest.mark.parametrize("source", [S.STOPPED, S.DISCONNECTED])
def test_an_adopted_kernel_is_idle_or_busy_at_once(
    source: RuntimeState, target: RuntimeState
) -> None:
    lifecycle = Lifecycle()
    lifecycle.move(source)
    lifecycle.move(target, "taken back after a reconnect")
    assert lifecycle.state is target


def test_every_state_has_a_row_and_only_the_line_is_kept_from_a_running_kernel() -> None:
    assert set(ENTERED_FROM) == set(S)
    forbidden = {(a, b) for a in S for b in S if not allowed(a, b)}
    assert forbidden == {(S.WAITING, S.IDLE), (S.WAITING, S.BUSY), (S.WAITING, S.RECONNECTING)}


def test_a_runtime_with_work_is_never_idle() -> None:
    lifecycle = Lifecycle()
    for state in (S.STARTING, S.BUSY):
        lifecycle.move(state, has_work=True)
    with pytest.raises(InconsistentState, match="cannot be idle while cells wait or run"):
        lifecycle.move(S.IDLE, has_work=True)
    assert lifecycle.state is S.BUSY  # nothing changed
    lifecycle.move(S.IDLE, has_work=False)
    assert lifecycle.state is S.IDLE


@pytest.mark.parametrize("state", list(S))
def test_only_idle_says_nothing_will_run(state: RuntimeState) -> None:
    # Waiting, starting, reconnecting, stopped (cells dropped next) may all have work.
    assert consistent(state, has_work=True) is (state is not S.IDLE)
    assert consistent(state, has_work=False)


def test_a_running_kernel_settles_busy_with_work_and_idle_without() -> None:
    assert settled(has_work=True) is S.BUSY
    assert settled(has_work=False) is S.IDLE
    assert all(consistent(settled(work), work) for work in (True, False))
