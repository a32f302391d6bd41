"""Issue 12 in a real browser (Debian's Chromium through Playwright) against a real server:
an overlay posted as a comment, a markdown cell or a markdown output stays inside its box
and the page's own controls stay clickable; the login page never sends you to another
site; a notebook holding values that break the schema shows them as placeholders an editor
can delete."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.async_api import Browser, Locator, Page, expect
from pycrdt import Array, Doc, Map, Text

from tests.gateway.conftest import Cluster
from tests.support_schema import plant
from tests.support_web import artifact, open_notebook, signed_in

EVIL = "https://evil.example/login"
# The overlay of the issue, and what else could lift content out of its box: the page's
# own fixed/sticky classes and ids, and the top layer (a popover a click would open).
OVERLAY = (
    '<div style="position:fixed; inset:0; z-index:2147483647; background:white; color:#b42318;'
    ' font-weight:700; text-align:center">Session expired <a href="' + EVIL + '">Sign in</a></div>'
    '<div class="toast bar panel" id="toasts" style="margin-top:-9999px">Borrowed classes</div>'
    '<button popovertarget="user-content-phish">Read more</button>'
    '<div id="phish" popover>Popover phish</div>'
    "<svg><style>.bar { display: none }</style></svg>"
)


def overlay_notebook() -> dict[str, Any]:
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "markdown", "id": "md", "metadata": {}, "source": OVERLAY},
            {
                "cell_type": "code",
                "id": "code",
                "metadata": {},
                "execution_count": 1,
                "source": "show()",
                "outputs": [
                    {
                        "output_type": "display_data",
                        "data": {"text/markdown": OVERLAY, "text/plain": "overlay"},
                        "metadata": {},
                    }
                ],
            },
        ],
    }


async def box(locator: Locator) -> dict[str, float]:
    found = await locator.bounding_box()
    assert found is not None, f"{locator} has no box"
    return dict(found)


async def assert_contained(content: Locator, container: Locator) -> None:
    """The overlay in `content` is laid out in the flow, inside `container`'s box, its link
    harmless, and borrows none of the page's classes or ids."""
    overlay = content.get_by_text("Session expired")
    await expect(overlay).to_be_visible()
    assert await overlay.evaluate("(e) => getComputedStyle(e).position") == "static"
    assert await overlay.evaluate("(e) => getComputedStyle(e).zIndex") == "auto"
    inner, outer = await box(overlay), await box(container)
    assert inner["x"] >= outer["x"] - 1 and inner["y"] >= outer["y"] - 1, (inner, outer)
    assert inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1, (inner, outer)
    assert inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1, (inner, outer)
    # The look is kept: its colour and weight, not its position.
    assert await overlay.evaluate("(e) => getComputedStyle(e).color") == "rgb(180, 35, 24)"
    link = overlay.get_by_role("link", name="Sign in")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(link).to_have_attribute("target", "_blank")
    borrowed = content.get_by_text("Borrowed classes", exact=True)
    await expect(borrowed).to_have_attribute("class", "user-toast user-bar user-panel")
    await expect(borrowed).to_have_attribute("id", "user-content-toasts")
    assert await borrowed.evaluate("(e) => getComputedStyle(e).marginTop") == "0px"


