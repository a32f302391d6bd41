"""The editor's pure modules' own unit tests (static/test, Node's test runner), run as part
of the suite so the README's one test command covers them."""

from __future__ import annotations

import subprocess

from tests.support_web import STATIC


def test_node_unit_tests_pass() -> None:
    done = subprocess.run(
        ["node", "--test", "test/"],
        cwd=STATIC,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
