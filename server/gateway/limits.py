"""A kernel's time limits: how long it may sit idle and how long it may live at most, each
with a warning shortly before it ends the kernel.

The timers and deadlines only; the runtime says what a warning or an end does (an event to
the notebook's pages, a stop). The clock and the scheduler can be swapped for tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal, Protocol

from server.timeutil import utcnow

LimitKind = Literal["idle", "lifetime"]


class Timer(Protocol):
    def cancel(self) -> None: ...


def _call_later(delay: float, callback: Callable[[], None]) -> Timer:
    return asyncio.get_running_loop().call_later(delay, callback)


class LimitTimers:
    def __init__(
        self,
        idle_seconds: float,
        lifetime_seconds: float,
        warning_seconds: float,
        *,
        warn: Callable[[LimitKind, datetime, int], None],
        reached: Callable[[LimitKind, str], None],
        now: Callable[[], datetime] = utcnow,
        call_later: Callable[[float, Callable[[], None]], Timer] = _call_later,
    ) -> None:
        self._seconds: dict[LimitKind, float] = {"idle": idle_seconds, "lifetime": lifetime_seconds}
        self._warning_seconds = warning_seconds
        self._warn = warn  # (kind, deadline, whole seconds left)
        self._reached = reached  # (kind, why the kernel stops, for people)
        self._now = now
        self._call_later = call_later
        self._timers: dict[LimitKind, list[Timer]] = {"idle": [], "lifetime": []}
        self.idle_deadline: datetime | None = None
        self.lifetime_deadline: datetime | None = None

    def arm_idle(self) -> None:
        """The kernel has nothing to do from now: it stops after the idle limit."""
        self.idle_deadline = self._arm("idle")

    def arm_lifetime(self) -> None:
        """The kernel started now: it stops after the lifetime limit, busy or not."""
        self.lifetime_deadline = self._arm("lifetime")

    def cancel_idle(self) -> None:
        """The kernel is busy (or gone): no idle limit runs."""
        self._cancel("idle")
        self.idle_deadline = None

    def cancel_all(self) -> None:
        """The kernel is gone."""
        self.cancel_idle()
        self._cancel("lifetime")
        self.lifetime_deadline = None

    def reason(self, kind: LimitKind) -> str:
        if kind == "idle":
            minutes = self._seconds["idle"] / 60
            return f"stopped after {minutes:g} minutes without execution (idle timeout)"
        hours = self._seconds["lifetime"] / 3600
        return f"stopped at the maximum runtime lifetime of {hours:g} hours"

    def _arm(self, kind: LimitKind) -> datetime:
        self._cancel(kind)
        limit = self._seconds[kind]
        deadline = self._now() + timedelta(seconds=limit)
        timers = [self._call_later(limit, lambda: self._reached(kind, self.reason(kind)))]
        warn_in = limit - self._warning_seconds
        if warn_in > 0:
            timers.append(self._call_later(warn_in, lambda: self._warning(kind, deadline)))
        self._timers[kind] = timers
        return deadline

    def _warning(self, kind: LimitKind, deadline: datetime) -> None:
        seconds = max(0, int((deadline - self._now()).total_seconds()))
        self._warn(kind, deadline, seconds)

    def _cancel(self, kind: LimitKind) -> None:
        for timer in self._timers[kind]:
            timer.cancel()
        self._timers[kind] = []
