"""Every secret-carrying URL is redacted in log lines."""

from __future__ import annotations

import pytest

from server.logs import redact


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ('"GET /links/tdl_AbC-12_xyz HTTP/1.1" 200', "tdl_AbC-12_xyz"),
        ('"GET /api/notebooks/x/sync?token=tdm_secret123 HTTP/1.1"', "tdm_secret123"),
        ("worker tdw_Zz9-_q connected", "tdw_Zz9-_q"),
        ('"POST /api/links/redeem?session=abc&x=1"', "abc"),
        ("password=hunter2 in a query", "hunter2"),
    ],
)
def test_secrets_are_redacted(line: str, secret: str) -> None:
    cleaned = redact(line)
    assert secret not in cleaned
    assert "[redacted]" in cleaned
