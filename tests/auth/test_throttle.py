"""The login throttle on its own: window, per-key counting, reset on success; the address
a throttle counts under."""

from __future__ import annotations

import time

from server.auth.throttle import FailureCounter, LoginThrottle, client_key


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


def test_an_ipv6_client_counts_by_its_64_and_loopback_as_one() -> None:
    """Regression test: one subscriber's /64 holds 2**64 addresses, each a fresh count."""
    walked = client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") == walked == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("127.0.0.2") == client_key("::1") == "loopback"
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("::ffff:127.0.0.1") == "loopback"
