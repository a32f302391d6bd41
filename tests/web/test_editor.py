"""The editor in a real browser (Debian's Chromium through Playwright) against a real
server with a real worker: concurrent typing, cursors, runs, read-only roles, offline
edits, and script payloads that must never run in the page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator

from playwright.async_api import Browser, Locator, Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.gateway.conftest import Cluster
from tests.support import make_people, notebook_with_code
from tests.support_web import artifact, open_notebook, signed_in

PWNED = "() => window.__pwned"


@contextlib.asynccontextmanager
async def ann_and_ben(
    browser: Browser, web: Cluster, notebook: str, ben_role: str = "editor"
) -> AsyncIterator[tuple[Page, Page]]:
    """The notebook open in two browsers: ann's (its owner) and ben's, with `ben_role`."""
    web.api("ann").share(notebook, "ben", ben_role)
    contexts = [await signed_in(browser, web, name) for name in ("ann", "ben")]
    try:
        pages = [await context.new_page() for context in contexts]
        await asyncio.gather(*(open_notebook(page, notebook) for page in pages))
        yield pages[0], pages[1]
    finally:
        for context in contexts:
            await context.close()


async def source_in(page: Page, index: int = 0) -> str:
    """The cell's source in this browser's own replica of the document."""
    return str(
        await page.evaluate(
            "(i) => window.tandem.doc.getArray('cells').get(i).get('source').toString()", index
        )
    )


async def wait_source(page: Page, expected: str, index: int = 0, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (current := await source_in(page, index)) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"cell {index} holds {current!r}, not {expected!r}")
        await asyncio.sleep(0.05)


async def test_two_people_type_in_one_cell_and_see_each_other(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["x = 1"], title="Pair programming")
    async with ann_and_ben(browser, web, notebook) as (page_one, page_two):
        await page_one.locator(".cell .cm-content").first.click()
        await page_one.keyboard.press("End")
        await page_two.locator(".cell .cm-content").first.click()
        await page_two.keyboard.press("Home")
        await asyncio.gather(
            page_one.keyboard.type(" + 2  # ann", delay=15),
            page_two.keyboard.type("y = 0\n", delay=15),
        )
        expected = "y = 0\nx = 1 + 2  # ann"
        for page in (page_one, page_two):
            await wait_source(page, expected)
        assert ann.export(notebook)["cells"][0]["source"] == expected
        # Each sees the other's cursor, with the other's name on it.
        await expect(page_one.locator(".cm-ySelectionInfo", has_text="ben")).to_have_count(1)
        await expect(page_two.locator(".cm-ySelectionInfo", has_text="ann")).to_have_count(1)
        await expect(page_one.get_by_test_id("people").locator(".avatar")).to_have_count(1)


async def test_a_run_in_one_browser_shows_in_the_other_and_interrupt_works(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["", ""], title="Runs")
    async with ann_and_ben(browser, web, notebook) as (runner, watcher):
        await runner.locator(".cell .cm-content").first.click()
        await runner.keyboard.type("print(6 * 7)")
        await runner.keyboard.press("Shift+Enter")
        await expect(watcher.locator(".cell").first.locator(".outputs pre")).to_have_text(
            "42", timeout=30_000
        )
        await expect(watcher.locator(".cell").first.locator(".prompt")).to_have_text("[1]")
        # Shift+Enter moved to the next cell: a long one, then interrupt it.
        await runner.keyboard.type("import time; time.sleep(60)")
        await runner.keyboard.press("Control+Enter")
        await expect(watcher.locator(".cell").nth(1)).to_have_attribute(
            "data-state", "running", timeout=20_000
        )
        await runner.get_by_test_id("interrupt").click()
        await expect(watcher.locator(".cell").nth(1).locator(".outputs")).to_contain_text(
            "KeyboardInterrupt", timeout=20_000
        )
        await runner.screenshot(path=artifact("editor-with-outputs.png"), full_page=True)


async def test_a_viewer_link_cannot_type_or_run(web: Cluster, browser: Browser) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["original = True"], title="Look, don't touch")
    link = ann.client.post(f"/api/notebooks/{notebook}/links", json={"role": "viewer"}).json()
    make_people(web.server.data_dir, ["vic"])
    context = await browser.new_context(base_url=web.server.url)
    response = await context.request.post(
        "/api/auth/login", data={"username": "vic", "password": "vic-password"}
    )
    assert response.ok
    page = await context.new_page()
    await page.goto(f"/links/{link['token']}")
    await page.wait_for_url(f"**/n/{notebook}")
    await open_notebook(page, notebook)
    content = page.locator(".cell .cm-content").first
    await expect(content).to_have_attribute("contenteditable", "false")
    await expect(page.locator(".cell .run")).to_have_count(0)
    await expect(page.get_by_text("Read only: you are a viewer.")).to_be_visible()
    await content.click()
    await page.keyboard.type("vandalism")
    await page.keyboard.press("Shift+Enter")
    await asyncio.sleep(0.5)
    assert ann.export(notebook)["cells"][0]["source"] == "original = True"
    # Even an edit forced into the page's document is refused, and the page says so.
    await page.evaluate("() => window.tandem.cells.get(0).get('source').insert(0, 'forced ')")
    await expect(page.get_by_role("alert")).to_contain_text("Your change was not saved")
    assert ann.export(notebook)["cells"][0]["source"] == "original = True"
    await context.close()


async def test_offline_edits_merge_on_reconnect(web: Cluster, browser: Browser) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["shared"], title="Offline")
    async with ann_and_ben(browser, web, notebook) as (online, offline):
        await offline.context.set_offline(True)
        await expect(offline.get_by_test_id("status")).to_have_attribute("data-state", "offline")
        await offline.locator(".cell .cm-content").first.click()
        await offline.keyboard.press("End")
        await offline.keyboard.type(" from the train")
        await online.locator(".cell .cm-content").first.click()
        await online.keyboard.press("Home")
        await online.keyboard.type("meanwhile ")
        await asyncio.sleep(0.5)
        assert "train" not in ann.export(notebook)["cells"][0]["source"]
        await offline.context.set_offline(False)
        for page in (online, offline):
            await wait_source(page, "meanwhile shared from the train")


PAYLOAD = '<img src=x onerror="window.__pwned=1">'
SCRIPT = "<script>parent.__pwned=1;window.__pwned=1</script>"
SVG = '<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=1">' + SCRIPT + "</svg>"


def hostile_notebook() -> dict[str, object]:
    def output(data: dict[str, object]) -> dict[str, object]:
        return {"output_type": "display_data", "data": data, "metadata": {}}

    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "markdown",
                "id": "md",
                "metadata": {},
                "source": f"# Title {PAYLOAD}\n<script>window.__pwned=1</script>\n"
                "[click](javascript:window.__pwned=1) and $x^2$\n"
                '<svg><script>window.__pwned=1</script><a xlink:href="javascript:window.__pwned=1">'
                "<text y='20'>svg</text></a></svg>",
            },
            {
                "cell_type": "code",
                "id": "code",
                "metadata": {},
                "execution_count": 1,
                "source": "evil()",
                "outputs": [
                    output({"text/html": SCRIPT + PAYLOAD}),
                    output(
                        {
                            "application/javascript": "document.body.textContent = 'ran in the "
                            "frame'; window.parent.__pwned = 1"  # this line throws: cross-origin
                        }
                    ),
                    output({"image/svg+xml": SVG}),
                    output({"text/markdown": f"{PAYLOAD} [x](javascript:window.__pwned=1)"}),
                    output({"text/plain": PAYLOAD}),
                    {
                        "output_type": "stream",
                        "name": "stdout",
                        "text": f"<script>window.__pwned=1</script>{PAYLOAD}\n",
                    },
                    {
                        "output_type": "error",
                        "ename": PAYLOAD,
                        "evalue": PAYLOAD,
                        "traceback": [PAYLOAD],
                    },
                ],
            },
        ],
    }


async def test_script_payloads_never_run_in_the_page(web: Cluster, browser: Browser) -> None:
    evil_name = "<img src=x onerror=window.__pwned=1>"
    people = make_people(web.server.data_dir, [evil_name])
    ann = web.api("ann")
    response = ann.upload("evil.ipynb", json.dumps(hostile_notebook()).encode(), title=PAYLOAD)
    assert response.status_code == 201, response.text
    notebook = response.json()["id"]
    ann.share(notebook, evil_name, "editor")
    thread = {
        "cell_id": "code",
        "body": f"{PAYLOAD} <script>window.__pwned=1</script> [x](javascript:window.__pwned=1)",
    }
    assert ann.client.post(f"/api/notebooks/{notebook}/threads", json=thread).status_code == 201
    ann_context = await signed_in(browser, web, "ann")
    evil_context = await browser.new_context(base_url=web.server.url)
    login = await evil_context.request.post(
        "/api/auth/login", data={"username": evil_name, "password": people[evil_name].password}
    )
    assert login.ok
    page, evil_page = await ann_context.new_page(), await evil_context.new_page()
    await page.goto("/")
    await expect(page.locator("table.notebooks")).to_contain_text(PAYLOAD)
    assert await page.evaluate(PWNED) is None
    await page.screenshot(path=artifact("notebook-list.png"), full_page=True)
    await open_notebook(page, notebook)
    await open_notebook(evil_page, notebook)  # the name shows in presence and cursors
    await expect(page.get_by_test_id("people").locator(".avatar")).to_have_count(1)
    await expect(page.locator(".rendered .katex").first).to_be_visible()
    frames = page.locator("iframe.output-frame")
    await expect(frames).to_have_count(2)
    # The JavaScript output did run, inside its sandboxed frame, and could not reach us.
    await expect(page.frame_locator("iframe.output-frame").nth(1).locator("body")).to_have_text(
        "ran in the frame"
    )
    await page.get_by_test_id("open-comments").click()
    await expect(page.locator(".thread .comment-body img")).to_have_count(1)  # inert
    # No link anywhere may carry a javascript: URL (markdown-it and DOMPurify both refuse).
    await expect(page.locator("a[href^='javascript' i]")).to_have_count(0)
    await expect(page.locator("[*|href^='javascript' i]")).to_have_count(0)
    await asyncio.sleep(1)
    assert await page.evaluate(PWNED) is None
    assert await evil_page.evaluate(PWNED) is None
    await ann_context.close()
    await evil_context.close()


async def test_comments_sharing_and_history_panels(web: Cluster, browser: Browser) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["total = price * qty"], title="Reviewed")
    async with ann_and_ben(browser, web, notebook, "commenter") as (owner, commenter):
        await owner.get_by_test_id("open-comments").click()

        # A commenter selects "price" and comments on it; the owner sees it arrive.
        await commenter.locator(".cell .cm-content").first.click()
        select_price = (
            "[...window.tandem.views.values()][0].view.dispatch({selection: {anchor: 8, head: 13}})"
        )
        await commenter.evaluate(f"() => {select_price}")
        await commenter.locator(".cell button.comment").first.click()
        await commenter.get_by_label("new comment").fill("Is **price** with VAT?")
        await commenter.locator("form.thread.new button[type=submit]").click()
        thread = owner.locator(".thread", has_text="with VAT")
        await expect(thread).to_be_visible()
        await expect(thread.locator(".quote")).to_have_text("“price”")
        await expect(owner.locator(".cell .threads-badge")).to_have_text("1 comment")
        await thread.get_by_label("reply").fill("Yes @ben, it is")
        await thread.get_by_role("button", name="Reply").click()
        # ben finds the mention on his list page, unread, and it leads to the notebook.
        inbox = await commenter.context.new_page()
        await inbox.goto("/")
        mention = inbox.get_by_test_id("mentions").locator("li.unread", has_text="ann: Yes @ben")
        await expect(mention).to_be_visible()
        await mention.get_by_role("link").click()
        await inbox.wait_for_url(f"**/n/{notebook}#thread=*")
        await inbox.close()
        await commenter.get_by_test_id("open-comments").click()
        await expect(commenter.locator(".thread .comment")).to_have_count(2)
        await owner.screenshot(path=artifact("comments-panel.png"))
        # The commenter cannot share or edit: no share tab, a read-only editor.
        await expect(commenter.get_by_test_id("open-share")).to_have_count(0)

        # Sharing: a viewer link, shown once, then revoked.
        await owner.get_by_test_id("open-share").click()
        await owner.get_by_label("link label").fill("for the class")
        await owner.get_by_role("button", name="Create link").click()
        new_link = owner.get_by_test_id("new-link")
        await expect(new_link).to_be_visible()
        value = await new_link.input_value()
        assert value.startswith(f"{web.server.url}/links/tdl_")
        await owner.screenshot(path=artifact("share-dialog.png"))
        await owner.get_by_test_id("links").get_by_role("button", name="revoke").click()
        await expect(owner.get_by_test_id("links")).to_contain_text("ended")

        # History: save a version, change the cell, compare, restore.
        await owner.get_by_test_id("open-history").click()
        await owner.get_by_label("version name").fill("reviewed")
        await owner.get_by_role("button", name="Save version").click()
        version = owner.locator(".versions li", has_text="reviewed")
        await expect(version).to_be_visible()
        await owner.locator(".cell .cm-content").first.click()
        await owner.keyboard.press("End")
        await owner.keyboard.type(" * 2")
        await wait_source(commenter, "total = price * qty * 2")
        await version.get_by_role("button", name="Compare with now").click()
        await expect(owner.locator(".comparison pre.diff")).to_contain_text(
            "+total = price * qty * 2"
        )
        owner.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await version.get_by_role("button", name="Restore").click()
        await wait_source(commenter, "total = price * qty")


async def test_a_500_cell_notebook_creates_editors_as_cells_come_into_view(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, [f"value_{i} = {i}" for i in range(500)], title="Big")
    context = await signed_in(browser, web, "ann")
    page = await context.new_page()
    await open_notebook(page, notebook)
    await expect(page.locator(".cell")).to_have_count(500)
    editors = await page.locator(".cell .cm-editor").count()
    assert 0 < editors < 100, editors
    await page.locator(".cell").nth(499).scroll_into_view_if_needed()
    await expect(page.locator(".cell").nth(499).locator(".cm-editor")).to_be_visible()
    await context.close()


async def test_undo_is_per_person_and_z_brings_back_a_deleted_cell(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, ids = notebook_with_code(ann, ["mid", "second"], title="Undo")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await mine.locator(".cell .cm-content").first.click()
        await mine.keyboard.press("End")
        await mine.keyboard.type(" ann")
        await wait_source(theirs, "mid ann")
        await theirs.locator(".cell .cm-content").first.click()
        await theirs.keyboard.press("Home")
        await theirs.keyboard.type("ben ")
        await wait_source(mine, "ben mid ann")
        await mine.keyboard.press("Control+z")  # undoes ann's typing only
        await wait_source(theirs, "ben mid")
        await wait_source(mine, "ben mid")
        # Esc, D D deletes the cell; Z brings it back, for everyone.
        await mine.keyboard.press("Escape")
        await mine.keyboard.press("d")
        await mine.keyboard.press("d")
        await expect(theirs.locator(".cell")).to_have_count(1)
        await mine.keyboard.press("z")
        await expect(theirs.locator(".cell")).to_have_count(2)
        await wait_source(theirs, "ben mid")
        assert [c["id"] for c in ann.export(notebook)["cells"]] == ids


async def test_input_prompts_the_runner_and_the_runtime_dialog(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(
        ann, ["name = input('Your name?')\nprint('hi', name)"], title="Ask"
    )
    async with ann_and_ben(browser, web, notebook) as (runner, other):
        await runner.locator(".cell .run").first.click()
        answer = runner.get_by_label("Your name?")
        await expect(answer).to_be_visible(timeout=30_000)
        await expect(other.locator(".input-request")).to_have_count(0)  # only the runner is asked
        await answer.fill("Ann")
        await runner.get_by_role("button", name="Send").click()
        await expect(other.locator(".cell .outputs")).to_contain_text("hi Ann", timeout=20_000)
        # "Change runtime type": the server's types; a GPU runtime with no GPU worker waits.
        await runner.get_by_test_id("runtime").click()
        dialog = runner.locator("dialog")
        await dialog.locator("select").select_option("gpu")
        await dialog.get_by_role("button", name="Save").click()
        await expect(other.get_by_test_id("runtime")).to_contain_text(
            "GPU · waiting", timeout=20_000
        )
        assert ann.client.get(f"/api/notebooks/{notebook}/runtime").json()["type"] == "gpu"
        ann.client.post(f"/api/notebooks/{notebook}/kernel/interrupt")


async def test_sign_in_and_the_notebook_list(
    web: Cluster, browser: Browser, tmp_path: object
) -> None:
    make_people(web.server.data_dir, ["lia"])
    context = await browser.new_context(base_url=web.server.url, accept_downloads=True)
    page = await context.new_page()
    await page.goto("/")
    await page.wait_for_url("**/login?next=%2F")
    await page.get_by_label("Username").fill("lia")
    await page.get_by_label("Password").fill("wrong")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("wrong username or password")
    await page.get_by_label("Password").fill("lia-password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("table.notebooks")).to_contain_text("No notebooks yet.")
    # Create: the title is asked for, then the new notebook opens.
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept("Fresh")))
    await page.get_by_role("button", name="New notebook").click()
    await page.wait_for_url("**/n/*")
    await expect(page.get_by_test_id("status")).to_have_attribute("data-state", "connected")
    await page.goto("/")
    # Import by upload.
    upload = json.dumps(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {},
            "cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": "# Imported"}],
        }
    ).encode()
    await page.locator("input[type=file]").set_input_files(
        files=[{"name": "imported.ipynb", "mimeType": "application/json", "buffer": upload}]
    )
    await page.wait_for_url("**/n/*")
    await expect(page.locator(".rendered h1")).to_have_text("Imported")
    await page.goto("/")

    def row_of(title: str) -> Locator:
        return page.locator("tr").filter(has=page.get_by_role("link", name=title, exact=True))

    await expect(row_of("imported")).to_be_visible()
    # Rename, download, delete.
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept("Renamed")))
    await row_of("imported").get_by_role("button", name="Rename").click()
    row = row_of("Renamed")
    await expect(row).to_be_visible()
    async with page.expect_download() as download_info:
        await row.get_by_role("link", name="Download").click()
    download = await download_info.value
    assert download.suggested_filename == "Renamed.ipynb"
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await row.get_by_role("button", name="Delete").click()
    await expect(row_of("Renamed")).to_have_count(0)
    await expect(row_of("Fresh")).to_have_count(1)
    await context.close()


async def test_move_change_type_split_and_merge(web: Cluster, browser: Browser) -> None:
    ann = web.api("ann")
    notebook, ids = notebook_with_code(ann, ["first", "second\nthird"], title="Shapes")
    context = await signed_in(browser, web, "ann")
    page = await context.new_page()
    await open_notebook(page, notebook)

    def cells() -> list[tuple[str, str]]:
        return [(c["cell_type"], c["source"]) for c in ann.export(notebook)["cells"]]

    async def settled(expected: list[tuple[str, str]]) -> None:
        for _ in range(100):
            if cells() == expected:
                return
            await asyncio.sleep(0.05)
        assert cells() == expected

    await page.locator(".cell").first.get_by_title("Move down").click()
    await settled([("code", "second\nthird"), ("code", "first")])
    assert [c["id"] for c in ann.export(notebook)["cells"]] == [ids[1], ids[0]]
    await page.locator(".cell").nth(1).get_by_label("cell type").select_option("markdown")
    await settled([("code", "second\nthird"), ("markdown", "first")])
    # Split the first cell at the end of its first line, then merge it back.
    await page.locator(".cell .cm-content").first.click()
    await page.keyboard.press("Control+Home")
    await page.keyboard.press("End")
    await page.keyboard.press("Control+Shift+Minus")
    await settled([("code", "second"), ("code", "third"), ("markdown", "first")])
    await page.locator(".cell").first.focus()
    await page.keyboard.press("Shift+M")
    await settled([("code", "second\nthird"), ("markdown", "first")])
    await context.close()


async def test_long_outputs_collapse_and_outputs_can_be_cleared(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["for i in range(300):\n    print(i)"], title="Long")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await mine.locator(".cell .run").first.click()
        more = theirs.get_by_role("button", name="Show all 301 lines")
        await expect(more).to_be_visible(timeout=30_000)
        await expect(theirs.locator(".outputs pre.collapsed")).to_have_count(1)
        await more.click()
        await expect(theirs.locator(".outputs pre.collapsed")).to_have_count(0)
        await mine.get_by_role("button", name="Clear output").click()
        await expect(theirs.locator(".cell .outputs .output")).to_have_count(0)
        assert ann.export(notebook)["cells"][0]["outputs"] == []


async def cells_in(page: Page) -> list[tuple[str, str]]:
    """(type, source) of every cell in this browser's own replica of the document."""
    cells = await page.evaluate(
        "() => window.tandem.doc.getArray('cells').toArray()"
        ".map((c) => [c.get('cell_type'), c.get('source').toString()])"
    )
    return [(kind, source) for kind, source in cells]