async def test_an_overlay_stays_inside_its_comment_cell_and_output(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    response = ann.upload("overlay.ipynb", json.dumps(overlay_notebook()).encode())
    assert response.status_code == 201, response.text
    notebook = response.json()["id"]
    ann.share(notebook, "ben", "commenter")
    thread = {"cell_id": "code", "body": OVERLAY}
    posted = web.api("ben").client.post(f"/api/notebooks/{notebook}/threads", json=thread)
    assert posted.status_code == 201, posted.text

    context = await signed_in(browser, web, "ann")
    page = await context.new_page()
    await open_notebook(page, notebook)
    await page.get_by_test_id("open-comments").click()
    comment = page.locator(".thread .comment-body")
    await expect(comment.get_by_text("Session expired")).to_be_visible()
    await page.screenshot(path=artifact("overlay-contained.png"))

    places = {
        "comment": (comment, page.get_by_test_id("panel")),
        "markdown cell": (
            page.locator(".cell[data-cell-id='md'] .rendered"),
            page.locator(".cell").first,
        ),
        "markdown output": (page.locator(".output .markdown"), page.locator(".output").first),
    }
    for content, container in places.values():
        await assert_contained(content, container)
    # Nothing can open in the top layer and no style sheet came along.
    await expect(page.locator("[popover], [popovertarget]")).to_have_count(0)
    user_content = ":is(.comment-body, .rendered, .output)"
    await expect(page.locator(f"{user_content} :is(style, form)")).to_have_count(0)
    await expect(page.locator("header.bar")).to_be_visible()

    # The page's own controls still take clicks (Playwright checks that nothing covers them).
    await page.get_by_role("button", name="+ Code").click(timeout=5_000)
    await expect(page.locator(".cell")).to_have_count(3)
    await page.get_by_test_id("open-history").click(timeout=5_000)
    await expect(page.get_by_label("version name")).to_be_visible()
    await context.close()


@pytest.mark.parametrize(
    "next_",
    ["/%5C127.0.0.1:1/x", "//evil.example", "https://evil.example", "javascript:alert(1)"],
)
async def test_login_never_sends_you_to_another_site(
    web: Cluster, browser: Browser, next_: str
) -> None:
    ben = web.person("ben")
    context = await browser.new_context(base_url=web.server.url)
    page = await context.new_page()
    # The first as the issue has it (already escaped); the others as a link would carry them.
    await page.goto(f"/login?next={next_ if '%' in next_ else quote(next_, safe='')}")
    await page.get_by_label("Username").fill(ben.username)
    await page.get_by_label("Password").fill(ben.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(lambda url: "/login" not in url)
    assert urlsplit(page.url).netloc == urlsplit(web.server.url).netloc, page.url
    await expect(page.locator("table.notebooks")).to_be_visible()
    await context.close()


# What slipped into stored documents before the server guarded the schema (issue 12).
def _bad_cell(**fields: Any) -> Map[Any]:
    cell: dict[str, Any] = {
        "id": "bad",
        "cell_type": "code",
        "source": Text("x"),
        "metadata": Map(),
        "outputs": Array(),
        "execution_count": None,
    }
    cell.update(fields)
    return Map({key: value for key, value in cell.items() if value is not None})


def _poison(doc: Doc[Any]) -> None:
    cells: Array[Any] = doc.get("cells", type=Array)
    cells.extend([1.5, "not a cell", Text("not a cell either")])
    cells.append(_bad_cell(id=None))
    cells.append(_bad_cell(cell_type="nonsense"))
    cells.append(_bad_cell(source=7))
    cells.append(_bad_cell(outputs="oops"))
    stream = Map({"output_type": "stream", "name": "stdout", "text": Map({"a": "b"})})
    cells[0]["outputs"].append(stream)


BAD_CELLS = 7


async def placeholders(page: Page) -> Locator:
    rows = page.get_by_test_id("unrenderable-cell")
    await expect(rows).to_have_count(BAD_CELLS)
    return rows


async def test_unrenderable_cells_are_placeholders_an_editor_can_delete(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    good = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {
                "cell_type": "code",
                "id": "good",
                "metadata": {},
                "execution_count": None,
                "source": "still = 'fine'",
                "outputs": [],
            }
        ],
    }
    response = ann.upload("poisoned.ipynb", json.dumps(good).encode())
    assert response.status_code == 201, response.text
    notebook = response.json()["id"]
    plant(web.server, notebook, _poison)  # nobody has it open yet
    ann.share(notebook, "ben", "viewer")

    contexts = [await signed_in(browser, web, name) for name in ("ann", "ben")]
    owner, viewer = [await context.new_page() for context in contexts]
    for page in (owner, viewer):
        await open_notebook(page, notebook)
        rows = await placeholders(page)
        await expect(rows.nth(0)).to_contain_text("This cell cannot be shown: it is a number")
        await expect(rows.nth(3)).to_contain_text("it has no id")
        await expect(rows.nth(4)).to_contain_text('"nonsense"')
        await expect(rows.nth(5)).to_contain_text("its source is a number")
        await expect(rows.nth(6)).to_contain_text("its outputs are a string")
        # The good cell is whole; its bad output is a note, not a broken cell.
        first = page.locator(".cell[data-cell-id='good']")
        await expect(first.locator(".cm-content")).to_have_text("still = 'fine'")
        await expect(first.get_by_test_id("unrenderable-output")).to_contain_text("its text")
    await owner.screenshot(path=artifact("unrenderable-cells.png"), full_page=True)
    await expect(viewer.get_by_test_id("unrenderable-cell").get_by_role("button")).to_have_count(0)

    # The owner deletes every placeholder and clears the bad output; the viewer sees it live.
    rows = owner.get_by_test_id("unrenderable-cell")
    for left in range(BAD_CELLS, 0, -1):
        await rows.last.get_by_role("button", name="Delete").click()
        await expect(rows).to_have_count(left - 1)
    await (
        owner.locator(".cell[data-cell-id='good']")
        .get_by_role("button", name="Clear output")
        .click()
    )
    for page in (owner, viewer):
        await expect(page.get_by_test_id("unrenderable-cell")).to_have_count(0)
        await expect(page.get_by_test_id("unrenderable-output")).to_have_count(0)
    # The editor still works as ever, and what the server holds is the good cell alone.
    await owner.get_by_role("button", name="+ Text").click()
    await expect(viewer.locator(".cell")).to_have_count(2)
    exported = ann.export(notebook)
    assert [cell["id"] for cell in exported["cells"]][:1] == ["good"]
    assert len(exported["cells"]) == 2
    assert exported["cells"][0]["outputs"] == []
    for context in contexts:
        await context.close()
