"""The keyboard shortcut help (issue 11): H in command mode and the "?" button open a
dialog drawn from the tables the key handling reads (static/src/commands.js); Esc closes."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.gateway.conftest import Cluster
from tests.support import notebook_with_code
from tests.support_web import artifact, open_notebook, run_module, signed_in


def test_every_key_the_palette_shows_is_bound_by_a_table() -> None:
    """A command's keys in the registry are keys some table handles: the palette never
    shows a shortcut that does nothing."""
    assert run_module("commands.js", "m.unboundKeys()") == []


def test_keys_are_named_as_people_read_them() -> None:
    names = ["a", "M", "d d", "Mod-Shift--", "Mod-Shift-P", "Shift-Enter", "ArrowUp", "Escape"]
    assert run_module("commands.js", "args[0].map((k) => m.keyLabel(k))", names) == [
        "A",
        "Shift+M",
        "D, D",
        "Ctrl+Shift+-",
        "Ctrl+Shift+P",
        "Shift+Enter",
        "↑",
        "Esc",
    ]
    assert run_module("commands.js", "m.keyLabel('Mod-Enter', true)") == "⌘+Enter"


async def test_h_opens_the_shortcut_help_listed_from_the_key_tables(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["x = 1", "y = 2"], title="Keys")
    groups = run_module("commands.js", "m.shortcutList()")
    rows = [{**row, "mode": mode} for mode, group in groups.items() for row in group]
    keys = [row["key"] for row in rows]
    labels = run_module("commands.js", "args[0].map((key) => m.keyLabel(key))", keys)
    # The three tables are all there: command mode's, edit mode's and the page's.
    assert {"d d", "h", "M", "Enter"} <= set(keys)
    assert {"Shift-Tab", "Mod-Shift--", "Escape"} <= set(keys)
    assert "Mod-Shift-P" in keys
    context = await signed_in(browser, web, "ann")
    try:
        page = await context.new_page()
        await open_notebook(page, notebook)
        dialog = page.get_by_test_id("shortcuts")
        await expect(dialog).to_have_count(0)
        await page.locator(".cell").nth(1).focus()
        await page.keyboard.press("h")
        await expect(dialog).to_be_visible()
        await expect(dialog.locator("tr[data-key]")).to_have_count(len(keys))
        await page.emulate_media(color_scheme="dark")
        await page.screenshot(path=artifact("shortcuts-dark.png"))
        for row, label in zip(rows, labels, strict=True):
            line = dialog.locator(f'[data-mode="{row["mode"]}"] tr[data-key="{row["key"]}"]')
            await expect(line.locator("kbd")).to_have_text(label)
            await expect(line).to_contain_text(row["label"])
        # H typed nothing anywhere, and Esc closes the help and gives the cell back its
        # focus: command mode goes on (J selects the next cell... there is none: K, up).
        await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)
        assert await page.evaluate("() => document.activeElement.dataset.cellId") == "cell-1"
        await page.keyboard.press("k")
        assert await page.evaluate("() => document.activeElement.dataset.cellId") == "cell-0"
        sources = await page.evaluate(
            "() => window.tandem.cells.toArray().map((c) => c.get('source').toString())"
        )
        assert sources == ["x = 1", "y = 2"]
        # The "?" in the top bar opens the same list.
        await page.get_by_test_id("open-shortcuts").click()
        await expect(dialog.locator("tr[data-key]")).to_have_count(len(keys))
        await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)
    finally:
        await context.close()
