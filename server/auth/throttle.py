"""Slow down password guessing: too many failed logins from one address for one account
within a window answer 429 until the window moves on.

Keyed by (client address, username) so that nobody can lock another person out from
elsewhere; in memory, per server process.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class LoginThrottle:
    def __init__(self, max_failures: int = 10, window_seconds: float = 600.0) -> None:
        self._max = max_failures
        self._window = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()  # login runs in the thread pool

    def blocked(self, address: str, username: str) -> bool:
        with self._lock:
            failures = self._recent((address, username))
            return failures is not None and len(failures) >= self._max

    def failed(self, address: str, username: str) -> None:
        with self._lock:
            key = (address, username)
            self._failures.setdefault(key, deque()).append(time.monotonic())
            if len(self._failures) > 100_000:
                self._prune()

    def succeeded(self, address: str, username: str) -> None:
        with self._lock:
            self._failures.pop((address, username), None)

    def _recent(self, key: tuple[str, str]) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        horizon = time.monotonic() - self._window
        while failures and failures[0] < horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def _prune(self) -> None:
        for key in list(self._failures):
            self._recent(key)
