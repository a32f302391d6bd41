"""Renaming in the editor (issue 11): an editor clicks the title, types, Enter saves through
the rename API and the other people's pages show the new title at once (the events
channel's notebook.renamed); Esc cancels; a viewer cannot, in the page or on the server."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.gateway.conftest import Cluster
from tests.support import notebook_with_code
from tests.web.test_editor import PWNED, ann_and_ben

HOSTILE = '<img src=x onerror="window.__pwned = 1">'


async def test_renaming_in_the_editor_shows_in_the_other_page(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["x = 1"], title="Draft")
    async with ann_and_ben(browser, web, notebook, "viewer") as (mine, theirs):
        title, input_ = mine.get_by_test_id("title"), mine.get_by_test_id("title-input")
        await title.click()
        await expect(input_).to_be_focused()
        await expect(input_).to_have_value("Draft")
        await mine.keyboard.type("Quarterly report")  # the old title was selected: replaced
        await mine.keyboard.press("Enter")
        await expect(input_).to_have_count(0)
        for page in (mine, theirs):
            await expect(page.get_by_test_id("title")).to_have_text("Quarterly report")
        assert ann.client.get(f"/api/notebooks/{notebook}").json()["title"] == "Quarterly report"
        await expect(theirs).to_have_title("Quarterly report · Tandem")
        # Esc cancels: nothing is sent, nothing changes.
        await title.click()
        await mine.keyboard.type("Not this")
        await mine.keyboard.press("Escape")
        await expect(title).to_have_text("Quarterly report")
        assert ann.client.get(f"/api/notebooks/{notebook}").json()["title"] == "Quarterly report"
        # A title is text, on every page, whatever it holds.
        await title.click()
        await mine.keyboard.type(HOSTILE)
        await mine.keyboard.press("Enter")
        await expect(theirs.get_by_test_id("title")).to_have_text(HOSTILE)
        assert await theirs.evaluate(PWNED) is None
        # The viewer's title is no field, and the server refuses the viewer's rename.
        await theirs.get_by_test_id("title").click()
        await expect(theirs.get_by_test_id("title-input")).to_have_count(0)
        status = await theirs.evaluate(
            """async (url) => (await fetch(url, { method: 'PATCH',
                headers: { 'Content-Type': 'application/json' },
                body: JSON.stringify({ title: 'mine now' }) })).status""",
            f"/api/notebooks/{notebook}",
        )
        assert status == 403
        assert ann.client.get(f"/api/notebooks/{notebook}").json()["title"] == HOSTILE
