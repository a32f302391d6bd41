"""Comments in a real browser with two people: commented text is highlighted in the other
person's page and stays on its words while the owner types, a click on it opens the thread,
the comment badge is fully visible, @mentions are drawn as mentions, an unknown @name is
refused with the draft kept, and a mention on the list page leads to its thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.gateway.conftest import Cluster, running_cluster
from tests.support import notebook_with_code
from tests.support_web import artifact, open_notebook, run_module, signed_in

NEW_COMMENT = "form.thread.new"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A server without workers: nothing here runs code."""
    with running_cluster(tmp_path_factory.mktemp("comments")) as cluster:
        yield cluster


@contextlib.asynccontextmanager
async def ann_and_ben(browser: Browser, site: Cluster, notebook: str) -> AsyncIterator[list[Page]]:
    site.api("ann").share(notebook, "ben", "commenter")
    contexts = [await signed_in(browser, site, name) for name in ("ann", "ben")]
    try:
        pages = [await context.new_page() for context in contexts]
        await asyncio.gather(*(open_notebook(page, notebook) for page in pages))
        yield pages
    finally:
        for context in contexts:
            await context.close()


async def comment_on(page: Page, start: int, end: int, body: str) -> None:
    """Select [start, end) of the first cell and start a thread there with `body`."""
    await page.locator(".cell .cm-content").first.click()
    await page.evaluate(
        "([a, b]) => [...window.tandem.views.values()][0].view.dispatch("
        "{selection: {anchor: a, head: b}})",
        [start, end],
    )
    await page.locator(".cell button.comment").first.click()
    await page.get_by_label("new comment").fill(body)
    await page.locator(f"{NEW_COMMENT} button[type=submit]").click()


async def effective_opacity(page: Page, selector: str) -> float:
    return float(
        await page.eval_on_selector(
            selector,
            "(el) => { let o = 1; for (let e = el; e; e = e.parentElement) "
            "o *= Number(getComputedStyle(e).opacity); return o }",
        )
    )


async def test_commented_text_is_highlighted_for_the_other_person_and_opens_the_thread(
    site: Cluster, browser: Browser
) -> None:
    notebook, _ = notebook_with_code(site.api("ann"), ["total = price * qty"], title="Marked")
    async with ann_and_ben(browser, site, notebook) as (ann, ben):
        await comment_on(ann, 8, 13, "Is this with VAT, @ben?")
        mark = ben.locator(".cell .cm-comment-mark")
        await expect(mark).to_have_text("price")
        # ann types before it and inside the line: the highlight stays on its words.
        await ann.locator(".cell .cm-content").first.click()
        await ann.keyboard.press("Control+Home")
        await ann.keyboard.type("# net\n", delay=20)
        await expect(ben.locator(".cell .cm-content").first).to_contain_text("# net")
        await expect(mark).to_have_text("price")
        # The badge is not faint while the cell waits unhovered and unfocused.
        await ben.mouse.move(0, 0)
        await ben.evaluate("() => document.activeElement?.blur()")
        badge = ".cell .threads-badge"
        await expect(ben.locator(badge)).to_have_text("1 comment")
        assert await effective_opacity(ben, badge) == pytest.approx(1.0)
        # A click on the highlight opens that thread in the side panel.
        await expect(ben.get_by_test_id("panel")).to_be_hidden()
        await mark.click()
        thread = ben.locator("article.thread.focused")
        await expect(thread).to_be_visible()
        await expect(thread).to_contain_text("Is this with VAT")
        # The mention is drawn as one, in both pages.
        await expect(thread.locator(".comment-body .mention")).to_have_text("@ben")
        await ann.get_by_test_id("open-comments").click()
        await expect(ann.locator(".thread .comment-body .mention")).to_have_text("@ben")
        await ben.screenshot(path=artifact("comment-highlight.png"))
        # Resolved, the highlight goes.
        await thread.get_by_role("button", name="Resolve").click()
        await expect(mark).to_have_count(0)


async def test_an_unknown_name_is_refused_and_the_draft_kept(
    site: Cluster, browser: Browser
) -> None:
    notebook, _ = notebook_with_code(site.api("ann"), ["x = 1"], title="Typo")
    async with ann_and_ben(browser, site, notebook) as (ann, _ben):
        draft = "Ask @benn about it"
        await comment_on(ann, 0, 1, draft)
        error = ann.get_by_test_id("comment-error")
        await expect(error).to_have_text("no one who can read this notebook is called @benn")
        await expect(ann.get_by_label("new comment")).to_have_value(draft)
        await expect(ann.locator("article.thread")).to_have_count(0)
        # Corrected, it goes through.
        await ann.get_by_label("new comment").fill("Ask @ben about it")
        await ann.locator(f"{NEW_COMMENT} button[type=submit]").click()
        await expect(ann.locator("article.thread .mention")).to_have_text("@ben")
        await expect(ann.locator(NEW_COMMENT)).to_have_count(0)


async def test_a_mention_on_the_list_page_opens_its_thread(site: Cluster, browser: Browser) -> None:
    notebook, _ = notebook_with_code(site.api("ann"), ["y = 2", "z = 3"], title="Pinged")
    async with ann_and_ben(browser, site, notebook) as (ann, ben):
        await comment_on(ann, 0, 1, "@ben see y")
        await expect(ann.locator("article.thread")).to_have_count(1)
        await ben.goto("/")
        mention = ben.get_by_test_id("mentions").locator("li.unread", has_text="ann: @ben see y")
        await mention.get_by_role("link").click()
        await ben.wait_for_url(f"**/n/{notebook}#thread=*")
        thread = ben.locator("article.thread.focused")
        await expect(thread).to_contain_text("see y")
        await expect(thread.locator(".mention")).to_have_text("@ben")


def test_ranges_count_characters_as_the_server_does() -> None:
    """The API's offsets are code points; CodeMirror's are UTF-16 units."""
    text = "a😀b price"
    threads = [
        {"id": "t1", "cell_id": "c", "resolved": False, "orphaned": False,
         "anchor": {"start": 4, "end": 9}},
        {"id": "t2", "cell_id": "c", "resolved": True, "orphaned": False,
         "anchor": {"start": 0, "end": 1}},
        {"id": "t3", "cell_id": "other", "resolved": False, "orphaned": False,
         "anchor": {"start": 0, "end": 1}},
    ]  # fmt: skip
    ranges = run_module("mentions.js", "m.threadRanges(...args)", text, threads, "c")
    assert ranges == [{"from": 5, "to": 10, "id": "t1"}]
    assert text.encode("utf-16-le")[10:20].decode("utf-16-le") == "price"
    parts = run_module("mentions.js", "m.mentionParts(...args)", "hi @ben. a@b.c @eve", ["ben"])
    assert parts == ["hi ", {"mention": "ben"}, ". a@b.c @eve"]
