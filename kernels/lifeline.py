"""A worker started by a server (`tandem serve`'s local worker) ends when that server does.

Linux's parent-death signal ends the worker the moment the process that started it dies,
even by SIGKILL; since that signal is tied to the parent *thread* and is lost when an
intermediate process exits first, a watch also compares the parent pid with the one the
server passed (`--parent-pid`) twice a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `signum` when our parent dies; False where that is not
    possible (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return bool(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)


def parent_alive(parent_pid: int) -> bool:
    return os.getppid() == parent_pid


async def watch_parent(parent_pid: int, every: float = 0.5) -> None:
    """Return once the parent that started us is gone."""
    while parent_alive(parent_pid):  # noqa: ASYNC110  (no event to wait on: we poll)
        await asyncio.sleep(every)
    log.warning("the server that started this worker is gone; stopping")


def bind_to_parent(parent_pid: int) -> None:
    """Called first thing: if the parent already died before the signal was set, go now."""
    set_parent_death_signal()
    if not parent_alive(parent_pid):
        with contextlib.suppress(Exception):
            log.warning("the server that started this worker is already gone")
        raise SystemExit(0)
