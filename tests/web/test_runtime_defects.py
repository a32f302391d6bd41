"""Runtime defects from issue 11, in Chromium: a GPU type no connected worker can host is
marked in the chooser and the wait is said next to the badge; switching the type back
runs the queued cell instead of dropping it; while ann answers `input()`, ben sees that the
cell waits for her; a demoted member who keeps editing through a link is explained in the
People list, where the owner can revoke that link."""

from __future__ import annotations

import re

from playwright.async_api import Browser, Page, expect

from tests.gateway.conftest import Cluster
from tests.support import notebook_with_code
from tests.support_web import open_notebook, signed_in
from tests.web.test_editor import ann_and_ben


async def run_first_cell(page: Page) -> None:
    await page.locator(".cell .cm-content").first.click()
    await page.keyboard.press("Control+Enter")


async def choose_runtime(page: Page, name: str) -> None:
    await page.get_by_test_id("runtime").click()
    dialog = page.locator("dialog")
    await dialog.get_by_label("runtime type").select_option(name)
    await dialog.get_by_role("button", name="Save").click()
    await expect(page.get_by_test_id("runtime")).to_contain_text(f"{name.upper()} ·")


async def test_gpu_without_a_gpu_worker_is_marked_and_the_wait_is_said(
    web: Cluster, browser: Browser
) -> None:
    notebook, _ = notebook_with_code(web.api("ann"), ["print('ran')"])
    context = await signed_in(browser, web, "ann")
    try:
        page = await context.new_page()
        await open_notebook(page, notebook)
        await page.get_by_test_id("runtime").click()
        dialog = page.locator("dialog")
        gpu = dialog.locator("option[value='gpu']")
        await expect(gpu).to_have_text("GPU (unavailable: no GPU worker connected)")
        await expect(dialog.locator("option[value='cpu']")).to_have_text("CPU")
        await dialog.get_by_label("runtime type").select_option("gpu")
        await expect(dialog.get_by_test_id("runtime-note")).to_contain_text("no GPU worker")
        await dialog.get_by_role("button", name="Save").click()

        await run_first_cell(page)
        reason = page.get_by_test_id("runtime-reason")
        await expect(reason).to_be_visible()
        await expect(reason).to_have_text("waiting for a worker that offers the gpu runtime")
        await expect(page.get_by_test_id("runtime")).to_contain_text("GPU · waiting")
        await page.get_by_test_id("interrupt").click()
        await expect(page.get_by_test_id("runtime")).to_contain_text("stopped")
    finally:
        await context.close()


async def test_switching_back_runs_the_queued_cell_once(web: Cluster, browser: Browser) -> None:
    notebook, _ = notebook_with_code(web.api("ann"), ["print('ran once')"])
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await choose_runtime(mine, "gpu")
        await run_first_cell(mine)
        await expect(theirs.locator(".cell").first).to_have_attribute("data-state", "queued")
        await expect(theirs.get_by_test_id("runtime")).to_contain_text("GPU · waiting")
        # Back to CPU before any GPU worker came: the queued run goes to the new runtime.
        await choose_runtime(mine, "cpu")
        for page in (mine, theirs):
            cell = page.locator(".cell").first
            await expect(cell.locator(".prompt")).to_have_text("[1]", timeout=60_000)
            await expect(cell.locator(".output")).to_have_text("ran once")
        assert web.api("ann").export(notebook)["cells"][0]["execution_count"] == 1


async def test_others_see_whose_input_a_cell_waits_for(web: Cluster, browser: Browser) -> None:
    notebook, _ = notebook_with_code(
        web.api("ann"), ["name = input('Your name? ')\nprint('hi', name)"]
    )
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await run_first_cell(mine)
        form = mine.locator(".cell").first.locator("form.input-request")
        await expect(form).to_be_visible(timeout=60_000)
        note = theirs.locator(".cell").first.get_by_test_id("input-wait")
        await expect(note).to_have_text("Waiting for input from ann: Your name?")
        await expect(theirs.get_by_test_id("runtime")).to_contain_text("waiting for input from ann")
        await expect(theirs.locator("form.input-request")).to_have_count(0)
        # A reload does not lose ann's prompt.
        await mine.reload()
        await open_notebook(mine, notebook)
        await expect(form).to_be_visible()
        await form.locator("input").fill("Ann")
        await form.get_by_role("button", name="Send").click()
        for page in (mine, theirs):
            cell = page.locator(".cell").first
            await expect(cell.get_by_test_id("outputs")).to_contain_text("hi Ann", timeout=30_000)
        await expect(note).to_have_count(0)


async def test_a_demoted_member_with_an_editor_link_is_explained(
    web: Cluster, browser: Browser
) -> None:
    ann, ben = web.api("ann"), web.api("ben")
    notebook, _ = notebook_with_code(ann, ["x = 1"])
    created = ann.client.post(
        f"/api/notebooks/{notebook}/links", json={"role": "editor", "label": "team"}
    )
    assert created.status_code == 201, created.text
    redeemed = ben.client.post("/api/links/redeem", json={"token": created.json()["token"]})
    assert redeemed.status_code == 200, redeemed.text
    ann.share(notebook, "ben", "viewer")  # demoted, but the link still makes him an editor
    context = await signed_in(browser, web, "ann")
    try:
        page = await context.new_page()
        await open_notebook(page, notebook)
        await page.get_by_test_id("open-share").click()
        row = page.locator("li[data-member='ben']")
        await expect(row.get_by_test_id("member-effective")).to_contain_text(
            "viewer · editor through a share link"
        )
        await expect(page.get_by_test_id("links")).to_contain_text(re.compile("opened by ben"))
        await row.get_by_role("button", name=re.compile("revoke “team”")).click()
        await expect(row).to_be_visible()
        await expect(row.get_by_test_id("member-effective")).to_have_count(0)
        assert ben.client.get(f"/api/notebooks/{notebook}").json()["role"] == "viewer"
    finally:
        await context.close()
