"""Widget round trip through Tandem: a slider moved in one page -> the server -> the
worker -> the kernel's `observe` callback, which sets a label -> the kernel's update ->
the server -> the other page showing the label's new text.

Two Chromium pages (two people, both editors) on a server with its local worker on this
machine, a warm kernel. Each trial presses ArrowRight on the slider in page A (timed at
the keydown) and waits until page B's label shows the new value (timed by a
MutationObserver); both clocks are the browser's (performance.timeOrigin + now()). Also
timed: the same change sent straight to the REST endpoint until the kernel is idle after
it (no browser), and the label in page A itself.

    python bench/widgets.py [--moves 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright, expect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernels.environments import SCIENTIFIC_STACK
from tests.support import Api, Person, ServerProcess, make_people, notebook_with_code

CHROMIUM = os.environ.get("TANDEM_TEST_CHROMIUM", "/usr/bin/chromium")
CELL = (
    "import ipywidgets as w\n"
    "slider = w.IntSlider(value=0, max=100000)\n"
    "label = w.Label('0')\n"
    "def moved(change):\n"
    "    label.value = str(change['new'])\n"
    "slider.observe(moved, 'value')\n"
    "w.VBox([slider, label])"
)
NOW = "performance.timeOrigin + performance.now()"


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))


async def page_of(browser: Browser, server: ServerProcess, person: Person, nb: str) -> Page:
    context = await browser.new_context(base_url=server.url)
    response = await context.request.post(
        "/api/auth/login", data={"username": person.username, "password": person.password}
    )
    assert response.ok, await response.text()
    page = await context.new_page()
    await page.goto(f"/n/{nb}")
    await expect(page.locator("div.widget-label")).to_have_text("0", timeout=120_000)
    return page


async def watch(page: Page) -> None:
    """Record when the label changes, by its new text, and when a key goes down."""
    await page.evaluate(
        f"""() => {{
          window.seen = {{ label: {{}} }}
          window.sent = []
          const watch = (el, into) => new MutationObserver(() => {{
            into[el.textContent.trim()] ??= {NOW}
          }}).observe(el, {{ childList: true, characterData: true, subtree: true }})
          watch(document.querySelector('div.widget-label'), window.seen.label)
          document.addEventListener('keydown', () => window.sent.push({NOW}), true)
        }}"""
    )


async def wait_for(page: Page, kind: str, value: int) -> float:
    handle = await page.wait_for_function(
        f"(v) => window.seen.{kind}[v]", arg=str(value), timeout=30_000
    )
    return float(await handle.json_value())


def rest_round_trip(api: Api, nb: str, comm_id: str, value: int) -> float:
    started = time.perf_counter()
    response = api.client.post(
        f"/api/notebooks/{nb}/widgets/{comm_id}",
        json={"msg_id": uuid.uuid4().hex, "data": {"method": "update", "state": {"value": value}}},
    )
    assert response.status_code == 200 and response.json()["idle"], response.text
    return (time.perf_counter() - started) * 1000


async def main(moves: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        environments = json.dumps({"default": SCIENTIFIC_STACK})
        server = ServerProcess(
            Path(tmp) / "tandem",
            env={"TANDEM_LOCAL_WORKER": "true", "TANDEM_ENVIRONMENTS": environments},
        )
        server.start()
        try:
            people = make_people(server.data_dir, ["ann", "ben"])
            api = Api(server, people["ann"])
            nb, (cell,) = notebook_with_code(api, [CELL], title="Widget bench")
            api.share(nb, "ben", "editor")
            response = api.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [cell]})
            assert response.status_code == 202, response.text
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox"]
                )
                mover, watcher = await asyncio.gather(
                    page_of(browser, server, people["ann"], nb),
                    page_of(browser, server, people["ben"], nb),
                )
                for page in (mover, watcher):
                    await watch(page)
                await mover.locator(".noUi-handle").focus()
                across, echo = [], []
                for value in range(1, moves + 1):
                    await mover.keyboard.press("ArrowRight")
                    seen = await wait_for(watcher, "label", value)
                    own = await wait_for(mover, "label", value)
                    sent = (await mover.evaluate("window.sent"))[-1]
                    across.append(seen - sent)
                    echo.append(own - sent)
                await browser.close()
            models = api.client.get(f"/api/notebooks/{nb}/widgets").json()["models"]
            slider = next(m for m in models if m["state"]["_model_name"] == "IntSliderModel")
            rest = [rest_round_trip(api, nb, slider["comm_id"], 1000 + i) for i in range(moves)]
        finally:
            server.stop()

    print(f"\nWidget round trip, {moves} slider moves, warm kernel, local worker (ms)")
    rows: list[tuple[str, ...]] = [("path", "p50", "p95", "max")]
    for name, values in (
        ("page A key -> kernel callback -> page B label", across),
        ("page A key -> kernel callback -> page A label", echo),
        ("REST change -> kernel idle (no browser)", rest),
    ):
        rows.append(
            (
                name,
                f"{statistics.median(values):.1f}",
                f"{pct(values, 0.95):.1f}",
                f"{max(values):.1f}",
            )
        )
    table(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=100)
    asyncio.run(main(parser.parse_args().moves))
