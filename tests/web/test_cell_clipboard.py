"""The cell clipboard and multi-cell selection in command mode (issue 11): what a copy
keeps (static/src/clipboard.js and the selection's arithmetic in selection.js, under
Node), and in Chromium: copy and paste within a notebook and into another tab's notebook,
cut, and several selected cells deleted, moved and run while another person watches."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.gateway.conftest import Cluster
from tests.support import Api, notebook_with_code
from tests.support_web import open_notebook, run_module, signed_in
from tests.web.test_editor import ann_and_ben, cells_in, selected_in_command_mode, wait_cells


def clipboard(expression: str, *args: Any) -> Any:
    return run_module("clipboard.js", f"((c) => {expression})(m)", *args)


def selection(expression: str, *args: Any) -> Any:
    return run_module("selection.js", f"((s) => {expression})(m)", *args)


CELL = {
    "id": "abc",
    "cell_type": "code",
    "source": "print(1)",
    "metadata": {"tags": ["keep"], "jupyter": {"source_hidden": True}},
    "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}],
    "execution_count": 3,
    "execution_state": "running",
}


def test_a_copy_keeps_type_source_metadata_and_outputs_not_the_id_or_state() -> None:
    pasted = clipboard("c.parse(c.serialize(args))", CELL, {**CELL, "cell_type": "markdown"})
    assert pasted[0] == {
        "cell_type": "code",
        "source": "print(1)",
        "metadata": {"tags": ["keep"], "jupyter": {"source_hidden": True}},
        "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\n"}],
        "execution_count": 3,
    }
    assert pasted[1] == {
        "cell_type": "markdown",
        "source": "print(1)",
        "metadata": CELL["metadata"],
    }


def test_other_clipboard_text_pastes_nothing() -> None:
    assert clipboard("c.parse('hello')") == []
    assert clipboard("c.parse(JSON.stringify({ format: 'other', cells: [{}] }))") == []
    assert clipboard(
        "c.parse(JSON.stringify({ format: 'tandem-cells/1', cells: [1, {cell_type: 'x'},"
        " {cell_type: 'raw', source: ['a', 'b'], metadata: 7}] }))"
    ) == [{"cell_type": "raw", "source": "ab", "metadata": {}}]


def test_a_cell_from_json_is_a_shared_cell_with_a_new_id() -> None:
    made = run_module(
        "clipboard.js",
        """await (async (c) => {
          const Y = await import('yjs')
          const cells = new Y.Doc().getArray('cells')
          cells.push([c.cellFromJSON(args[0]), c.cellFromJSON(args[0], 'same')])
          const [a, b] = cells.toArray()
          return [a.get('id') !== 'abc' && a.get('id').length, b.get('id'),
            b.get('source') instanceof Y.Text, b.get('outputs').get(0).get('text').toString(),
            b.get('execution_state'), b.get('metadata').get('tags')]
        })(m)""",
        CELL,
    )
    assert made == [16, "same", True, "1\n", "idle", ["keep"]]


def test_the_span_between_anchor_and_head() -> None:
    ids = ["a", "b", "c", "d"]
    assert selection("s.span(args[0], 'c', 'a')", ids) == [0, 2]
    assert selection("s.span(args[0], 'gone', 'b')", ids) == [1, 1]
    assert selection("s.span(args[0], 'a', 'gone')", ids) is None
    assert selection("[s.extendHead(args[0], 'a', -1), s.extendHead(args[0], 'c', 1)]", ids) == [
        "a",
        "d",
    ]
    assert selection("[s.movedStart(0, 1, -1, 4), s.movedStart(1, 2, 1, 4)]") == [None, 2]
    assert selection("s.movedStart(1, 2, 2, 4)") is None


async def select_cell(page: Page, index: int) -> None:
    """Command mode on cell `index` (a click on its prompt, not in its editor)."""
    await page.locator(".cell .prompt").nth(index).click()
    assert await selected_in_command_mode(page) == index


async def stored(api: Api, notebook: str, expected: list[tuple[str, str]]) -> list[Any]:
    """The exported cells, once the server holds these (type, source) cells."""
    for _ in range(200):
        cells = api.export(notebook)["cells"]
        if [(c["cell_type"], c["source"]) for c in cells] == expected:
            return list(cells)
        await asyncio.sleep(0.05)
    raise AssertionError(f"the server holds {cells!r}")


async def test_copy_and_paste_within_and_across_notebooks(web: Cluster, browser: Browser) -> None:
    ann = web.api("ann")
    first, first_ids = notebook_with_code(ann, ["one", "two", "three"], title="From")
    second, _ = notebook_with_code(ann, ["other"], title="To")
    context = await signed_in(browser, web, "ann")
    try:
        mine, other = await context.new_page(), await context.new_page()
        await asyncio.gather(open_notebook(mine, first), open_notebook(other, second))
        # "two" becomes markdown, then "one" and "two" are selected and copied.
        await select_cell(mine, 1)
        await mine.keyboard.press("m")
        await select_cell(mine, 0)
        await mine.keyboard.press("Shift+ArrowDown")
        await expect(mine.locator(".cell.selected")).to_have_count(2)
        await mine.keyboard.press("c")
        # V pastes below the selection; the copies get ids of their own.
        await mine.keyboard.press("j")
        await expect(mine.locator(".cell.selected")).to_have_count(0)
        await mine.keyboard.press("v")
        pasted = [
            ("code", "one"),
            ("markdown", "two"),
            ("code", "three"),
            ("code", "one"),
            ("markdown", "two"),
        ]
        await wait_cells(mine, pasted)
        cells = await stored(ann, first, pasted)
        ids = [c["id"] for c in cells]
        assert len(set(ids)) == 5 and ids[0] == first_ids[0]
        # The other tab's notebook takes them above its cell with Shift+V.
        await select_cell(other, 0)
        await other.keyboard.press("Shift+V")
        await stored(ann, second, [("code", "one"), ("markdown", "two"), ("code", "other")])
        # X cuts the pasted pair (Shift+click extends the selection), Z brings it back.
        await select_cell(mine, 3)
        await mine.locator(".cell .prompt").nth(4).click(modifiers=["Shift"])
        await expect(mine.locator(".cell.selected")).to_have_count(2)
        await mine.keyboard.press("x")
        await wait_cells(mine, pasted[:3])
        await mine.keyboard.press("z")
        await wait_cells(mine, pasted)
    finally:
        await context.close()


async def test_several_selected_cells_run_move_and_delete_together(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["a = 1", "b = 2", "print(a + b)", "last"], "Selection")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await select_cell(mine, 0)
        await mine.locator(".cell .prompt").nth(2).click(modifiers=["Shift"])
        await expect(mine.locator(".cell.selected")).to_have_count(3)
        # Ctrl+Enter runs all three: the third needs the first two.
        await mine.keyboard.press("Control+Enter")
        await expect(theirs.locator(".cell").nth(2).locator(".outputs pre")).to_have_text(
            "3", timeout=60_000
        )
        await expect(theirs.locator(".cell").nth(1).locator(".prompt")).to_have_text("[2]")
        # Ctrl+Shift+↓ moves the three below "last", as one block.
        await mine.keyboard.press("Control+Shift+ArrowDown")
        moved = [("code", "last"), ("code", "a = 1"), ("code", "b = 2"), ("code", "print(a + b)")]
        await wait_cells(theirs, moved)
        await expect(mine.locator(".cell.selected")).to_have_count(3)
        # D D deletes all three; Z (one step) brings them back.
        await mine.keyboard.press("d")
        await mine.keyboard.press("d")
        await wait_cells(theirs, [("code", "last")])
        assert [c["source"] for c in ann.export(notebook)["cells"]] == ["last"]
        await mine.keyboard.press("z")
        await wait_cells(theirs, moved)
        assert await cells_in(mine) == moved


def test_each_person_has_a_clipboard_of_their_own() -> None:
    kept = clipboard(
        "(() => { const items = new Map(); const storage = { setItem: (k, v) => items.set(k, v),"
        " getItem: (k) => items.get(k) ?? null }; c.store('ann-id', [args[0]], storage);"
        " return [c.load('ann-id', storage).length, c.load('ben-id', storage).length] })()",
        CELL,
    )
    assert kept == [1, 0]
