from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, async_playwright, expect

from tests.gateway.conftest import Cluster, running_cluster
from tests.gateway.conftest import _close_test_clients as _close_test_clients

# CI machines are small and shared: wait generously for what must eventually show.
expect.set_options(timeout=15_000)

CHROMIUM = os.environ.get("TANDEM_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"


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


async def signed_in(browser: Browser, cluster: Cluster, name: str) -> BrowserContext:
    """A browser context with `name`'s session cookie, as after logging in."""
    context = await browser.new_context(
        base_url=cluster.server.url, viewport={"width": 1200, "height": 900}
    )
    person = cluster.people.get(name, cluster.admin)
    response = await context.request.post(
        "/api/auth/login", data={"username": person.username, "password": person.password}
    )
    assert response.ok, await response.text()
    return context


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
