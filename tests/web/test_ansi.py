"""Text outputs as a terminal shows them, from a real kernel: progress bars that redraw
with `\\r` and erase-line (pip's own bar through a pty, as `!pip install` runs it), and long
outputs that can be scrolled in a box or shown at full height."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.gateway.conftest import Cluster
from tests.support import notebook_with_code
from tests.support_web import open_notebook, signed_in

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def page(web: Cluster, browser: Browser) -> AsyncIterator[Page]:
    context = await signed_in(browser, web, "ann")
    yield await context.new_page()
    await context.close()


async def run(web: Cluster, page: Page, code: str) -> Locator:
    """Run `code` as the notebook's only cell, shown in `page`; its outputs."""
    api = web.api("ann")
    notebook, ids = notebook_with_code(api, [code], title="Terminal")
    await open_notebook(page, notebook)
    response = api.client.post(f"/api/notebooks/{notebook}/execute", json={"cell_ids": ids})
    assert response.status_code == 202, response.text
    return page.locator(".cell").first.locator(".outputs")


# Bars that get shorter, in colour, redrawn with `\r` + erase-line: a terminal shows the
# last one alone. Overwriting without erasing (or counting escapes as characters) leaves
# the ends of longer frames behind ("done0:00:10").
BAR = """\
import sys, time
for i in range(30, 0, -1):
    sys.stdout.write(f"\\r\\x1b[K\\x1b[32m{'#' * i}\\x1b[0m eta 0:00:{i:02}")
    sys.stdout.flush()
    time.sleep(0.01)
sys.stdout.write("\\r\\x1b[Kdone\\n")
print("after")
"""


async def test_a_progress_bar_shows_only_its_last_line(web: Cluster, page: Page) -> None:
    outputs = await run(web, page, BAR)
    await expect(outputs.locator("pre.stream")).to_have_text("done\nafter\n", timeout=60_000)


# pip's own download bar (its vendored rich), in a pty as `!pip install` runs pip.
PIP_BAR = """\
import sys
cmd = ("from pip._internal.cli.progress_bars import get_download_progress_renderer as r; "
       "import time; [time.sleep(0.01) for _ in r(bar_type='on', size=4_000_000)"
       "(iter([b'x' * 40_000] * 100))]")
!{sys.executable} -c "{cmd}"
print("installed")
"""


async def test_pips_progress_bar_folds_to_its_final_frame(web: Cluster, page: Page) -> None:
    outputs = await run(web, page, PIP_BAR)
    stream = outputs.locator("pre.stream")
    await expect(stream).to_contain_text("installed", timeout=60_000)
    text = await stream.inner_text()
    lines = [line for line in text.split("\n") if line.strip()]
    assert len(lines) == 2, json.dumps(text)
    # Its last frame is shorter than the one before (fewer colour changes): overwritten
    # without erasing, the end of the longer one stayed ("eta 0:00:0000:01").
    assert "4.0/4.0 MB" in lines[0] and lines[0].rstrip().endswith("eta 0:00:00"), text
    assert lines[1] == "installed"


LONG = """\
import time
for i in range(400):
    print(f"line {i}")
time.sleep(1.5)
for i in range(400, 420):
    print(f"line {i}")
"""


async def test_a_long_output_scrolls_in_a_box_or_shows_in_full(web: Cluster, page: Page) -> None:
    outputs = await run(web, page, LONG)
    pre = outputs.locator("pre.stream")
    await expect(pre).to_contain_text("line 399", timeout=60_000)
    await expect(outputs.get_by_test_id("show-more")).to_contain_text("Show all")
    await outputs.get_by_test_id("scroll-toggle").click()
    await expect(pre).to_have_class("stream stdout scrolled")
    sizes = await pre.evaluate(
        "p => [p.clientHeight, p.scrollHeight, getComputedStyle(p).overflowY]"
    )
    assert sizes[0] < sizes[1] / 4 and sizes[2] == "auto", sizes
    # The box follows the stream at its end while it grows (the output is drawn anew).
    await pre.evaluate("p => { p.scrollTop = p.scrollHeight }")
    await expect(pre).to_contain_text("line 419", timeout=30_000)
    await expect(pre).to_have_class("stream stdout scrolled")
    at_end = "p => p.scrollTop + p.clientHeight >= p.scrollHeight - 4"
    for _ in range(20):
        if await pre.evaluate(at_end):
            break
        await page.wait_for_timeout(100)
    assert await pre.evaluate(at_end)
    # Full height: the whole output, no box.
    await expect(outputs.get_by_test_id("scroll-toggle")).to_have_text("Full height")
    await outputs.get_by_test_id("scroll-toggle").click()
    await expect(pre).to_have_class("stream stdout")
    full = await pre.evaluate("p => [p.clientHeight, p.scrollHeight]")
    assert full[0] >= full[1] - 1, full
    await expect(outputs.get_by_test_id("show-more")).to_have_text("Show less")
    await outputs.get_by_test_id("show-more").click()
    await expect(pre).to_have_class("stream stdout collapsed")
