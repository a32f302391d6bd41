"""Tab completion and Shift+Tab documentation in the cell editor: the pure parts
(static/src/completion.js) under Node, then the editor in a real browser against a real
kernel."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.gateway.conftest import Cluster
from tests.support import notebook_with_code
from tests.support_web import open_notebook, run_module, signed_in


def call(function: str, *args: Any) -> Any:
    return run_module("completion.js", f"m.{function}(...args)", *args)


def test_positions_convert_between_utf16_and_code_points() -> None:
    text = "s = '😀é'; len"
    # The emoji is two UTF-16 units and one code point.
    assert call("toCodePoints", text, len(text.encode("utf-16-le")) // 2) == len(text)
    assert call("toUtf16", text, len(text)) == len(text.encode("utf-16-le")) // 2
    assert call("toCodePoints", text, 7) == 6
    assert call("toUtf16", text, 6) == 7
    assert call("toUtf16", "ab", 10) == 2


def test_tab_completes_after_a_name_and_indents_elsewhere() -> None:
    assert call("tabAction", "os.pa") == "complete"
    assert call("tabAction", "os.") == "complete"
    assert call("tabAction", "    x = é") == "complete"
    assert call("tabAction", "") == "indent"
    assert call("tabAction", "    ") == "indent"
    assert call("tabAction", "f(x, ") == "indent"
    assert call("tabAction", "len", True) == "indent"
    assert call("inspectAt", "len") is True
    assert call("inspectAt", "len(") is False
    assert call("inspectAt", "") is False


def test_word_fallback_draws_on_every_cell() -> None:
    assert call("wordBefore", "x = os.pa") == "pa"
    assert call("wordBefore", "x = ") == ""
    texts = ["alpha = 1\nalphabet = 'a'", "print(alpha, alpine)", "alpha"]
    assert call("wordMatches", texts, "alp") == ["alpha", "alphabet", "alpine"]
    assert call("wordMatches", texts, "alpha") == ["alphabet"]


def test_kernel_reply_becomes_utf16_options() -> None:
    code = "é😀 = os.pa"
    reply = {
        "status": "ok",
        "matches": ["pardir", "path"],
        "types": ["statement", "module"],
        "cursor_start": 8,
        "cursor_end": 10,
    }
    assert call("kernelOptions", code, reply) == {
        "from": 9,
        "to": 11,
        "options": [
            {"label": "pardir", "detail": "statement"},
            {"label": "path", "detail": "module"},
        ],
    }
    for fallback in ({"status": "busy", "matches": []}, {**reply, "matches": []}, None):
        assert call("kernelOptions", code, fallback) is None


async def source_of(page: Page, index: int) -> str:
    return str(
        await page.evaluate(
            "(i) => window.tandem.doc.getArray('cells').get(i).get('source').toString()", index
        )
    )


async def accept(page: Page, label: str, key: str = "Enter") -> None:
    """Moves the completion popup's selection to `label` and accepts it with `key`."""
    popup = page.locator(".cm-tooltip-autocomplete")
    await expect(popup.locator(".cm-completionLabel", has_text=label).first).to_be_visible()
    labels = await popup.locator(".cm-completionLabel").all_text_contents()
    # CodeMirror ignores keys for its interactionDelay (75 ms) after the list opens.
    await page.wait_for_timeout(200)
    for _ in range(labels.index(label)):
        await page.keyboard.press("ArrowDown")
    await page.keyboard.press(key)


async def test_tab_completes_from_the_kernel_and_shift_tab_shows_docs(
    web: Cluster, browser: Browser
) -> None:
    notebook, _ = notebook_with_code(web.api("ann"), ["import os", ""], title="Completion")
    context = await signed_in(browser, web, "ann")
    try:
        page = await context.new_page()
        await open_notebook(page, notebook)
        await page.locator(".cell .cm-content").first.click()
        await page.keyboard.press("Shift+Enter")
        await expect(page.locator(".cell").first.locator(".prompt")).to_have_text(
            "[1]", timeout=30_000
        )
        # Shift+Enter moved to the second cell.
        await page.keyboard.type("os.pa")
        await page.keyboard.press("Tab")
        await accept(page, "path")
        assert await source_of(page, 1) == "os.path"
        await page.keyboard.press("Enter")
        await page.keyboard.type("len")
        await page.keyboard.press("Shift+Tab")
        inspect = page.locator(".cell").nth(1).get_by_test_id("inspect")
        await expect(inspect).to_contain_text("Return the number of items")
        await page.keyboard.press("Escape")
        await expect(inspect).to_be_hidden()
        assert await source_of(page, 1) == "os.path\nlen"
        # At a line's start Tab indents, and Shift+Tab dedents.
        await page.keyboard.press("Enter")
        await page.keyboard.press("Tab")
        assert await source_of(page, 1) == "os.path\nlen\n    "
        await page.keyboard.press("Shift+Tab")
        assert await source_of(page, 1) == "os.path\nlen\n"
    finally:
        await context.close()


async def test_without_a_kernel_tab_completes_words_from_the_notebook(
    web: Cluster, browser: Browser
) -> None:
    notebook, _ = notebook_with_code(web.api("ann"), ["", "counter_total = 0"], title="No kernel")
    context = await signed_in(browser, web, "ann")
    try:
        page = await context.new_page()
        await open_notebook(page, notebook)
        await page.locator(".cell .cm-content").first.click()
        await page.keyboard.type("counter_")
        await page.keyboard.press("Tab")
        await accept(page, "counter_total", "Tab")
        assert await source_of(page, 0) == "counter_total"
        await page.keyboard.press("Shift+Tab")
        await expect(page.locator(".cell").first.get_by_test_id("inspect")).to_contain_text(
            "No kernel runs"
        )
    finally:
        await context.close()
