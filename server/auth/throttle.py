"""Slow down guessing: failed sign-ins are counted per key within a window, and past a limit
the key is refused until the window moves on.

Two policies share one counter (`FailureCounter`, in memory per server process, or
`RedisFailureCounter` when several replicas run, so a guesser spreading tries over the
replicas gains nothing):

- `LoginThrottle`: failed logins per (client address, username), so nobody can lock another
  person out from elsewhere; answered 429.
- `SocketThrottle`: failed socket authentications per client address, so a flood of bad
  tokens cannot hold up everyone's joins behind the socket checks' one thread; the
  handshake is refused 429 before any database work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import redis
from redis.exceptions import RedisError

from server.auth.credentials import Credential

log = logging.getLogger(__name__)


def client_key(host: str) -> str:
    """The address a throttle counts under (`host` is the peer, or what a trusted proxy's
    X-Forwarded-For says, as uvicorn resolved it). Anyone on this machine (a kernel on the
    local worker, too) can send from any of 127.0.0.0/8: all of loopback counts as one.
    An IPv6 client counts by its /64, the block one subscriber is usually given, whose
    addresses it could otherwise walk through for a fresh count each."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv4 client on a dual-stack socket
    if address.is_loopback:
        return "loopback"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class FailureCounter:
    """Failures per key within a sliding window, in this process's memory."""

    def __init__(self, max_failures: int, window_seconds: float) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # logins run in the thread pool

    def blocked(self, key: str) -> bool:
        return self.local_failures(key) >= self.max_failures

    def local_failures(self, key: str) -> int:
        """Failures of `key` within the window, as this process saw them."""
        with self._lock:
            failures = self._recent(key)
            return 0 if failures is None else len(failures)

    def failed(self, key: str) -> bool:
        """Count one failure; whether `key` is now at the limit."""
        with self._lock:
            self._failures.setdefault(key, deque()).append(time.monotonic())
            if len(self._failures) > 100_000:
                self._prune()
            failures = self._recent(key)
            return failures is not None and len(failures) >= self.max_failures

    def forget(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def close(self) -> None:
        """Release what the counter holds (nothing, in memory)."""

    def _recent(self, key: str) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        horizon = time.monotonic() - self.window_seconds
        while failures and failures[0] < horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def _prune(self) -> None:
        for key in list(self._failures):
            self._recent(key)


class RedisFailureCounter(FailureCounter):
    """The same count kept in Redis, so that several replicas count one guesser's failures
    together (a sorted set of failure times per key, expiring with the window). When Redis
    cannot be reached, this replica's own count (the base class) stands in. Its calls block:
    call them from a thread, never from the event loop."""

    def __init__(self, url: str, name: str, max_failures: int, window_seconds: float) -> None:
        super().__init__(max_failures, window_seconds)
        self._name = name
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def _key(self, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"tandem:{self._name}-failures:{digest}"

    def blocked(self, key: str) -> bool:
        stored = self._key(key)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zremrangebyscore(stored, "-inf", time.time() - self.window_seconds)
            pipe.zcard(stored)
            count = int(pipe.execute()[1])
        except RedisError:
            log.warning("the %s throttle cannot reach Redis; counting here meanwhile", self._name)
            return super().blocked(key)
        return count >= self.max_failures or super().blocked(key)

    def failed(self, key: str) -> bool:
        here = super().failed(key)
        stored = self._key(key)
        now = time.time()
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zadd(stored, {f"{now}:{uuid.uuid4().hex}": now})
            pipe.zremrangebyscore(stored, "-inf", now - self.window_seconds)
            pipe.zcard(stored)
            pipe.expire(stored, int(self.window_seconds) + 1)
            count = int(pipe.execute()[2])
        except RedisError:
            log.warning("the %s throttle cannot reach Redis; counting here meanwhile", self._name)
            return here
        return here or count >= self.max_failures

    def forget(self, key: str) -> None:
        super().forget(key)
        with contextlib.suppress(RedisError):
            self._redis.delete(self._key(key))

    def close(self) -> None:
        self._redis.close()


_LOGIN_MAX_FAILURES = 10
_LOGIN_WINDOW_SECONDS = 600.0


class LoginThrottle:
    """Failed logins per (client address, username): 10 within 10 minutes by default."""

    def __init__(self, counter: FailureCounter | None = None) -> None:
        self.counter = counter or FailureCounter(_LOGIN_MAX_FAILURES, _LOGIN_WINDOW_SECONDS)

    @classmethod
    def in_redis(cls, url: str) -> LoginThrottle:
        """Counted together by every replica on this Redis."""
        return cls(RedisFailureCounter(url, "login", _LOGIN_MAX_FAILURES, _LOGIN_WINDOW_SECONDS))

    @staticmethod
    def _key(address: str, username: str) -> str:
        return f"{address}\0{username}"  # the key the Redis count always had

    def blocked(self, address: str, username: str) -> bool:
        return self.counter.blocked(self._key(address, username))

    def failed(self, address: str, username: str) -> None:
        self.counter.failed(self._key(address, username))

    def succeeded(self, address: str, username: str) -> None:
        self.counter.forget(self._key(address, username))

    def close(self) -> None:
        self.counter.close()


class SocketThrottle:
    """Failed socket authentications per client address (successes never count, so a
    classroom behind one NAT address is only refused when its failures alone pass the
    limit). An address at the limit is refused for one window, decided in the event loop
    from this replica's memory alone, before any database work: a replica learns of a
    block that others counted (through Redis) from the next failure it sees itself, so a
    flood spread over N replicas gets at most `max_failures + N - 1` checks a window.
    Checks still running count as failures until they end, so a burst of sockets opened
    at once cannot all slip past the limit before the first one fails.

    A credential that authenticated from the address before (on this replica) is let
    through even while the address is refused: people already in keep reconnecting; a
    newcomer waits for the window. It is still checked in full (revocation holds).
    """

    def __init__(self, counter: FailureCounter | None) -> None:
        self._counter = counter  # None: throttling is off
        self._until: dict[str, float] = {}  # address -> time.monotonic() its refusal ends
        self._pending: dict[str, int] = {}
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()
        # Redis's round trip must not stall the loop, nor wait behind the socket checks.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="socket-throttle")

    @property
    def window_seconds(self) -> float:
        return self._counter.window_seconds if self._counter is not None else 0.0

    def refuses(self, address: str, credential: Credential) -> bool:
        """Whether to refuse this handshake at once (cheap: memory only, no I/O)."""
        counter = self._counter
        if counter is None:
            return False
        until = self._until.get(address)
        if until is not None and until <= time.monotonic():
            del self._until[address]
            until = None
        running = self._pending.get(address, 0)
        refused = until is not None or (
            counter.local_failures(address) + running >= counter.max_failures
        )
        return refused and (address, _digest(credential)) not in self._known

    @contextlib.contextmanager
    def checking(self, address: str) -> Iterator[None]:
        """Around one credential's check in the database."""
        self._pending[address] = self._pending.get(address, 0) + 1
        try:
            yield
        finally:
            left = self._pending[address] - 1
            if left:
                self._pending[address] = left
            else:
                del self._pending[address]

    async def failed(self, address: str) -> None:
        counter = self._counter
        if counter is None:
            return
        if isinstance(counter, RedisFailureCounter):
            loop = asyncio.get_running_loop()
            over = await loop.run_in_executor(self._thread, counter.failed, address)
        else:
            over = counter.failed(address)
        if over and address not in self._until:
            log.warning(
                "socket sign-ins from %s refused for %.0f s: %d failed within that time",
                address,
                counter.window_seconds,
                counter.max_failures,
            )
            if len(self._until) > 100_000:
                now = time.monotonic()
                self._until = {key: end for key, end in self._until.items() if end > now}
            self._until[address] = time.monotonic() + counter.window_seconds

    def succeeded(self, address: str, credential: Credential) -> None:
        if self._counter is None:
            return
        key = (address, _digest(credential))
        self._known[key] = None
        self._known.move_to_end(key)
        if len(self._known) > 10_000:
            self._known.popitem(last=False)

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        if self._counter is not None:
            self._counter.close()


def _digest(credential: Credential) -> str:
    return hashlib.sha256(credential.raw.encode("utf-8", errors="replace")).hexdigest()
