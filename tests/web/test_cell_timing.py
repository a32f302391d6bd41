"""Per-cell run time and "last run by" (issue 11), in Chromium with two people: the start
of a run is in the document, so a reload or a second person counts the same elapsed time;
both see the same "2.3 s · ann · 14:02" line once it ends. And the pure formatting
(static/src/celltiming.js) under Node."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.gateway.conftest import Cluster
from tests.support import notebook_with_code
from tests.support_web import open_notebook, run_module
from tests.web.test_editor import ann_and_ben


def call(function: str, *args: Any) -> Any:
    return run_module("celltiming.js", f"m.{function}(...args)", *args)


def test_the_line_reads_from_the_stored_timing() -> None:
    start = "2026-12-03T14:02:00.000Z"
    end = "2026-12-03T14:02:02.300Z"
    metadata = {
        "execution": {"iopub.status.busy": start, "iopub.status.idle": end},
        "tandem": {"run_by": {"username": "ann"}},
    }
    now = 1796306522300  # the same day as `start`
    text = call("timingText", metadata, "idle", now)
    assert re.fullmatch(r"2\.3 s · ann · \d\d:\d\d", text), text
    # While running, counted from the stored start, whatever the page's own clock began at.
    assert call("timingText", metadata, "running", now + 10_000) == "Running 12 s · ann"
    assert call("runningFor", metadata, 1796306500000) == 0  # a clock behind: never negative
    assert call("duration", 65_000) == "1 min 05 s"
    assert call("duration", 400) == "0.4 s"
    # Cells run by an earlier server carry only Colab's executionInfo.
    old = {
        "executionInfo": {
            "timestamp": 1796306520000,
            "elapsed": 1500,
            "user": {"displayName": "ben"},
        }
    }
    assert re.fullmatch(r"1\.5 s · ben · \d\d:\d\d", call("timingText", old, "idle", now))
    assert call("timingText", {}, "idle", now) == ""


def seconds(text: str | None) -> int:
    found = re.search(r"\[\*\] (\d+)s", text or "")
    assert found, text
    return int(found.group(1))


async def running_seconds(page: Page) -> int:
    prompt = page.locator(".cell").first.locator(".prompt")
    await expect(prompt).to_have_text(re.compile(r"\[\*\] \d+s"))
    return seconds(await prompt.text_content())


async def test_the_timer_survives_a_reload_and_both_see_who_ran_it(
    web: Cluster, browser: Browser
) -> None:
    notebook, _ = notebook_with_code(web.api("ann"), ["import time; time.sleep(7)", "x = 1"])
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        # Ben's computer's clock is ten minutes slow: his page counts on the server's.
        await theirs.clock.install(time=datetime.now(UTC) - timedelta(minutes=10))
        await theirs.reload()
        await open_notebook(theirs, notebook)
        await mine.locator(".cell .cm-content").first.click()
        await mine.keyboard.press("Control+Enter")
        timing = theirs.locator(".cell").first.get_by_test_id("cell-timing")
        await expect(timing).to_have_text(re.compile(r"^Running \d+ s · ann$"), timeout=60_000)
        # Wait until ben's page has counted a few seconds, then reload ann's.
        await expect(theirs.locator(".cell").first.locator(".prompt")).to_have_text(
            re.compile(r"\[\*\] [3-9]s")
        )
        await mine.reload()
        await open_notebook(mine, notebook)
        reloaded = await running_seconds(mine)
        other = await running_seconds(theirs)
        # A timer that restarted at the reload would say 0 here.
        assert reloaded >= 3, reloaded
        assert abs(reloaded - other) <= 1, (reloaded, other)

        # Done: both see the same line, with who ran it and when.
        line = re.compile(r"^\d+(\.\d)? s · ann · \d\d:\d\d$")
        for page in (mine, theirs):
            await expect(page.locator(".cell").first.get_by_test_id("cell-timing")).to_have_text(
                line, timeout=30_000
            )
        texts = [
            await page.locator(".cell").first.get_by_test_id("cell-timing").text_content()
            for page in (mine, theirs)
        ]
        assert texts[0] == texts[1]
        assert float(texts[0].split(" ")[0]) >= 6.5  # type: ignore[union-attr]
        # It is in the document where JupyterLab keeps it, and in the export.
        stored = await mine.evaluate(
            "() => window.tandem.doc.getArray('cells').get(0).get('metadata').toJSON()"
        )
        assert set(stored["execution"]) == {
            "iopub.status.busy",
            "iopub.execute_input",
            "shell.execute_reply",
            "iopub.status.idle",
        }
        assert stored["tandem"]["run_by"]["username"] == "ann"
        exported = web.api("ann").export(notebook)["cells"][0]["metadata"]
        assert exported["execution"] == stored["execution"]

        # Ben runs the second cell: both see his name on it.
        await theirs.locator(".cell").nth(1).locator(".cm-content").click()
        await theirs.keyboard.press("Control+Enter")
        for page in (mine, theirs):
            await expect(page.locator(".cell").nth(1).get_by_test_id("cell-timing")).to_have_text(
                re.compile(r"^\d+\.\d s · ben · \d\d:\d\d$"), timeout=30_000
            )
