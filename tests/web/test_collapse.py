"""Collapsed inputs and outputs (issue 11), kept as JupyterLab keeps them in
`metadata.jupyter` (static/src/collapse.js, under Node), and in Chromium: the other person
sees the collapse, the exported .ipynb keeps it, a click on the bar shows the part again."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Browser, expect

from tests.gateway.conftest import Cluster
from tests.support import Api, notebook_with_code
from tests.support_web import run_module
from tests.web.test_editor import ann_and_ben
from tests.web.test_find import notebook_with_cells


def collapse(expression: str, *args: Any) -> Any:
    return run_module("collapse.js", f"((c) => {expression})(m)", *args)


def test_hidden_parts_are_read_from_and_written_to_jupyter_metadata() -> None:
    assert collapse("c.hiddenParts({ jupyter: { source_hidden: true } })") == {
        "source": True,
        "outputs": False,
        "section": False,
    }
    nothing = {"source": False, "outputs": False, "section": False}
    assert collapse("c.hiddenParts({ jupyter: 'odd', heading_collapsed: 'yes' })") == nothing
    assert collapse("c.hiddenParts(null)") == nothing
    assert collapse("c.hiddenParts({ heading_collapsed: true })")["section"] is True
    assert collapse("c.withHidden({ other: 1 }, 'outputs_hidden', true)") == {
        "other": 1,
        "outputs_hidden": True,
    }
    # Shown again is no key at all, and an empty `jupyter` goes too.
    assert collapse("c.withHidden({ source_hidden: true }, 'source_hidden', false)") is None


async def exported_jupyter(api: Api, notebook: str) -> list[Any]:
    return [c["metadata"].get("jupyter") for c in api.export(notebook)["cells"]]


async def settled(api: Api, notebook: str, expected: list[Any]) -> None:
    for _ in range(100):
        if await exported_jupyter(api, notebook) == expected:
            return
        await asyncio.sleep(0.05)
    assert await exported_jupyter(api, notebook) == expected


async def test_a_collapse_is_shared_exported_and_undone_by_a_click(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["secret_sauce = 1", "print('hello')"], "Collapse")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await mine.locator(".cell").first.hover()
        await mine.locator(".cell").first.get_by_test_id("collapse-input").click()
        await mine.locator(".cell").nth(1).hover()
        await mine.locator(".cell").nth(1).get_by_test_id("collapse-output").click()
        first, second = theirs.locator(".cell").first, theirs.locator(".cell").nth(1)
        await expect(first.get_by_text("secret_sauce")).to_be_hidden()
        await expect(first.get_by_test_id("collapsed-source")).to_be_visible()
        await expect(second.get_by_test_id("collapsed-outputs")).to_be_visible()
        await expect(second.locator(".cm-content")).to_be_visible()
        await settled(ann, notebook, [{"source_hidden": True}, {"outputs_hidden": True}])
        # Ben opens the input again with a click on its bar: for everyone.
        await first.get_by_test_id("collapsed-source").click()
        await expect(mine.locator(".cell").first.get_by_text("secret_sauce")).to_be_visible()
        await expect(mine.locator(".cell").first.get_by_test_id("collapsed-source")).to_be_hidden()
        await settled(ann, notebook, [None, {"outputs_hidden": True}])


async def test_a_reader_sees_collapsed_parts_and_opens_them_only_for_themselves(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["hidden_from_view = 1"], "Collapse, read only")
    async with ann_and_ben(browser, web, notebook, ben_role="viewer") as (mine, theirs):
        await expect(theirs.get_by_test_id("collapse-input")).to_have_count(0)
        await mine.locator(".cell").first.hover()
        await mine.locator(".cell").first.get_by_test_id("collapse-input").click()
        bar = theirs.get_by_test_id("collapsed-source")
        await expect(bar).to_be_visible()
        await bar.click()
        await expect(theirs.get_by_text("hidden_from_view")).to_be_visible()
        await asyncio.sleep(0.3)
        await expect(mine.get_by_test_id("collapsed-source")).to_be_visible()
        assert await exported_jupyter(ann, notebook) == [{"source_hidden": True}]


async def test_a_collapsed_heading_hides_its_section_for_everyone(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    cells = [
        ("markdown", "# Setup"),
        ("code", "setup = 1"),
        ("markdown", "## Details"),
        ("code", "details = 2"),
        ("markdown", "# Results"),
        ("code", "results = 3"),
    ]
    notebook = notebook_with_cells(ann, cells, "Sections")
    async with ann_and_ben(browser, web, notebook) as (mine, theirs):
        await mine.locator(".cell").first.hover()
        await mine.locator(".cell").first.get_by_test_id("collapse-section").click()
        await expect(theirs.locator(".cell:visible")).to_have_count(3)
        for hidden in ("setup = 1", "Details", "details = 2"):
            await expect(theirs.get_by_text(hidden, exact=True)).to_be_hidden()
        await expect(theirs.get_by_text("results = 3")).to_be_visible()
        assert ann.export(notebook)["cells"][0]["metadata"] == {"heading_collapsed": True}
        await theirs.locator(".cell").first.get_by_test_id("collapsed-section").click()
        await expect(mine.locator(".cell:visible")).to_have_count(6)
        for _ in range(100):
            if ann.export(notebook)["cells"][0]["metadata"] == {}:
                break
            await asyncio.sleep(0.05)
        assert ann.export(notebook)["cells"][0]["metadata"] == {}
