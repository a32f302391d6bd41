"""A kernel's idle and lifetime limits on their own: a fake clock and scheduler, no loop."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from server.gateway.limits import LimitKind, LimitTimers

START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Scheduler:
    """Timers on a clock the test moves: `advance` fires what falls due, in order."""

    def __init__(self) -> None:
        self.now = START
        self.timers: list[FakeTimer] = []

    def clock(self) -> datetime:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.now + timedelta(seconds=delay), callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        until = self.now + timedelta(seconds=seconds)
        while due := sorted(
            (t for t in self.timers if not t.cancelled and t.when <= until), key=lambda t: t.when
        ):
            timer = due[0]
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.callback()
        self.now = until

    @property
    def armed(self) -> int:
        return sum(not t.cancelled for t in self.timers)


class FakeTimer:
    def __init__(self, when: datetime, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class Said:
    def __init__(self) -> None:
        self.warnings: list[tuple[LimitKind, datetime, int]] = []
        self.ends: list[tuple[LimitKind, str]] = []

    def warn(self, kind: LimitKind, deadline: datetime, seconds_left: int) -> None:
        self.warnings.append((kind, deadline, seconds_left))

    def reached(self, kind: LimitKind, reason: str) -> None:
        self.ends.append((kind, reason))


def make(
    idle: float = 600, lifetime: float = 7200, warning: float = 60
) -> tuple[LimitTimers, Scheduler, Said]:
    scheduler, said = Scheduler(), Said()
    limits = LimitTimers(
        idle,
        lifetime,
        warning,
        warn=said.warn,
        reached=said.reached,
        now=scheduler.clock,
        call_later=scheduler.call_later,
    )
    return limits, scheduler, said


def test_an_idle_kernel_is_warned_then_stopped() -> None:
    limits, scheduler, said = make(idle=600, warning=60)
    limits.arm_idle()
    assert limits.idle_deadline == START + timedelta(seconds=600)
    scheduler.advance(539)
    assert said.warnings == [] and said.ends == []
    scheduler.advance(1)
    assert said.warnings == [("idle", START + timedelta(seconds=600), 60)]
    scheduler.advance(60)
    assert said.ends == [("idle", "stopped after 10 minutes without execution (idle timeout)")]


def test_a_cell_run_cancels_the_idle_limit_but_not_the_lifetime() -> None:
    limits, scheduler, said = make(idle=600, lifetime=7200, warning=60)
    limits.arm_lifetime()
    limits.arm_idle()
    scheduler.advance(300)
    limits.cancel_idle()  # a cell runs
    assert limits.idle_deadline is None
    assert limits.lifetime_deadline == START + timedelta(seconds=7200)
    scheduler.advance(7200)
    assert [kind for kind, _, _ in said.warnings] == ["lifetime"]
    assert said.ends == [("lifetime", "stopped at the maximum runtime lifetime of 2 hours")]


def test_arming_the_idle_limit_again_starts_it_over() -> None:
    limits, scheduler, said = make(idle=600, warning=60)
    limits.arm_idle()
    scheduler.advance(500)
    limits.arm_idle()  # a cell ran and ended
    assert limits.idle_deadline == START + timedelta(seconds=1100)
    assert scheduler.armed == 2  # the old limit and warning are gone
    scheduler.advance(599)
    assert said.ends == []
    scheduler.advance(1)
    assert [kind for kind, _ in said.ends] == ["idle"]


def test_a_kernel_gone_leaves_no_timer_behind() -> None:
    limits, scheduler, said = make()
    limits.arm_lifetime()
    limits.arm_idle()
    limits.cancel_all()
    assert (limits.idle_deadline, limits.lifetime_deadline) == (None, None)
    assert scheduler.armed == 0
    scheduler.advance(10**6)
    assert said.warnings == [] and said.ends == []


@pytest.mark.parametrize("warning", [600, 900])
def test_no_warning_when_the_limit_is_shorter_than_the_warning(warning: float) -> None:
    limits, scheduler, said = make(idle=600, warning=warning)
    limits.arm_idle()
    scheduler.advance(600)
    assert said.warnings == []
    assert [kind for kind, _ in said.ends] == ["idle"]


def test_a_late_warning_says_the_seconds_truly_left() -> None:
    limits, scheduler, said = make(idle=600, warning=60)
    limits.arm_idle()
    # The loop was blocked: the warning fires 30 s late (the clock moved on meanwhile).
    scheduler.now += timedelta(seconds=570)
    scheduler.advance(0)
    assert said.warnings == [("idle", START + timedelta(seconds=600), 30)]
