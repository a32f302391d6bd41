from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from tests.gateway.conftest import Cluster, running_cluster
from tests.gateway.conftest import _close_test_clients as _close_test_clients

# CI machines are small and shared: wait generously for what must eventually show.
expect.set_options(timeout=15_000)

CHROMIUM = os.environ.get("TANDEM_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A server with one worker, for the browser tests of a module."""
    with running_cluster(tmp_path_factory.mktemp("web"), {"cpu-1": ["--max-kernels", "16"]}) as c:
        yield c


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run installs Debian's chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()
