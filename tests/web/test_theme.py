"""Dark mode (issue 11): the editor follows the system's prefers-color-scheme, a toggle
(system / light / dark) overrides it and is kept across a reload, and the sandboxed output
frames are told the theme so a DataFrame stays legible."""

from __future__ import annotations

from playwright.async_api import Browser, Page, expect

from tests.gateway.conftest import Cluster
from tests.support_web import artifact, notebook_with_outputs, open_notebook, run_module, signed_in

TABLE = "<table><thead><tr><th>a</th></tr></thead><tbody><tr><td>42</td></tr></tbody></table>"
CELLS = [
    ("def f():\n    return 'x'  # note", {"text/html": TABLE, "text/plain": "a 42"}),
    ("print('plain')", {"text/plain": "plain text"}),
]


def luminance(rgb: str) -> float:
    """Relative lightness (0 black .. 1 white) of a computed `rgb(...)` / `rgba(...)`."""
    red, green, blue = (int(float(v)) for v in rgb[rgb.index("(") + 1 : -1].split(",")[:3])
    return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255


async def colours(page: Page) -> dict[str, float]:
    """How light the page's, a cell's, its code's and its outputs' colours are."""
    found = await page.evaluate(
        """() => {
            const style = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop]
            return {
                page: style('body', 'backgroundColor') === 'rgba(0, 0, 0, 0)'
                    ? getComputedStyle(document.documentElement).backgroundColor
                    : style('body', 'backgroundColor'),
                cell: style('.cell', 'backgroundColor'),
                text: style('.cell .outputs pre', 'color'),
                keyword: style('.cell .cm-content .tok-keyword', 'color'),
                code: style('.cell .cm-content', 'color'),
            }
        }"""
    )
    frame = page.frame_locator("iframe.output-frame").locator("td")
    await expect(frame).to_have_text("42")
    found["table"] = await frame.evaluate("(td) => getComputedStyle(td).color")
    return {name: luminance(value) for name, value in found.items()}


async def assert_dark(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    seen = await colours(page)
    assert seen["page"] < 0.2 and seen["cell"] < 0.2, seen
    # Text, code and the output frame's table are light on it.
    assert min(seen["text"], seen["keyword"], seen["code"], seen["table"]) > 0.5, seen


async def assert_light(page: Page) -> None:
    await expect(page.locator("html")).to_have_attribute("data-theme", "light")
    seen = await colours(page)
    assert seen["page"] > 0.8 and seen["cell"] > 0.8, seen
    assert max(seen["text"], seen["keyword"], seen["code"], seen["table"]) < 0.5, seen


async def test_dark_mode_follows_the_system_and_the_toggle_is_kept(
    web: Cluster, browser: Browser
) -> None:
    notebook = notebook_with_outputs(web.api("ann"), CELLS, title="Night")
    context = await signed_in(browser, web, "ann")
    try:
        page = await context.new_page()
        await page.emulate_media(color_scheme="dark")
        await open_notebook(page, notebook)
        toggle = page.get_by_test_id("theme-toggle")
        await expect(toggle).to_have_attribute("data-choice", "system")
        await assert_dark(page)
        await page.screenshot(path=artifact("dark-mode.png"))
        # The system turns light: so does the page, the output frame included.
        await page.emulate_media(color_scheme="light")
        await assert_light(page)
        await page.emulate_media(color_scheme="dark")
        await assert_dark(page)
        # system -> light: light though the system is dark, and still after a reload.
        await toggle.click()
        await expect(toggle).to_have_attribute("data-choice", "light")
        await assert_light(page)
        await page.reload()
        await open_notebook(page, notebook)
        await expect(toggle).to_have_attribute("data-choice", "light")
        await assert_light(page)
        # light -> dark, kept too, even when the system turns light.
        await toggle.click()
        await expect(toggle).to_have_attribute("data-choice", "dark")
        await page.emulate_media(color_scheme="light")
        await page.reload()
        await open_notebook(page, notebook)
        await assert_dark(page)
        # dark -> system: the system's light again.
        await toggle.click()
        await expect(toggle).to_have_attribute("data-choice", "system")
        await assert_light(page)
    finally:
        await context.close()


def test_the_toggle_cycles_system_light_dark_and_system_means_the_systems() -> None:
    assert run_module("theme.js", "m.CHOICES.map(m.nextChoice)") == ["light", "dark", "system"]
    assert run_module(
        "theme.js",
        "[m.resolveTheme('system', true), m.resolveTheme('system', false),"
        " m.resolveTheme('light', true), m.resolveTheme('dark', false)]",
    ) == ["dark", "light", "light", "dark"]
