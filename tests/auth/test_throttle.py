"""The login throttle on its own: window, per-key counting, reset on success."""

from __future__ import annotations

import time

from server.auth.throttle import FailureCounter, LoginThrottle


def test_failures_expire_with_the_window() -> None:
    throttle = LoginThrottle(FailureCounter(max_failures=3, window_seconds=0.2))
    for _ in range(3):
        assert not throttle.blocked("1.2.3.4", "ann")
        throttle.failed("1.2.3.4", "ann")
    assert throttle.blocked("1.2.3.4", "ann")
    assert not throttle.blocked("5.6.7.8", "ann")  # another address is not locked out
    assert not throttle.blocked("1.2.3.4", "bob")
    time.sleep(0.25)
    assert not throttle.blocked("1.2.3.4", "ann")


def test_success_clears_the_count() -> None:
    throttle = LoginThrottle(FailureCounter(max_failures=2, window_seconds=60))
    throttle.failed("a", "ann")
    throttle.succeeded("a", "ann")
    throttle.failed("a", "ann")
    assert not throttle.blocked("a", "ann")
