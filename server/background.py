"""Stopping the background tasks a service runs (heartbeats, listeners, sweepers)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

# How long to wait for cancelled tasks before cancelling them again.
_RECANCEL_SECONDS = 0.5


async def stop_tasks(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and wait until each has ended.

    One cancellation is not always enough: a cancellation that lands while a library call
    is timing out can come out of it as that call's own timeout (redis-py's reads), which a
    retrying loop catches and goes on. So a task still running after a moment is cancelled
    again, until it ends; a loop that swallowed one cancellation gets the next one at its
    next `await`."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=_RECANCEL_SECONDS)
