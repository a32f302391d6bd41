"""Where the login page sends you afterwards (static/src/redirect.js), run under Node: only a
page of this site, however `next` is spelled (issue 12, open redirect after login)."""

from __future__ import annotations

import pytest

from tests.support_web import run_module

ORIGIN = "http://127.0.0.1:8000"


def target(next_: str | None) -> str:
    result: str = run_module("redirect.js", "m.sameOriginTarget(args[0], args[1])", next_, ORIGIN)
    return result


@pytest.mark.parametrize(
    "next_",
    [
        "/\\127.0.0.1:1/x",
        "//evil.example",
        "\t/\t/evil.example",
        "https://evil.example/login",
        "http://127.0.0.1:8001/",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "",
        None,
    ],
)
def test_other_hosts_and_schemes_go_home(next_: str | None) -> None:
    assert target(next_) == f"{ORIGIN}/"


def test_our_pages_are_kept_whole() -> None:
    assert target("/n/abc?tab=files#cell-2") == f"{ORIGIN}/n/abc?tab=files#cell-2"
    assert target("n/abc") == f"{ORIGIN}/n/abc"
    # A path that is itself protocol-relative stays a path of ours: the whole URL is used.
    assert target("/.//evil.example") == f"{ORIGIN}//evil.example"