async def wait_cells(page: Page, expected: list[tuple[str, str]], timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (current := await cells_in(page)) != expected:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the cells are {current!r}, not {expected!r}")
        await asyncio.sleep(0.05)


async def selected_in_command_mode(page: Page) -> int:
    """The index of the selected cell, after checking the page is in command mode: the
    focus is on the cell itself, not on its (or any) editor. A cell just inserted takes
    the focus once it is drawn (a frame later on a loaded machine): waited for; that no
    letter was typed meanwhile, `wait_cells` checks."""
    try:
        found = await page.wait_for_function(
            """() => {
                const active = document.activeElement
                const editing = document.querySelector('.cm-focused')
                if (editing || !active?.matches('section.cell.current')) return null
                return {index: [...document.querySelectorAll('section.cell')].indexOf(active)}
            }""",
            timeout=5000,
        )
    except PlaywrightTimeoutError:
        raise AssertionError("the page left command mode") from None
    return int((await found.json_value())["index"])


async def test_command_keys_never_type_their_letter(web: Cluster, browser: Browser) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["first", "second"], title="Command keys")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await mine.locator(".cell .cm-content").first.click()
        await mine.keyboard.press("Escape")
        # B inserts an empty cell below and selects it, still in command mode; A above.
        await mine.keyboard.press("b")
        await wait_cells(mine, [("code", "first"), ("code", ""), ("code", "second")])
        assert await selected_in_command_mode(mine) == 1
        await mine.keyboard.press("a")
        empty = [("code", "first"), ("code", ""), ("code", ""), ("code", "second")]
        await wait_cells(mine, empty)
        assert await selected_in_command_mode(mine) == 1
        # A further key is a command too: J / K move the selection instead of typing.
        await mine.keyboard.press("j")
        assert await selected_in_command_mode(mine) == 2
        await mine.keyboard.press("k")
        assert await selected_in_command_mode(mine) == 1
        # M and Y change the type and type nothing either.
        await mine.keyboard.press("m")
        await wait_cells(mine, [empty[0], ("markdown", ""), *empty[2:]])
        assert await selected_in_command_mode(mine) == 1
        await mine.keyboard.press("y")
        await wait_cells(mine, empty)
        assert await selected_in_command_mode(mine) == 1
        # So do D D and Z: the cell goes, then comes back, and the page stays in command mode.
        await mine.keyboard.press("d")
        await mine.keyboard.press("d")
        await wait_cells(mine, [empty[0], *empty[2:]])
        assert await selected_in_command_mode(mine) == 1
        await mine.keyboard.press("z")
        await wait_cells(mine, empty)
        assert await selected_in_command_mode(mine) == 2  # the same cell, one further down
        await mine.keyboard.press("k")
        assert await selected_in_command_mode(mine) == 1
        await wait_cells(theirs, empty)
        await expect(theirs.locator(".cell")).to_have_count(4)
        # Ben adds a cell at the end the same way; ann's page keeps her selection.
        await theirs.locator(".cell .cm-content").last.click()
        await theirs.keyboard.press("Escape")
        await theirs.keyboard.press("b")
        empty.append(("code", ""))
        await wait_cells(theirs, empty)
        assert await selected_in_command_mode(theirs) == 4
        await wait_cells(mine, empty)
        assert await selected_in_command_mode(mine) == 1
        # Enter edits the selected cell; what is typed then goes into it, and only it.
        await mine.keyboard.press("Enter")
        await mine.keyboard.type("x")
        await wait_cells(theirs, [empty[0], ("code", "x"), *empty[2:]])
        assert [(c["cell_type"], c["source"]) for c in ann.export(notebook)["cells"]] == [
            empty[0],
            ("code", "x"),
            *empty[2:],
        ]


