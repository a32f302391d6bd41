"""Slow down password guessing: too many failed logins from one address for one account
within a window answer 429 until the window moves on.

Keyed by (client address, username) so that nobody can lock another person out from
elsewhere; in memory, per server process, or in Redis when several replicas run
(`RedisLoginThrottle`), so a guesser spreading tries over the replicas gains nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
import uuid
from collections import deque

import redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


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


class RedisLoginThrottle(LoginThrottle):
    """The same policy kept in Redis, so that several replicas count one guesser's failures
    together (a sorted set of failure times per key, expiring with the window). When Redis
    cannot be reached, this replica's own count (the base class) stands in."""

    def __init__(self, url: str, max_failures: int = 10, window_seconds: float = 600.0) -> None:
        super().__init__(max_failures, window_seconds)
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    @staticmethod
    def _key(address: str, username: str) -> str:
        digest = hashlib.sha256(f"{address}\0{username}".encode()).hexdigest()
        return f"tandem:login-failures:{digest}"

    def blocked(self, address: str, username: str) -> bool:
        key = self._key(address, username)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zremrangebyscore(key, "-inf", time.time() - self._window)
            pipe.zcard(key)
            count = int(pipe.execute()[1])
        except RedisError:
            log.warning("the login throttle cannot reach Redis; counting here meanwhile")
            return super().blocked(address, username)
        return count >= self._max or super().blocked(address, username)

    def failed(self, address: str, username: str) -> None:
        super().failed(address, username)
        key = self._key(address, username)
        now = time.time()
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zadd(key, {f"{now}:{uuid.uuid4().hex}": now})
            pipe.expire(key, int(self._window) + 1)
            pipe.execute()
        except RedisError:
            log.warning("the login throttle cannot reach Redis; counting here meanwhile")

    def succeeded(self, address: str, username: str) -> None:
        super().succeeded(address, username)
        with contextlib.suppress(RedisError):
            self._redis.delete(self._key(address, username))

    def close(self) -> None:
        self._redis.close()
