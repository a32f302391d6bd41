"""The page shell's headers and the favicon, through a real server (no browser needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(Path(tmp_path_factory.mktemp("pages")))
    process.start()
    yield process
    process.stop()


def test_there_is_a_favicon(server: ServerProcess) -> None:
    answer = httpx.get(f"{server.url}/favicon.ico")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert answer.text.startswith("<svg")


def test_markdown_may_show_https_images_but_scripts_stay_ours(server: ServerProcess) -> None:
    policy = httpx.get(f"{server.url}/login").headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert "https:" in directives["img-src"].split()
    assert directives["script-src"] == "'self'"
    assert "http:" not in directives["img-src"].split()
