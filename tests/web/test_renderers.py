"""Charts from the scientific stack drawn in the browser, from a real kernel: Plotly's
`fig.show()`, Altair, GeoJSON, each interactive, each in a sandboxed chart frame (/frame/chart)
where a hostile spec can neither reach the page nor run script of its own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, FrameLocator, Page, expect

from tests.gateway.conftest import Cluster, running_cluster
from tests.support import notebook_with_code
from tests.support_web import open_notebook, signed_in

# A kernel starts for each test, and it imports pandas and a charting library.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory, charts_stack: list[str]) -> Iterator[Cluster]:
    """A server whose kernels have the charting libraries (`charts_stack`)."""
    with running_cluster(
        tmp_path_factory.mktemp("charts"),
        {"cpu-1": ["--max-kernels", "8"]},
        TANDEM_ENVIRONMENTS=json.dumps({"default": charts_stack, "default-gpu": []}),
    ) as cluster:
        yield cluster


@pytest.fixture
async def page(charts: Cluster, browser: Browser) -> AsyncIterator[Page]:
    context = await signed_in(browser, charts, "ann")
    opened = await context.new_page()
    # The page records anything that reaches it from an output.
    await opened.add_init_script("window.__reached = []")
    yield opened
    await context.close()


async def run_in_page(charts: Cluster, page: Page, code: str) -> FrameLocator:
    """Run `code` as the notebook's only cell, open it, and return its chart frame."""
    api = charts.api("ann")
    notebook, ids = notebook_with_code(api, [code], title="Charts")
    await open_notebook(page, notebook)
    response = api.client.post(f"/api/notebooks/{notebook}/execute", json={"cell_ids": ids})
    assert response.status_code == 202, response.text
    frame = page.locator(".outputs iframe.chart-frame")
    cell = page.locator(".cell").first
    for _ in range(1200):  # the kernel starts, imports, draws: it may take a while
        if await frame.count() or await cell.locator(".outputs .output").count():
            break
        await page.wait_for_timeout(100)
    assert await frame.count() == 1, await cell.locator(".outputs").inner_text()
    # Sandboxed without allow-same-origin: an opaque origin, whatever the spec holds.
    await expect(frame).to_have_attribute("sandbox", "allow-scripts")
    return page.frame_locator(".outputs iframe.chart-frame")


async def hover_center(page: Page, target: object) -> None:
    box = await target.bounding_box()  # type: ignore[attr-defined]
    assert box, "nothing to hover"
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


PLOTLY = """\
import plotly.express as px
fig = px.scatter(x=[1, 2, 3], y=[4, 1, 7], title="three points")
fig.show()
"""


async def test_plotly_fig_show_draws_an_interactive_chart(charts: Cluster, page: Page) -> None:
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    chart = await run_in_page(charts, page, PLOTLY)
    await expect(chart.locator(".main-svg .gtitle")).to_have_text("three points", timeout=30_000)
    points = chart.locator(".scatterlayer .trace .point")
    await expect(points).to_have_count(3)
    # Hovering a point shows Plotly's hover label with its values.
    await hover_center(page, points.nth(2))
    await expect(chart.locator(".hoverlayer .hovertext")).to_contain_text("y=7")
    # Dragging over the plot zooms in: the axis range changes.
    before = await chart.locator(".xtick").all_text_contents()
    drag = chart.locator(".nsewdrag").first
    box = await drag.bounding_box()
    assert box
    await page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.8, steps=5)
    await page.mouse.up()
    await expect(chart.locator(".xtick")).not_to_have_text(before)
    height = await page.locator(".outputs iframe.chart-frame").evaluate("f => f.offsetHeight")
    assert height > 300  # the frame grew to the chart
    assert refused == []  # Plotly works within the chart frame's policy


# Altair 6's default renderer writes HTML that loads Vega from a CDN; its "mimetype"
# renderer (Altair 5's default) sends the spec, which the bundled Vega draws offline.
ALTAIR = """\
import altair as alt, pandas as pd
alt.renderers.enable("mimetype")
data = pd.DataFrame({"fruit": ["apple", "banana", "cherry"], "count": [28, 55, 43]})
alt.Chart(data, title="fruit").mark_bar(tooltip=True).encode(x="fruit", y="count")
"""


async def test_an_altair_chart_renders_with_tooltips(charts: Cluster, page: Page) -> None:
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security" in m.text else None)
    chart = await run_in_page(charts, page, ALTAIR)
    bars = chart.locator("svg .mark-rect path")
    await expect(bars).to_have_count(3, timeout=30_000)
    await expect(chart.locator("svg .role-title-text")).to_have_text("fruit")
    await hover_center(page, bars.nth(1))
    await expect(chart.locator("#vg-tooltip-element")).to_contain_text("banana")
    assert refused == []  # Vega works within the chart frame's policy (no eval)


GEOJSON = """\
from IPython.display import GeoJSON
GeoJSON({"type": "FeatureCollection", "features": [
    {"type": "Feature", "properties": {"name": "left field"},
     "geometry": {"type": "Polygon", "coordinates": [[[2.0, 48.0], [2.2, 48.0], [2.2, 48.2], [2.0, 48.2], [2.0, 48.0]]]}},
    {"type": "Feature", "properties": {"name": "right field"},
     "geometry": {"type": "Polygon", "coordinates": [[[2.4, 48.0], [2.6, 48.0], [2.6, 48.2], [2.4, 48.2], [2.4, 48.0]]]}},
    {"type": "Feature", "properties": {"name": "well"}, "geometry": {"type": "Point", "coordinates": [2.3, 48.1]}},
]})
"""  # noqa: E501


