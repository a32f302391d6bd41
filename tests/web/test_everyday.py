"""What a daily Jupyter / Colab user expects of the editor (issue 11), in Chromium with
two people: HTML outputs that stay drawn while the cell list changes, Tab and Shift+Tab
that indent and stay in the editor, and edits made offline that survive closing the tab."""

from __future__ import annotations

import asyncio
import json
import re

from playwright.async_api import Browser, Dialog, Page, WebSocketRoute, expect

from tests.gateway.conftest import Cluster
from tests.support import notebook_with_code
from tests.support_web import open_notebook, run_module, signed_in
from tests.web.test_editor import ann_and_ben, cells_in, source_in, wait_cells, wait_source

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
        await mine.keyboard.type("return [1]")
        await wait_source(theirs, "def f():\n    return [1]")
        # Tab indents the line by four more; Shift+Tab takes them off again, and both keep
        # the focus in this editor. (After a name Tab completes instead: test_completion.py.)
        await mine.keyboard.press("Tab")
        await wait_source(theirs, "def f():\n        return [1]")
        assert await focused_editor_index(mine) == 0
        await mine.keyboard.press("Shift+Tab")
        await wait_source(theirs, "def f():\n    return [1]")
        assert await focused_editor_index(mine) == 0
        # Shift+Tab then Enter once deleted the cell (the focus was on its Delete button).
        await mine.keyboard.press("Shift+Tab")
        await mine.keyboard.press("Enter")
        await asyncio.sleep(0.3)
        assert await focused_editor_index(mine) == 0
        await wait_source(theirs, "def f():\nreturn [1]\n")
        assert [source for _, source in await cells_in(theirs)] == [
            "def f():\nreturn [1]\n",
            "kept",
        ]
        assert await source_in(mine, 1) == "kept"


async def stores_in(page: Page) -> list[str]:
    """The names of this browser's IndexedDB databases (the notebooks kept locally)."""
    return list(await page.evaluate("async () => (await indexedDB.databases()).map((d) => d.name)"))


async def test_an_offline_edit_is_kept_across_closing_the_tab(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["shared"], title="Train")
    ann.share(notebook, "ben", "editor")
    # Chromium's offline mode leaves an open websocket open: ben's sync socket goes through
    # a route instead, which the test closes and then refuses, as a dead network would.
    cut = False
    sockets: list[WebSocketRoute] = []

    async def route(socket: WebSocketRoute) -> None:
        if cut:
            await socket.close()
            return
        sockets.append(socket)
        socket.connect_to_server()

    contexts = [await signed_in(browser, web, name) for name in ("ann", "ben")]
    try:
        await contexts[1].route_web_socket(re.compile(r"/sync"), route)
        theirs, mine = [await context.new_page() for context in contexts]
        await asyncio.gather(open_notebook(theirs, notebook), open_notebook(mine, notebook))
        cut = True
        for socket in sockets:
            await socket.close()
        await mine.wait_for_function("() => !window.tandem.provider.wsconnected")
        await mine.locator(".cell .cm-content").first.click()
        await mine.keyboard.press("End")
        await mine.keyboard.type(" from the train")
        assert await mine.evaluate("() => window.tandem.unsent.any")
        # Leaving now asks first; the person stays, then closes the tab anyway.
        dialogs: list[str] = []

        async def answer(dialog: Dialog) -> None:
            dialogs.append(dialog.type)
            await dialog.dismiss()

        mine.on("dialog", answer)
        await asyncio.sleep(0.5)  # the browser's own store writes the edit
        await mine.close(run_before_unload=True)
        for _ in range(100):
            if dialogs:
                break
            await asyncio.sleep(0.05)
        assert dialogs == ["beforeunload"]
        await mine.close()
        assert ann.export(notebook)["cells"][0]["source"] == "shared"
        # The network is back: the tab opened again sends what was kept, and everyone gets it.
        cut = False
        again = await contexts[1].new_page()
        await open_notebook(again, notebook)
        for page in (theirs, again):
            await wait_source(page, "shared from the train")
        assert ann.export(notebook)["cells"][0]["source"] == "shared from the train"
        await again.wait_for_function("() => !window.tandem.unsent.any")
        async with again.expect_event("close"):
            await again.close(run_before_unload=True)
        # A deleted notebook leaves nothing behind in the browser of someone who had it open.
        watcher = await contexts[1].new_page()
        await open_notebook(watcher, notebook)
        store = f"tandem:{await watcher.evaluate('() => window.tandem.me.id')}:{notebook}"
        assert store in await stores_in(watcher)
        assert ann.client.delete(f"/api/notebooks/{notebook}").status_code == 204
        await expect(watcher.get_by_role("alert")).to_contain_text("deleted")
        for _ in range(100):
            if store not in await stores_in(watcher):
                break
            await asyncio.sleep(0.05)
        assert store not in await stores_in(watcher)
    finally:
        for context in contexts:
            await context.close()


