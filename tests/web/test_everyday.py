"""What a daily Jupyter / Colab user expects of the editor (issue 11), in Chromium with
two people: HTML outputs that stay drawn while the cell list changes, Tab and Shift+Tab
that indent and stay in the editor, and edits made offline that survive closing the tab."""

from __future__ import annotations

import asyncio

from playwright.async_api import Browser, Page, expect

from tests.gateway.conftest import Cluster
from tests.support import notebook_with_code
from tests.web.test_editor import ann_and_ben, cells_in, source_in, wait_source

TABLE = "from IPython.display import HTML; HTML('<table><tr><td>42</td></tr></table>')"


async def table_shown(page: Page) -> None:
    """The one HTML output's iframe holds the table (not an empty box)."""
    await expect(page.locator("iframe.output-frame")).to_have_count(1)
    cell = page.frame_locator("iframe.output-frame").locator("td")
    await expect(cell).to_have_text("42", timeout=5_000)


async def test_html_outputs_stay_drawn_when_cells_are_added_deleted_or_moved(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, [TABLE, "second"], title="Tables")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await mine.locator(".cell .run").first.click()
        for page in (mine, theirs):
            await expect(page.frame_locator("iframe.output-frame").locator("td")).to_have_text(
                "42", timeout=30_000
            )
        # Ben adds a cell above the table, deletes it, then moves the table down; then ann
        # moves it back up. Both pages keep showing it after every change.
        await theirs.locator(".cell").first.focus()
        await theirs.keyboard.press("a")
        await expect(mine.locator(".cell")).to_have_count(3)
        for page in (mine, theirs):
            await table_shown(page)
        await theirs.locator(".cell").first.get_by_title("Delete (D D)").click()
        await expect(mine.locator(".cell")).to_have_count(2)
        for page in (mine, theirs):
            await table_shown(page)
        await theirs.locator(".cell").first.get_by_title("Move down").click()
        await expect(mine.locator(".cell").nth(1).locator("iframe.output-frame")).to_have_count(1)
        for page in (mine, theirs):
            await table_shown(page)
        await mine.locator(".cell").nth(1).get_by_title("Move up").click()
        await expect(theirs.locator(".cell").first.locator("iframe.output-frame")).to_have_count(1)
        for page in (mine, theirs):
            await table_shown(page)
        # Taking a cell out of the page and putting it back (as drawing the list again
        # does) reloads its iframe: the output is sent again, not lost.
        for page in (mine, theirs):
            await page.evaluate(
                "() => { const cell = document.querySelector('iframe.output-frame')"
                ".closest('.cell'); cell.parentNode.insertBefore(cell, cell.nextSibling) }"
            )
            await table_shown(page)


async def focused_editor_index(page: Page) -> int:
    """The index of the cell whose editor holds the focus, or -1."""
    return int(
        await page.evaluate(
            "() => [...document.querySelectorAll('section.cell')]"
            ".findIndex((c) => c.contains(document.activeElement)"
            " && c.querySelector('.cm-focused'))"
        )
    )


async def test_tab_indents_four_spaces_and_shift_tab_stays_in_the_editor(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["def f():", "kept"], title="Indent")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await mine.locator(".cell .cm-content").first.click()
        await mine.keyboard.press("End")
        # Auto-indent after a colon is Jupyter's four spaces.
        await mine.keyboard.press("Enter")
        await mine.keyboard.type("return 1")
        await wait_source(theirs, "def f():\n    return 1")
        # Tab indents the line by four more; Shift+Tab takes them off again, and both keep
        # the focus in this editor.
        await mine.keyboard.press("Tab")
        await wait_source(theirs, "def f():\n        return 1")
        assert await focused_editor_index(mine) == 0
        await mine.keyboard.press("Shift+Tab")
        await wait_source(theirs, "def f():\n    return 1")
        assert await focused_editor_index(mine) == 0
        # Shift+Tab then Enter once deleted the cell (the focus was on its Delete button).
        await mine.keyboard.press("Shift+Tab")
        await mine.keyboard.press("Enter")
        await asyncio.sleep(0.3)
        assert await focused_editor_index(mine) == 0
        await wait_source(theirs, "def f():\nreturn 1\n")
        assert [source for _, source in await cells_in(theirs)] == ["def f():\nreturn 1\n", "kept"]
        assert await source_in(mine, 1) == "kept"
