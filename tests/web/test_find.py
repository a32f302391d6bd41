"""Find and replace across the notebook (issue 11): the matching and the edits it plans
(static/src/find.js, under Node), and in Chromium with two people: Replace all while the
other person types in one of the cells, undo of one's own replacement, a viewer's find."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.gateway.conftest import Cluster
from tests.support import Api
from tests.support_web import run_module
from tests.web.test_editor import ann_and_ben, cells_in, wait_cells


def run(expression: str, *args: Any) -> Any:
    """`expression` over find.js's exports (as `f`) and `args`, its value as JSON."""
    return run_module("find.js", f"((f) => {expression})(m)", *args)


def matches(text: str, query: str, **options: bool) -> list[str]:
    found = run(
        "f.findMatches(args[0], f.compile(args[1], args[2])).map(m => args[0].slice(m.from, m.to))",
        text,
        query,
        options,
    )
    return list(found)


def replace_all(text: str, query: str, replacement: str, **options: bool) -> str:
    """`text` after applying replaceAllEdits in their order, as the find bar does."""
    return str(
        run(
            "f.replaceAllEdits(args[0], f.compile(args[1], args[3]), args[2], args[3])"
            ".reduce((t, e) => t.slice(0, e.from) + e.insert + t.slice(e.to), args[0])",
            text,
            query,
            replacement,
            options,
        )
    )


def test_options_case_whole_word_and_regex() -> None:
    text = "Cat cat catalog cat_1 (cat) chat"
    assert matches(text, "cat") == ["Cat", "cat", "cat", "cat", "cat"]
    assert matches(text, "cat", caseSensitive=True) == ["cat", "cat", "cat", "cat"]
    assert matches(text, "cat", wholeWord=True) == ["Cat", "cat", "cat"]
    assert matches(text, "c.t", regex=True, caseSensitive=True) == ["cat"] * 4
    # Without the regex option every character is literal.
    assert matches("a.b axb", "a.b") == ["a.b"]
    assert matches("añob ano", "ano", wholeWord=True) == ["ano"]


def test_empty_and_invalid_queries() -> None:
    assert matches("abc", "") == []
    # An empty match is skipped, a whole emoji at a time.
    assert matches("a😀b", "x*", regex=True) == []
    assert run(
        "(() => { try { f.compile('(', { regex: true }) } catch (e) { return e.name } })()"
    ) == ("SyntaxError")


def test_replacements_expand_groups_and_stay_small() -> None:
    assert replace_all("x = alpha + Alpha", "alpha", "beta") == "x = beta + beta"
    assert replace_all("f(a, b)", r"f\((\w), (\w)\)", "f($2, $1)", regex=True) == "f(b, a)"
    # Literal mode never reads $ as a group.
    assert replace_all("cost", "cost", "$1 each") == "$1 each"
    # Only what differs is edited: "foo" -> "fox" deletes "o" and inserts "x".
    assert run("f.minimalEdit('a foo b', { from: 2, to: 5, insert: 'fox' })") == {
        "from": 4,
        "to": 5,
        "insert": "x",
    }
    # A match that moved (the text changed under it) is not replaced at its old place.
    assert run("f.replacementAt('xx alpha', f.compile('alpha'), 0, 'beta')") is None


def test_the_count_and_where_next_goes() -> None:
    found = [{"cell": 0, "from": 3}, {"cell": 2, "from": 0}, {"cell": 2, "from": 9}]
    assert run("f.nextIndex(args[0], 2, 1)", found) == 2
    assert run("f.nextIndex(args[0], 3, 0)", found) == 0  # past the last: back to the first
    assert run("f.nextIndex([], 0, 0)") == -1
    assert run("[f.countText(2, 17), f.countText(-1, 0)]") == ["3 of 17", "no results"]


def notebook_with_cells(api: Api, cells: list[tuple[str, str]], title: str) -> str:
    """A notebook of these (type, source) cells; its id."""
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": source}
            | ({"outputs": [], "execution_count": None} if kind == "code" else {})
            for i, (kind, source) in enumerate(cells)
        ],
    }
    response = api.upload("find.ipynb", json.dumps(notebook).encode(), title=title)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


CELLS = [
    ("code", "alpha = 1"),
    ("code", "print(alpha)"),
    ("code", "beta = alpha + alpha"),
    ("markdown", "# Alpha notes"),
]


async def open_find(page: Page, query: str) -> None:
    await page.keyboard.press("Control+f")
    await expect(page.get_by_test_id("find-bar")).to_be_visible()
    await page.get_by_test_id("find-input").fill(query)