UNSENT = """await (async () => {
  const Y = await import('yjs')
  const encoding = await import('lib0/encoding')
  const decoding = await import('lib0/decoding')
  const doc = new Y.Doc()
  const provider = { doc, messageHandlers: [() => 0] }
  const unsent = new m.UnsentEdits(provider)
  const updates = []
  doc.on('update', (update) => updates.push(update))
  const fromServer = (kind, payload) => {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, kind)
    encoding.writeVarUint8Array(encoder, payload)
    provider.messageHandlers[0](null, decoding.createDecoder(encoding.toUint8Array(encoder)))
  }
  const seen = [unsent.any]
  doc.getText('t').insert(0, 'a')
  doc.getText('t').insert(1, 'b')
  seen.push(unsent.any)
  fromServer(2, updates[0])
  seen.push(unsent.any)
  fromServer(2, updates[1])
  seen.push(unsent.any)
  doc.getText('t').insert(2, 'c') // offline: the reconnect's step 2 carries it
  fromServer(0, Y.encodeStateVector(new Y.Doc()))
  seen.push(unsent.any)
  fromServer(2, Y.encodeStateAsUpdate(doc))
  seen.push(unsent.any)
  return seen
})()"""


def test_an_edit_is_unsent_until_the_server_echoes_it() -> None:
    assert run_module("offline.js", UNSENT) == [False, True, True, False, True, False]


async def test_split_at_a_line_start_merges_back_unchanged_and_caret_names_show(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["first\nsecond"], title="Split")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await mine.locator(".cell .cm-content").first.click()
        await mine.keyboard.press("Control+Home")
        await mine.keyboard.press("ArrowDown")
        await mine.keyboard.press("Control+Shift+Minus")
        await wait_cells(theirs, [("code", "first"), ("code", "second")])
        await mine.locator(".cell").first.focus()
        await mine.keyboard.press("Shift+M")
        await wait_cells(theirs, [("code", "first\nsecond")])
        # The other person's name is on their caret without hovering it.
        await theirs.locator(".cell .cm-content").first.click()
        name = mine.locator(".cm-ySelectionInfo", has_text="ben")
        await expect(name).to_have_count(1)
        await expect(name).to_have_css("opacity", "1")


async def test_a_viewer_leaves_without_a_prompt_and_keeps_no_copy(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["seen"], title="Read only")
    async with ann_and_ben(browser, web, notebook, ben_role="viewer") as (mine, theirs):
        # A deletion puts a delete set in the sync step 2 the viewer's page sends when it
        # reconnects, which the server drops without an echo: still nothing is unsent.
        await mine.locator(".cell .cm-content").first.click()
        await mine.keyboard.press("End")
        await mine.keyboard.type("x")
        await mine.keyboard.press("Backspace")
        await wait_source(theirs, "seen")
        await theirs.evaluate(
            "() => { window.tandem.provider.disconnect(); window.tandem.provider.connect() }"
        )
        await expect(theirs.get_by_test_id("status")).to_have_attribute("data-state", "connected")
        await theirs.locator(".cell .cm-content").first.click()
        assert not [name for name in await stores_in(theirs) if name.endswith(notebook)]
        dialogs: list[str] = []

        async def answer(dialog: Dialog) -> None:
            dialogs.append(dialog.type)
            await dialog.dismiss()

        theirs.on("dialog", answer)
        async with theirs.expect_event("close", timeout=5_000):
            await theirs.close(run_before_unload=True)
        assert dialogs == []


FRAME = (
    "<style>.mine td { text-align: left }</style>"
    "<table class='dataframe'><thead><tr><th>a</th></tr></thead>"
    "<tbody><tr><td>1</td></tr><tr><td>2</td></tr></tbody></table>"
    "<table class='mine'><tbody><tr><td>own</td></tr></tbody></table>"
)


async def test_markdown_tables_and_dataframes_are_styled(web: Cluster, browser: Browser) -> None:
    ann = web.api("ann")
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "id": "md", "metadata": {}, "source": "| a |\n|---|\n| 1 |"},
            {
                "cell_type": "code",
                "id": "df",
                "metadata": {},
                "source": "df",
                "execution_count": 1,
                "outputs": [
                    {
                        "output_type": "execute_result",
                        "execution_count": 1,
                        "metadata": {},
                        "data": {"text/html": FRAME, "text/plain": "df"},
                    }
                ],
            },
        ],
    }
    response = ann.upload("tables.ipynb", json.dumps(notebook).encode(), title="Tables")
    assert response.status_code == 201, response.text
    context = await signed_in(browser, web, "ann")
    page = await context.new_page()
    await open_notebook(page, response.json()["id"])
    await expect(page.locator(".rendered td")).to_have_css("border-top-style", "solid")
    frame = page.frame_locator("iframe.output-frame")
    await expect(frame.locator("table.dataframe td").first).to_have_css(
        "background-color", "rgba(0, 0, 0, 0)"
    )
    await expect(frame.locator("table.dataframe tbody tr").first).to_have_css(
        "background-color", "rgb(245, 245, 245)"
    )
    await expect(frame.locator("table.dataframe td").first).to_have_css("text-align", "right")
    # The output's own rules win over the frame's look.
    await expect(frame.locator("table.mine td")).to_have_css("text-align", "left")
    await context.close()


async def test_at_760_px_the_side_panel_closes_and_nothing_is_past_the_edge(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["x = 1"], title="A narrow window")
    context = await signed_in(browser, web, "ann")
    page = await context.new_page()
    await page.set_viewport_size({"width": 760, "height": 700})
    await open_notebook(page, notebook)
    await page.get_by_test_id("open-comments").click()
    close = page.get_by_test_id("panel").get_by_title("Close")
    box = await close.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 760, box
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 760
    await close.click()
    await expect(page.get_by_test_id("panel")).to_be_hidden()
    await context.close()
