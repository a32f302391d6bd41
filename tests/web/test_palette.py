"""The command palette (issue 11): Ctrl+Shift+P (⌘+Shift+P) opens every command of the
registry in static/src/commands.js, filtered as one types, run with ↑/↓ and Enter; a
viewer's lacks what only editors may do, and the server refuses those anyway."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.gateway.conftest import Cluster
from tests.support_web import artifact, notebook_with_outputs, run_module
from tests.web.test_editor import ann_and_ben

OUTPUTS = [
    ("print('one')", {"text/plain": "one"}),
    ("print('two')", {"text/plain": "two"}),
]


async def shown_commands(page: Page) -> list[str]:
    return list(
        await page.get_by_test_id("palette")
        .locator("li[data-command]")
        .evaluate_all("(items) => items.map((li) => li.dataset.command)")
    )


async def test_the_palette_filters_and_runs_clear_all_outputs(
    web: Cluster, browser: Browser
) -> None:
    notebook = notebook_with_outputs(web.api("ann"), OUTPUTS, title="Palette")
    everything = run_module("commands.js", "m.commandsFor(true).map((c) => c.id)")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await expect(theirs.get_by_test_id("outputs").locator(".output")).to_have_count(2)
        palette = mine.get_by_test_id("palette")
        # From inside a cell's editor: the palette takes the key before CodeMirror does.
        await mine.locator(".cell .cm-content").first.click()
        await mine.keyboard.press("Control+Shift+P")
        await expect(palette).to_be_visible()
        assert await shown_commands(mine) == everything
        # Each command shows the keys that also run it.
        await expect(palette.locator('li[data-command="insert-below"] kbd')).to_have_text("B")
        await mine.keyboard.type("clear")
        await expect(palette.locator("li[data-command]")).to_have_count(2)
        assert await shown_commands(mine) == ["clear-all-outputs", "clear-output"]
        await expect(palette.locator("li.active")).to_have_attribute(
            "data-command", "clear-all-outputs"
        )
        await mine.screenshot(path=artifact("palette.png"))
        await mine.keyboard.press("ArrowDown")
        await expect(palette.locator("li.active")).to_have_attribute("data-command", "clear-output")
        await mine.keyboard.press("ArrowUp")
        await expect(palette.locator("li.active")).to_have_attribute(
            "data-command", "clear-all-outputs"
        )
        await mine.keyboard.press("Enter")
        await expect(palette).to_have_count(0)
        # Cleared for both: the change went through the shared document.
        for page in (mine, theirs):
            await expect(page.get_by_test_id("outputs").locator(".output")).to_have_count(0)
        # Esc closes without running anything; nothing matching says so.
        await mine.keyboard.press("Control+Shift+P")
        await mine.keyboard.type("zzzz qqq")
        await expect(palette.locator(".palette-empty")).to_be_visible()
        await mine.keyboard.press("Escape")
        await expect(palette).to_have_count(0)


async def test_a_viewers_palette_lacks_the_editors_commands(web: Cluster, browser: Browser) -> None:
    notebook = notebook_with_outputs(web.api("ann"), OUTPUTS, title="Read only")
    for_viewers = run_module("commands.js", "m.commandsFor(false).map((c) => c.id)")
    editors_only = {"restart", "restart-run-all", "clear-all-outputs", "run-all", "rename"}
    assert not editors_only & set(for_viewers)
    async with ann_and_ben(browser, web, notebook, "viewer") as (_, viewer):
        palette = viewer.get_by_test_id("palette")
        await viewer.locator(".cell").first.focus()
        await viewer.keyboard.press("Meta+Shift+P")  # ⌘ on a Mac
        await expect(palette).to_be_visible()
        assert await shown_commands(viewer) == for_viewers
        await viewer.keyboard.type("restart")
        await expect(palette.locator("li[data-command]")).to_have_count(0)
        await viewer.keyboard.press("Escape")
        # Hiding is a courtesy: the server refuses a viewer's restart and rename (asked
        # from the page, so the request is the page's own, cookie and Origin included).
        for method, path, body in (
            ("POST", "kernel/restart", None),
            ("PATCH", "", {"title": "mine now"}),
        ):
            status, detail = await viewer.evaluate(
                """async ([method, url, body]) => {
                    const init = { method, headers: { 'Content-Type': 'application/json' } }
                    if (body) init.body = JSON.stringify(body)
                    const response = await fetch(url, init)
                    return [response.status, (await response.json()).detail]
                }""",
                [method, f"/api/notebooks/{notebook}/{path}".rstrip("/"), body],
            )
            assert status == 403, detail
            assert "origin" not in str(detail)
        await expect(viewer.get_by_test_id("outputs").locator(".output")).to_have_count(2)
