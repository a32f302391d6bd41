"""Restarting the kernel from the editor (issue 11): it asks first, saying that everyone's
variables go (Cancel changes nothing); Restart and run all starts a fresh kernel and then
runs every code cell, in order, once the new kernel is up."""

from __future__ import annotations

from playwright.async_api import Browser, Locator, Page, expect

from tests.gateway.conftest import Cluster
from tests.support import notebook_with_code
from tests.web.test_editor import ann_and_ben

# Runs are slow on a shared CI machine: a kernel start included.
RUN = 60_000


def cell(page: Page, index: int) -> Locator:
    return page.locator(".cell").nth(index)


async def run_cell(page: Page, index: int) -> None:
    await cell(page, index).locator(".run").click()


async def test_restart_asks_first_and_cancel_keeps_the_variables(
    web: Cluster, browser: Browser
) -> None:
    notebook, _ = notebook_with_code(web.api("ann"), ["x = 41", "print(x + 1)"], title="Keep")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await run_cell(mine, 0)
        await expect(cell(theirs, 0).locator(".prompt")).to_have_text("[1]", timeout=RUN)
        confirm = mine.get_by_test_id("restart-confirm")
        await mine.get_by_test_id("restart").click()
        await expect(confirm).to_be_visible()
        await expect(confirm).to_contain_text("Restart the kernel?")
        await expect(confirm).to_contain_text("Variables will be lost")
        # It is everyone's kernel, and the dialog says so (ben has the page open).
        await expect(confirm).to_contain_text("everyone in this notebook")
        await expect(confirm).to_contain_text("one other person is here now")
        # The focus starts on Cancel: Enter alone does not restart.
        await mine.keyboard.press("Enter")
        await expect(confirm).to_have_count(0)
        await run_cell(mine, 1)
        await expect(cell(theirs, 1).locator(".outputs .output")).to_have_text("42", timeout=RUN)
        await expect(cell(mine, 1).locator(".prompt")).to_have_text("[2]")
        # Esc is no too.
        await mine.get_by_test_id("restart").click()
        await expect(confirm).to_be_visible()
        await mine.keyboard.press("Escape")
        await expect(confirm).to_have_count(0)
        # Confirmed: a fresh kernel, x is gone.
        await mine.get_by_test_id("restart").click()
        await confirm.get_by_test_id("restart-confirm-ok").click()
        await expect(confirm).to_have_count(0)
        await run_cell(mine, 1)
        await expect(cell(theirs, 1).locator(".outputs .output")).to_contain_text(
            "NameError", timeout=RUN
        )
        await expect(cell(theirs, 1).locator(".prompt")).to_have_text("[1]")


async def test_restart_and_run_all_runs_every_cell_in_order_in_a_new_kernel(
    web: Cluster, browser: Browser
) -> None:
    sources = [
        "n = globals().get('n', 0) + 1\nprint('first', n)",
        "import time\ntime.sleep(0.5)\nprint('second', n * 10)",
        "print('third', n * 100)",
    ]
    notebook, _ = notebook_with_code(web.api("ann"), sources, title="Again")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await run_cell(mine, 0)
        await run_cell(mine, 0)
        await expect(cell(theirs, 0).locator(".outputs .output")).to_have_text(
            "first 2", timeout=RUN
        )
        await mine.get_by_test_id("restart-run-all").click()
        confirm = mine.get_by_test_id("restart-confirm")
        await expect(confirm).to_contain_text("Variables will be lost")
        await confirm.get_by_test_id("restart-confirm-ok").click()
        # A fresh kernel (n starts again at 1), the cells run top to bottom: counts 1, 2, 3.
        expected = ["first 1", "second 10", "third 100"]
        for page in (theirs, mine):
            for index, text in enumerate(expected):
                await expect(cell(page, index).locator(".outputs .output")).to_have_text(
                    text, timeout=RUN
                )
                await expect(cell(page, index).locator(".prompt")).to_have_text(f"[{index + 1}]")
