"""The variable inspector in Chromium: an editor sees the kernel's variables after a run,
refreshed by the next run; a viewer has no such tab and the API refuses them (403). The
pure formatting (static/src/variables.js) under Node."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.gateway.conftest import Cluster
from tests.support import notebook_with_code
from tests.support_web import run_module
from tests.web.test_editor import ann_and_ben


def test_sizes_and_notes() -> None:
    assert run_module("variables.js", "m.bytes(...args)", 512) == "512 B"
    assert run_module("variables.js", "m.bytes(...args)", 1536) == "1.5 KB"
    assert run_module("variables.js", "m.bytes(...args)", None) == ""
    note = "m.replyNote(...args)"
    assert "busy" in run_module("variables.js", note, {"status": "busy", "variables": []})
    assert (
        run_module("variables.js", note, {"status": "ok", "variables": []}) == "No variables yet."
    )
    many = {"status": "ok", "variables": [{"name": "x"}], "truncated": True}
    assert "not shown" in run_module("variables.js", note, many)


async def test_variables_appear_after_a_run_and_viewers_get_403(
    web: Cluster, browser: Browser
) -> None:
    notebook, _ = notebook_with_code(
        web.api("ann"), ["answer = 41 + 1\nwords = ['a', 'b', 'c']", "later = '<b>bold</b>'"]
    )
    async with ann_and_ben(browser, web, notebook, ben_role="viewer") as (mine, theirs):
        await mine.get_by_test_id("open-variables").click()
        panel = mine.get_by_test_id("variables")
        await expect(panel.get_by_test_id("variables-note")).to_contain_text("No kernel runs")

        await mine.locator(".cell .cm-content").first.click()
        await mine.keyboard.press("Control+Enter")
        answer = panel.locator("tr[data-name='answer']")
        await expect(answer).to_be_visible(timeout=60_000)  # refreshed when the run ended
        await expect(answer.locator(".type")).to_have_text("int")
        await expect(answer.locator(".repr")).to_have_text("42")
        words = panel.locator("tr[data-name='words']")
        await expect(words.locator(".shape")).to_have_text("len 3")
        await expect(words.locator(".size")).to_have_text(re.compile(r"\d+ B"))

        # The next run refreshes the open list; a repr with markup is shown as text.
        await mine.locator(".cell").nth(1).locator(".cm-content").click()
        await mine.keyboard.press("Control+Enter")
        later = panel.locator("tr[data-name='later']")
        await expect(later.locator(".repr")).to_have_text("'<b>bold</b>'", timeout=30_000)
        await expect(panel.locator("b")).to_have_count(0)

        # A viewer has no Variables tab, and the server refuses them whatever the page shows.
        await expect(theirs.get_by_test_id("open-variables")).to_have_count(0)
        refused = await theirs.request.post(f"/api/notebooks/{notebook}/variables")
        assert refused.status == 403
        assert "answer" not in await refused.text()