async def test_replace_all_while_the_other_person_types_in_that_cell(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    # Ben types in the middle of the first cell, between two matches: a replacement that
    # rewrote the whole cell would leave his later keystrokes at its end.
    cells = [("code", "alpha = 1\nalpha_end = 2"), *CELLS[1:]]
    notebook = notebook_with_cells(ann, cells, "Find")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await theirs.locator(".cell .cm-content").first.click()
        await theirs.keyboard.press("Control+Home")
        await theirs.keyboard.press("End")
        typed = "  # ben keeps typing here while ann replaces"
        typing = asyncio.ensure_future(theirs.keyboard.type(typed, delay=90))
        await mine.locator(".cell .cm-content").nth(1).click()
        await open_find(mine, "alpha")
        # Matches are counted across cells, the markdown cell's source included, starting
        # from the selected cell; Enter and Shift+Enter move between them.
        count = mine.get_by_test_id("find-count")
        await expect(count).to_have_text("3 of 6")
        await mine.keyboard.press("Enter")
        await expect(count).to_have_text("4 of 6")
        await mine.keyboard.press("Shift+Enter")
        await expect(count).to_have_text("3 of 6")
        await expect(mine.locator(".cell").nth(2).locator(".find-match")).to_have_count(2)
        await mine.get_by_test_id("find-case").check()
        await expect(count).to_have_text("3 of 5")
        await mine.get_by_test_id("find-case").uncheck()
        await mine.get_by_test_id("replace-input").fill("omega")
        await mine.get_by_test_id("replace-all").click()
        assert not typing.done(), "the replacement was meant to land while ben typed"
        await typing
        expected = [
            ("code", "omega = 1" + typed + "\nomega_end = 2"),
            ("code", "print(omega)"),
            ("code", "beta = omega + omega"),
            ("markdown", "# omega notes"),
        ]
        for page in (mine, theirs):
            await wait_cells(page, expected)
        assert [c["source"] for c in ann.export(notebook)["cells"]] == [s for _, s in expected]
        # Undo (Z in command mode) takes back ann's replacement, all of it, and nothing of
        # ben's typing.
        await mine.keyboard.press("Escape")  # closes the find bar: back in the editor
        await expect(mine.get_by_test_id("find-bar")).to_be_hidden()
        await mine.keyboard.press("Escape")  # and to command mode
        await mine.keyboard.press("z")
        restored = [("code", "alpha = 1" + typed + "\nalpha_end = 2"), *CELLS[1:]]
        for page in (mine, theirs):
            await wait_cells(page, restored)


async def test_replace_one_goes_on_to_the_next_match(web: Cluster, browser: Browser) -> None:
    ann = web.api("ann")
    notebook = notebook_with_cells(ann, CELLS, "Replace one")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await mine.locator(".cell .cm-content").first.click()
        await open_find(mine, "alpha")
        await mine.get_by_test_id("find-word").check()
        await expect(mine.get_by_test_id("find-count")).to_have_text("1 of 5")
        await mine.get_by_test_id("replace-input").fill("a2")
        await mine.get_by_test_id("replace-one").click()
        await mine.get_by_test_id("replace-one").click()
        await expect(mine.get_by_test_id("find-count")).to_have_text("1 of 3")
        expected = [("code", "a2 = 1"), ("code", "print(a2)"), *CELLS[2:]]
        await wait_cells(theirs, expected)
        # A match in a markdown cell shows its source, highlighted, until the bar closes.
        notes = mine.locator(".cell").nth(3)
        await expect(notes.locator(".rendered h1")).to_have_text("Alpha notes")
        await mine.get_by_test_id("find-input").press("Enter")
        await mine.get_by_test_id("find-input").press("Enter")
        await expect(mine.get_by_test_id("find-count")).to_have_text("3 of 3")
        await expect(notes.locator(".find-current")).to_have_text("Alpha")
        await expect(notes.locator(".rendered")).to_be_hidden()
        await mine.get_by_test_id("find-input").press("Escape")
        await expect(notes.locator(".rendered h1")).to_be_visible()


async def test_a_viewer_finds_but_cannot_replace(web: Cluster, browser: Browser) -> None:
    ann = web.api("ann")
    notebook = notebook_with_cells(ann, CELLS, "Find, read only")
    async with ann_and_ben(browser, web, notebook, ben_role="viewer") as (_, theirs):
        await theirs.locator(".cell .cm-content").first.click()
        await open_find(theirs, "alpha")
        await expect(theirs.get_by_test_id("find-count")).to_have_text("1 of 5")
        await expect(theirs.locator(".cell.find-hit")).to_have_count(4)
        await theirs.keyboard.press("Enter")
        await expect(theirs.get_by_test_id("find-count")).to_have_text("2 of 5")
        await expect(theirs.get_by_test_id("replace-input")).to_have_count(0)
        await expect(theirs.get_by_test_id("replace-all")).to_have_count(0)
        assert [s for _, s in await cells_in(theirs)] == [s for _, s in CELLS]