async def test_a_geojson_output_is_drawn_and_zooms(charts: Cluster, page: Page) -> None:
    chart = await run_in_page(charts, page, GEOJSON)
    shapes = chart.locator("svg.geojson path.feature")
    await expect(shapes).to_have_count(3, timeout=30_000)
    left = await shapes.nth(0).bounding_box()
    right = await shapes.nth(1).bounding_box()
    assert left and right and left["x"] + left["width"] <= right["x"]  # west is left
    await hover_center(page, shapes.nth(1))
    await expect(chart.locator(".tooltip")).to_have_text("name: right field")
    await page.mouse.wheel(0, -400)
    for _ in range(50):
        zoomed = await shapes.nth(1).bounding_box()
        if zoomed and zoomed["width"] > right["width"] * 1.5:
            break
        await page.wait_for_timeout(100)
    assert zoomed and zoomed["width"] > right["width"] * 1.5


# Kernel output is hostile: script in a title, a hover template, annotations, a link.
HOSTILE_PLOTLY = """\
import plotly.graph_objects as go
evil = '<img src=x onerror="window.__ran=1;parent.__reached.push(1)">'
fig = go.Figure(go.Bar(x=["a", "b"], y=[1, 2], name=evil,
    hovertemplate="<script>parent.__reached.push(2)</script>%{y}" + evil))
fig.update_layout(title=dict(text="hostile" + evil),
    annotations=[dict(text='<a href="javascript:parent.__reached.push(3)">click me</a>',
                      x="a", y=1.5, showarrow=False)])
fig.show()
"""


async def test_a_hostile_plotly_spec_cannot_touch_the_page(charts: Cluster, page: Page) -> None:
    chart = await run_in_page(charts, page, HOSTILE_PLOTLY)
    await expect(chart.locator(".main-svg .gtitle")).to_contain_text("hostile", timeout=30_000)
    bars = chart.locator(".barlayer .point")
    await expect(bars).to_have_count(2)
    await hover_center(page, bars.nth(1))
    await expect(chart.locator(".hoverlayer .hovertext")).to_be_visible()
    link = chart.get_by_text("click me")
    if await link.count():
        await link.click(force=True)
    await page.wait_for_timeout(500)
    assert await page.evaluate("window.__reached") == []
    # Not even inside its own frame did any of it run (no inline script, no handlers).
    inside = page.frames[-1]
    assert await inside.evaluate("typeof window.__ran") == "undefined"
    assert (
        await inside.evaluate(
            "(() => { try { return parent.document.cookie } catch (e) { return 'blocked' } })()"
        )
        == "blocked"
    )


HOSTILE_VEGA = """\
from IPython.display import display
evil = '<img src=x onerror="window.__ran=1;parent.__reached.push(1)">'
spec = {
  "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
  "title": "hostile" + evil,
  "data": {"values": [{"a": "x" + evil, "b": 3, "u": "javascript:parent.__reached.push(2)"}]},
  "mark": {"type": "bar", "tooltip": {"content": "data"}},
  "encoding": {"x": {"field": "a"}, "y": {"field": "b", "type": "quantitative"},
               "href": {"field": "u"}},
  # vega-embed takes options from the spec itself: generated code (eval), the actions menu
  "usermeta": {"embedOptions": {"ast": False, "actions": True}},
  "params": [{"name": "p", "expr": "parent.__reached.push(3)"}],  # the bad expression
}
display({"application/vnd.vegalite.v5+json": spec}, raw=True)
"""


async def test_a_hostile_vega_spec_cannot_touch_the_page(charts: Cluster, page: Page) -> None:
    chart = await run_in_page(charts, page, HOSTILE_VEGA)
    # The expression is refused (vega knows no `parent`), and the frame says so: nothing ran.
    await expect(chart.locator(".failed")).to_contain_text("could not be drawn", timeout=30_000)
    assert await page.evaluate("window.__reached") == []
    # Without the bad expression the chart draws; its tooltip and link stay harmless.
    api = charts.api("ann")
    harmless = "\n".join(line for line in HOSTILE_VEGA.split("\n") if "bad expression" not in line)
    notebook, ids = notebook_with_code(api, [harmless])
    await open_notebook(page, notebook)
    assert (
        api.client.post(f"/api/notebooks/{notebook}/execute", json={"cell_ids": ids}).status_code
        == 202
    )
    chart = page.frame_locator(".outputs iframe.chart-frame")
    bar = chart.locator("svg .mark-rect path")
    await expect(bar).to_have_count(1, timeout=60_000)
    await expect(chart.locator("svg .role-title-text")).to_contain_text("hostile")
    await hover_center(page, bar)
    await expect(chart.locator("#vg-tooltip-element")).to_contain_text("onerror")  # as text
    await expect(chart.locator(".vega-actions")).to_have_count(0)  # the spec's options lost
    await bar.click(force=True)
    await page.wait_for_timeout(500)
    assert await page.evaluate("window.__reached") == []
    inside = page.frames[-1]
    assert await inside.evaluate("typeof window.__ran") == "undefined"
