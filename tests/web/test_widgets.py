"""ipywidgets shared between people (issue 11), in Chromium with two people and a real
kernel: a slider moved by one moves for both and the kernel sees each move once; a
tqdm.notebook bar progresses in both pages; a viewer sees widgets but cannot move them; a
page opened later shows the current state; pages left open while the server is restarted
get the widgets back from the kernel it adopts. (widgets.js's pure part: static/test/.)"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, expect

from tests.gateway.conftest import Cluster, running_cluster
from tests.gateway.helpers import status, text_of
from tests.support import Api, YClient, eventually, notebook_with_code, sync_url
from tests.support_web import open_notebook, signed_in
from tests.web.test_editor import ann_and_ben

SLIDER = (
    "import ipywidgets as w\n"
    "changes = []\n"
    "slider = w.IntSlider(value=1, max=50, description='n')\n"
    "slider.observe(lambda change: changes.append(change['new']), 'value')\n"
    "slider"
)
TQDM = (
    "from tqdm.notebook import tqdm\n"
    "import time\n"
    "for i in tqdm(range(30), desc='steps'):\n"
    "    time.sleep(0.15)"
)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, scientific_stack: list[str]
) -> Iterator[Cluster]:
    """A server with one worker whose kernels have the scientific stack (ipywidgets, tqdm)."""
    environments = json.dumps({"default": scientific_stack})
    data = tmp_path_factory.mktemp("widgets")
    with running_cluster(
        data, {"cpu-1": ["--max-kernels", "16"]}, TANDEM_ENVIRONMENTS=environments
    ) as cluster:
        yield cluster


async def execute(api: Api, notebook: str, cell_id: str) -> None:
    response = api.client.post(f"/api/notebooks/{notebook}/execute", json={"cell_ids": [cell_id]})
    assert response.status_code == 202, response.text


async def printed(cluster: Cluster, api: Api, notebook: str, cell_id: str) -> str:
    """Run the cell and return what it printed."""
    token = cluster.person("ann").token
    async with YClient(sync_url(cluster.server, notebook, token)) as client:
        await eventually(lambda: bool(client.cells), 10)
        before = text_of(client, cell_id)
        await execute(api, notebook, cell_id)
        await eventually(lambda: text_of(client, cell_id) not in ("", before), 30)
        return text_of(client, cell_id).strip()


def slider_in(page: Page) -> tuple[object, object]:
    slider = page.locator(".widget-slider").first
    return slider.locator(".noUi-handle"), slider.locator(".widget-readout")


async def test_a_slider_moved_by_one_moves_for_both_and_the_kernel_sees_it_once(
    stack: Cluster, browser: Browser
) -> None:
    ann = stack.api("ann")
    notebook, ids = notebook_with_code(ann, [SLIDER, "print(changes)"], title="Slider")
    async with ann_and_ben(browser, stack, notebook) as (mine, theirs):
        await execute(ann, notebook, ids[0])
        for page in (mine, theirs):
            await expect(slider_in(page)[1]).to_have_text("1", timeout=60_000)  # type: ignore[attr-defined]
        # Ben moves it with the keyboard, one step at a time: both pages follow each step.
        handle, _ = slider_in(theirs)
        await handle.focus()  # type: ignore[attr-defined]
        for value in (2, 3, 4):
            await theirs.keyboard.press("ArrowRight")
            for page in (mine, theirs):
                await expect(slider_in(page)[1]).to_have_text(str(value))  # type: ignore[attr-defined]
        assert await printed(stack, ann, notebook, ids[1]) == "[2, 3, 4]"

        # Ann drags it: ben's follows to where she let go, and the kernel saw each value
        # once, in order, ending there.
        handle, readout = slider_in(mine)
        box = await handle.bounding_box()  # type: ignore[attr-defined]
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        await mine.mouse.move(x, y)
        await mine.mouse.down()
        for step in range(1, 9):
            await mine.mouse.move(x + 15 * step, y)
        await mine.mouse.up()
        value = (await readout.text_content() or "").strip()  # type: ignore[attr-defined]
        assert value.isdigit() and int(value) > 4, value
        await expect(slider_in(theirs)[1]).to_have_text(value)  # type: ignore[attr-defined]
        seen = json.loads(await printed(stack, ann, notebook, ids[1]))
        assert seen[:3] == [2, 3, 4] and seen[-1] == int(value), seen
        assert all(a != b for a, b in itertools.pairwise(seen)), seen

        # A page opened (or reloaded) later shows the slider where it is now.
        await theirs.reload()
        await expect(slider_in(theirs)[1]).to_have_text(value, timeout=30_000)  # type: ignore[attr-defined]


async def test_tqdm_notebook_progresses_in_both_pages(stack: Cluster, browser: Browser) -> None:
    ann = stack.api("ann")
    notebook, ids = notebook_with_code(ann, [TQDM], title="Progress")
    async with ann_and_ben(browser, stack, notebook) as (mine, theirs):
        await execute(ann, notebook, ids[0])
        for page in (mine, theirs):
            bar = page.locator(".widget-hprogress, .widget-progress").first
            await expect(bar).to_be_visible(timeout=60_000)
            # Part way, then done: the bar's text moves while the loop runs.
            label = page.locator(".widget-html").filter(has_text=re.compile(r"/30"))
            await expect(label.first).to_contain_text(re.compile(r"\b([1-9]|1\d|2[0-9])/30\b"))
        for page in (mine, theirs):
            label = page.locator(".widget-html").filter(has_text=re.compile(r"/30"))
            await expect(label.first).to_contain_text("30/30", timeout=30_000)
            fill = page.locator(".progress-bar").first
            await expect(fill).to_have_attribute("style", re.compile(r"width: 100%"))


async def test_a_viewer_sees_widgets_but_cannot_move_them(stack: Cluster, browser: Browser) -> None:
    ann = stack.api("ann")
    notebook, ids = notebook_with_code(ann, [SLIDER, "print(changes)"], title="Viewer")
    async with ann_and_ben(browser, stack, notebook, ben_role="viewer") as (mine, theirs):
        await execute(ann, notebook, ids[0])
        for page in (mine, theirs):
            await expect(slider_in(page)[1]).to_have_text("1", timeout=60_000)  # type: ignore[attr-defined]
        handle, readout = slider_in(theirs)
        await handle.click(force=True)  # type: ignore[attr-defined]
        await theirs.keyboard.press("ArrowRight")
        await theirs.keyboard.press("End")
        box = await handle.bounding_box()  # type: ignore[attr-defined]
        assert box is not None
        await theirs.mouse.click(box["x"] + 200, box["y"] + box["height"] / 2)
        await expect(readout).to_have_text("1")  # type: ignore[attr-defined]
        # Ann's moves still reach the viewer.
        await slider_in(mine)[0].focus()  # type: ignore[attr-defined]
        await mine.keyboard.press("ArrowRight")
        await expect(readout).to_have_text("2")  # type: ignore[attr-defined]
        assert await printed(stack, ann, notebook, ids[1]) == "[2]"


HOSTILE = (
    "import ipywidgets as w, traitlets as t\n"
    "from IPython.display import display\n"
    "page = w.HTML('<b>bold</b><img src=x onerror=\"window.pwned = 1\">'\n"
    "              '<script>window.pwned = 2</script><style>body{display:none}</style>')\n"
    "page.add_class('banner')\n"
    "class Remote(w.DOMWidget):\n"
    "    _model_name = t.Unicode('RemoteModel').tag(sync=True)\n"
    "    _model_module = t.Unicode('https://evil.example/widget.js').tag(sync=True)\n"
    "    _view_name = t.Unicode('RemoteView').tag(sync=True)\n"
    "    _view_module = t.Unicode('https://evil.example/widget.js').tag(sync=True)\n"
    "display(page, Remote(), w.Button(description='<i>x</i>', icon='check'))"
)


async def test_widget_html_is_sanitised_and_no_named_module_loads(
    stack: Cluster, browser: Browser
) -> None:
    ann = stack.api("ann")
    notebook, ids = notebook_with_code(ann, [HOSTILE], title="Hostile widgets")
    async with ann_and_ben(browser, stack, notebook) as (mine, theirs):
        requests: list[str] = []
        theirs.on("request", lambda request: requests.append(request.url))
        await execute(ann, notebook, ids[0])
        for page in (mine, theirs):
            html = page.locator(".widget-html")
            await expect(html.locator("b")).to_have_text("bold", timeout=60_000)
            # No handler, no script, no style sheet; the author's class is renamed.
            assert await html.locator("img").get_attribute("onerror") is None
            await expect(html.locator("script, style")).to_have_count(0)
            await expect(html).to_have_class(re.compile(r"\buser-banner\b"))
            await expect(page.locator(".banner:not([hidden])")).to_have_count(0)
            await expect(page.locator(".widget-unsupported")).to_contain_text("cannot be shown")
            # A button's description is text.
            await expect(page.locator(".widget-button")).to_contain_text("<i>x</i>")
            assert await page.evaluate("window.pwned") is None
        assert not [url for url in requests if "evil.example" in url]


INTERACT = "import ipywidgets as w\nw.interact(lambda x: print('x is', x), x=(0, 10))"


async def test_interact_prints_into_its_output_in_both_pages(
    stack: Cluster, browser: Browser
) -> None:
    ann = stack.api("ann")
    notebook, ids = notebook_with_code(ann, [INTERACT], title="Interact")
    async with ann_and_ben(browser, stack, notebook) as (mine, theirs):
        await execute(ann, notebook, ids[0])
        for page in (mine, theirs):
            output = page.locator(".widget-area .widget-output")
            await expect(output).to_contain_text("x is 5", timeout=60_000)
        await slider_in(theirs)[0].focus()  # type: ignore[attr-defined]
        await theirs.keyboard.press("ArrowRight")
        for page in (mine, theirs):
            output = page.locator(".widget-area .widget-output")
            await expect(output).to_have_text(re.compile(r"^\s*x is 6\s*$"))
        # A restarted kernel takes its widgets with it: their text stands in.
        response = ann.client.post(f"/api/notebooks/{notebook}/kernel/restart")
        assert response.status_code == 204, response.text
        for page in (mine, theirs):
            await expect(page.locator(".widget-area.widget-gone")).to_contain_text(
                "interactive(", timeout=30_000
            )
            await expect(page.locator(".widget-slider")).to_have_count(0)


async def test_a_refused_change_goes_back_and_later_moves_still_arrive(
    stack: Cluster, browser: Browser
) -> None:
    ann = stack.api("ann")
    notebook, ids = notebook_with_code(ann, [SLIDER, "print(changes)"], title="Refused")
    async with ann_and_ben(browser, stack, notebook) as (mine, theirs):
        await execute(ann, notebook, ids[0])
        for page in (mine, theirs):
            await expect(slider_in(page)[1]).to_have_text("1", timeout=60_000)  # type: ignore[attr-defined]
        # The server refuses ann's change (as it would after her access was lowered).
        await mine.route(
            re.compile(r".*/widgets/[^/]+$"),
            lambda route: route.fulfill(status=403, json={"detail": "no"}),
        )
        await slider_in(mine)[0].focus()  # type: ignore[attr-defined]
        await mine.keyboard.press("ArrowRight")
        await expect(slider_in(mine)[1]).to_have_text("1")  # type: ignore[attr-defined]
        await slider_in(theirs)[0].focus()  # type: ignore[attr-defined]
        for _ in range(3):
            await theirs.keyboard.press("ArrowRight")
        for page in (mine, theirs):
            await expect(slider_in(page)[1]).to_have_text("4")  # type: ignore[attr-defined]
        assert await printed(stack, ann, notebook, ids[1]) in ("[2, 3, 4]", "[2, 4]")


TWO_SLIDERS = "import ipywidgets as w\nw.VBox([w.IntSlider(value=1), w.IntSlider(value=1)])"


async def test_lost_widget_events_are_noticed_and_the_state_loaded_again(
    stack: Cluster, browser: Browser
) -> None:
    ann = stack.api("ann")
    notebook, ids = notebook_with_code(ann, [TWO_SLIDERS], title="Lost events")
    ann.share(notebook, "ben", "editor")
    dropped: list[str] = []

    def drop_first_move(socket: WebSocketRoute) -> None:
        """Ben's events socket loses the echo of the first slider's move, as a queue
        overrun by a flood would."""
        server = socket.connect_to_server()

        def from_server(message: str | bytes) -> None:
            event = json.loads(message)
            state = event.get("data", {}).get("state", {})
            if event.get("type") == "widget.comm" and state.get("value") == 2 and not dropped:
                dropped.append(str(message))
                return
            socket.send(message)

        server.on_message(from_server)

    contexts = [await signed_in(browser, stack, name) for name in ("ann", "ben")]
    try:
        await contexts[1].route_web_socket(re.compile(r"/events"), drop_first_move)
        mine, theirs = [await context.new_page() for context in contexts]
        for page in (mine, theirs):
            await open_notebook(page, notebook)
        await execute(ann, notebook, ids[0])
        readouts = [page.locator(".widget-readout") for page in (mine, theirs)]
        for readout in readouts:
            await expect(readout).to_have_count(2, timeout=60_000)
        await mine.locator(".noUi-handle").first.focus()
        await mine.keyboard.press("ArrowRight")
        await expect(readouts[0].first).to_have_text("2")
        await eventually(lambda: bool(dropped), 10)
        await expect(readouts[1].first).to_have_text("1")  # the echo never came
        # The next event is numbered past the lost one: ben's page loads the state again.
        await mine.locator(".noUi-handle").nth(1).focus()
        await mine.keyboard.press("ArrowRight")
        for readout in readouts:
            await expect(readout.nth(1)).to_have_text("2")
            await expect(readout.first).to_have_text("2")
    finally:
        for context in contexts:
            await context.close()


BUTTON = (
    "import ipywidgets as w\n"
    "clicks = []\n"
    "button, label = w.Button(description='go'), w.Label('0')\n"
    "button.on_click(lambda _: clicks.append(1))\n"
    "button.on_click(lambda _: setattr(label, 'value', str(len(clicks))))\n"
    "w.HBox([button, label])"
)


async def test_a_button_click_runs_its_handler_once_for_everyone(
    stack: Cluster, browser: Browser
) -> None:
    ann = stack.api("ann")
    notebook, ids = notebook_with_code(ann, [BUTTON, "print(len(clicks))"], title="Button")
    async with ann_and_ben(browser, stack, notebook) as (mine, theirs):
        await execute(ann, notebook, ids[0])
        for page in (mine, theirs):
            await expect(page.locator("div.widget-label")).to_have_text("0", timeout=60_000)
        for count in ("1", "2"):
            await theirs.locator(".widget-button").click()
            for page in (mine, theirs):
                await expect(page.locator("div.widget-label")).to_have_text(count)
        assert await printed(stack, ann, notebook, ids[1]) == "2"


@pytest.fixture
def keeping(tmp_path: Path, scientific_stack: list[str]) -> Iterator[Cluster]:
    """A server whose worker keeps its kernels for a minute when the server goes."""
    environments = json.dumps({"default": scientific_stack})
    with running_cluster(
        tmp_path / "data",
        {"cpu-1": []},
        TANDEM_ENVIRONMENTS=environments,
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
    ) as cluster:
        yield cluster


# Runs until the test puts a file named `go` (its files reach /content while it runs).
WAITING = "import os, time\nwhile not os.path.exists('go'):\n    time.sleep(0.1)\nslider.value = 9"


async def test_a_restarted_server_brings_the_widgets_back_to_open_pages(
    keeping: Cluster, browser: Browser
) -> None:
    """The server is SIGKILLed mid-run and started again while the worker keeps the
    kernel: the pages that stayed open show the slider as gone while the kernel, busy with
    its cell, cannot say what its widgets are; once the cell ends, the server rebuilds them
    from the kernel and the pages show them again, live, without a reload."""
    stack = keeping
    ann = stack.api("ann")
    notebook, ids = notebook_with_code(ann, [SLIDER, WAITING, "print(changes)"], title="Adopted")
    async with ann_and_ben(browser, stack, notebook) as (mine, theirs):
        await execute(ann, notebook, ids[0])
        for page in (mine, theirs):
            await expect(slider_in(page)[1]).to_have_text("1", timeout=60_000)  # type: ignore[attr-defined]
        await execute(ann, notebook, ids[1])
        await eventually(lambda: status(ann, notebook)["status"] == "busy", 30)
        stack.server.kill()
        stack.server.start()
        # The worker reports the kernel to the new server, which adopts it mid-run.
        await eventually(lambda: status(ann, notebook)["status"] == "busy", 30)
        for page in (mine, theirs):
            await expect(page.locator(".widget-gone")).to_have_count(1, timeout=30_000)
        response = ann.client.put(f"/api/notebooks/{notebook}/files/go", content=b"go")
        assert response.status_code in (200, 201), response.text
        # The cell ends (its last line moves the slider), the kernel answers: both pages
        # have the slider back, where the kernel put it.
        for page in (mine, theirs):
            await expect(slider_in(page)[1]).to_have_text("9", timeout=60_000)  # type: ignore[attr-defined]
            await expect(page.locator(".widget-gone")).to_have_count(0)
        # And an editor's move reaches the kernel again.
        handle, _ = slider_in(theirs)
        await handle.focus()  # type: ignore[attr-defined]
        await theirs.keyboard.press("ArrowRight")
        for page in (mine, theirs):
            await expect(slider_in(page)[1]).to_have_text("10")  # type: ignore[attr-defined]
        assert await printed(stack, ann, notebook, ids[2]) == "[9, 10]"