async def test_the_runtime_badge_shows_usage_against_limits_and_the_sandbox(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    # 64 MiB written (not just reserved), so the kernel's RAM visibly holds it.
    notebook, _ = notebook_with_code(
        ann, ["ballast = b'x' * (64 * 2**20)\nprint(len(ballast))"], title="Usage"
    )
    async with ann_and_ben(browser, web, notebook) as (runner, watcher):
        await runner.locator(".cell .run").first.click()
        await expect(watcher.locator(".cell .outputs pre")).to_have_text(
            str(64 * 2**20), timeout=30_000
        )
        for page in (runner, watcher):
            ram = page.get_by_test_id("runtime-usage").locator("[data-name='ram']")
            await expect(ram).to_be_visible()
            # "RAM 312 MB / 400 MB" (or "RAM 312 MB" where there is no limit).
            await expect(ram).to_have_text(re.compile(r"^RAM \d+ MB( / [\d.]+ [MG]B)?$"))
            await expect(ram).to_have_text(re.compile(r"^RAM (6[4-9]|[7-9]\d|\d{3,}) MB"))
            mark = page.get_by_test_id("runtime-sandbox")
            await expect(mark).to_have_text("sandboxed")
            await expect(mark).to_have_attribute("data-level", "quiet")
            await expect(mark).to_have_attribute("title", re.compile("bubblewrap sandbox"))
        # The full figures: in the tooltip, and in the "Change runtime type" dialog.
        await expect(runner.get_by_test_id("runtime-usage")).to_have_attribute(
            "title", re.compile(r"^RAM: \d+ MB .*[\d,]+ .*bytes$", re.MULTILINE)
        )
        await runner.get_by_test_id("runtime").click()
        detail = runner.locator("dialog").get_by_test_id("runtime-detail")
        await expect(detail).to_contain_text("Processes:")
        await expect(detail).to_contain_text("Sandbox: Kernels run in a bubblewrap sandbox.")
        await runner.locator("dialog").get_by_role("button", name="Cancel").click()
        await runner.screenshot(path=artifact("editor-runtime-usage.png"))


async def test_the_badge_says_loudly_when_kernels_are_unsandboxed(
    web: Cluster, browser: Browser
) -> None:
    """How the badge shows what the server says, for states a sandboxed test worker never
    reaches: fed to it as the events channel would (no kernel runs, so nothing overwrites)."""
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, [""], title="Badge states")
    status = ann.client.get(f"/api/notebooks/{notebook}/runtime").json()
    async with ann_and_ben(browser, web, notebook) as (page, _):
        await expect(page.get_by_test_id("runtime")).to_contain_text("CPU · ")
        show = "(runtime) => window.tandem.showRuntime(runtime)"
        usage = {
            "memory_bytes": 312 * 2**20,
            "disk_bytes": 3 * 2**30,
            "gpu_memory_bytes": None,
            "limits": {"memory_mb": 400, "cpus": 1, "max_processes": 64, "disk_mb": 0},
        }
        # Starting: what it waits for is written out, not only in a tooltip.
        reason = "building environment 'default' (once)"
        await page.evaluate(show, {**status, "status": "starting", "reason": reason})
        await expect(page.get_by_test_id("runtime-reason")).to_have_text(reason)
        await expect(page.get_by_test_id("runtime-reason")).to_be_visible()
        unsandboxed = {"kind": "none", "limits": "none", "detail": "UNSANDBOXED: kernels run as"}
        await page.evaluate(
            show, {**status, "status": "idle", "sandbox": unsandboxed, "usage": usage}
        )
        await expect(page.get_by_test_id("runtime-reason")).to_be_hidden()
        usage_badge = page.get_by_test_id("runtime-usage")
        await expect(usage_badge.locator("[data-name='ram']")).to_have_text("RAM 312 MB / 400 MB")
        await expect(usage_badge.locator("[data-name='ram'] meter")).to_have_attribute(
            "value", "0.78"
        )
        await expect(usage_badge.locator("[data-name='disk']")).to_have_text("Disk 3.0 GB")
        await expect(usage_badge.locator("[data-name='gpu']")).to_have_count(0)
        mark = page.get_by_test_id("runtime-sandbox")
        await expect(mark).to_have_text("UNSANDBOXED")
        await expect(mark).to_have_attribute("data-level", "danger")
        await expect(mark).to_have_attribute("title", unsandboxed["detail"])
        await page.screenshot(path=artifact("editor-runtime-unsandboxed.png"))
        # No sandbox can be made: why, in the badge itself; text stays text.
        why = "bubblewrap cannot make a sandbox here: <b>no user namespaces</b>"
        await page.evaluate(
            show,
            {**status, "status": "stopped", "sandbox": {"kind": "unavailable", "detail": why}},
        )
        await expect(mark).to_have_text(f"Kernels cannot start: {why}")
        await expect(mark.locator("b")).to_have_count(0)
        await expect(usage_badge).to_be_hidden()
