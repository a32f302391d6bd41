"""The table of contents (issue 11): headings read from markdown cells
(static/src/outline.js, under Node), and in Chromium the Contents panel, live as another
person edits, a click on a heading going to its cell."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect

from tests.gateway.conftest import Cluster
from tests.support_web import run_module
from tests.web.test_editor import ann_and_ben
from tests.web.test_find import notebook_with_cells


def headings(cells: list[dict[str, Any]]) -> list[tuple[int, str, int]]:
    found = run_module("outline.js", "m.headings(args[0])", cells)
    return [(h["level"], h["text"], h["index"]) for h in found]


def md(source: str, cell_id: str = "x") -> dict[str, str]:
    return {"id": cell_id, "cell_type": "markdown", "source": source}


def test_headings_as_markdown_reads_them() -> None:
    cells = [
        md("# Intro\ntext\n## *Emphasis* and `code`"),
        {"id": "c", "cell_type": "code", "source": "# a comment, not a heading"},
        md("```\n# in a fence\n```\nSetext\n======\n\nSub\n---"),
        md("#no space is no heading\n####### seven is too many"),
        md("### [A link](http://x) here"),
        md("#\n"),
    ]
    assert headings(cells) == [
        (1, "Intro", 0),
        (2, "Emphasis and code", 0),
        (1, "Setext", 2),
        (2, "Sub", 2),
        (3, "A link here", 4),
    ]


def test_a_collapsed_heading_hides_its_section_down_to_the_next_of_its_level() -> None:
    def cell(kind: str, source: str, collapsed: bool = False) -> dict[str, Any]:
        return {"cell_type": kind, "source": source, "collapsed": collapsed}

    cells = [
        cell("markdown", "# A", collapsed=True),
        cell("code", "a"),
        cell("markdown", "## A.1", collapsed=True),
        cell("markdown", "just text"),
        cell("markdown", "# B"),
        cell("code", "b"),
        cell("markdown", "## B.1", collapsed=True),
        cell("code", "c"),
        cell("markdown", "### B.1.1"),
        cell("markdown", "## B.2"),
    ]
    assert run_module("outline.js", "m.hiddenBySections(args[0])", cells) == [1, 2, 3, 7, 8]


FILLER = 24
CELLS = [("markdown", "# Start"), *[("code", f"x{i} = {i}") for i in range(FILLER)]]
CELLS += [("markdown", "## Far below\nsome words"), ("code", "end = True")]


async def test_the_contents_list_headings_live_and_jump_to_their_cell(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook = notebook_with_cells(ann, CELLS, "Contents")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await mine.get_by_test_id("open-outline").click()
        outline = mine.get_by_test_id("outline")
        await expect(outline.locator("button")).to_have_text(["Start", "Far below"])
        await expect(outline.locator("li.level-2")).to_have_text("Far below")
        # Ben adds a heading; ann's list shows it at once.
        await theirs.locator(".cell").nth(FILLER + 1).locator(".rendered").dblclick()
        await theirs.keyboard.press("Control+End")
        await theirs.keyboard.type("\n### Details")
        await expect(outline.locator("button")).to_have_text(["Start", "Far below", "Details"])
        await expect(outline.locator("li.level-3")).to_have_text("Details")
        # A click goes to the cell: selected (command mode) and in view.
        far = mine.locator(".cell").nth(FILLER + 1)
        await expect(far).not_to_be_in_viewport()
        await outline.get_by_role("button", name="Far below").click()
        await expect(far).to_be_in_viewport()
        await expect(far).to_be_focused()


def test_only_changes_to_sources_and_cells_call_for_a_new_look() -> None:
    events = {
        "cells added or removed": [{"path": []}],
        "typing": [{"path": [3, "source"]}],
        "metadata": [{"path": [3, "metadata"]}],
        "type changed": [{"path": [3], "keysChanged": ["cell_type"]}],
        "output streamed": [{"path": [3, "outputs", 0, "text"]}],
        "run state": [{"path": [3], "keysChanged": ["execution_state", "execution_count"]}],
    }
    touched = run_module(
        "outline.js",
        "Object.fromEntries(Object.entries(args[0]).map(([k, e]) => [k, m.touchesSources(e)]))",
        events,
    )
    assert [name for name, yes in touched.items() if yes] == list(events)[:4]
