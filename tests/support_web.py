"""What the browser tests share: signed-in browser contexts, opening a notebook page, and
running the editor's pure modules (static/src) under Node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.gateway.conftest import Cluster
from tests.support import Api

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
ARTIFACTS = ROOT / "test-artifacts"


async def signed_in(browser: Browser, cluster: Cluster, name: str) -> BrowserContext:
    """A browser context with `name`'s session cookie, as after logging in."""
    context = await browser.new_context(
        base_url=cluster.server.url, viewport={"width": 1200, "height": 900}
    )
    person = cluster.people.get(name, cluster.admin)
    response = await context.request.post(
        "/api/auth/login", data={"username": person.username, "password": person.password}
    )
    assert response.ok, await response.text()
    return context


async def open_notebook(page: Page, notebook: str) -> None:
    """The notebook's page, connected, with its first cell's editor shown."""
    await page.goto(f"/n/{notebook}")
    await expect(page.get_by_test_id("status")).to_have_attribute("data-state", "connected")
    await expect(page.locator(".cell .cm-content").first).to_be_visible()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


def run_module(module: str, expression: str, *args: Any) -> Any:
    """`expression` over the exports of static/src/`module` (as `m`) and `args` (a list),
    evaluated by Node; its value as JSON."""
    script = (
        f"import * as m from './src/{module}'\n"
        f"const args = {json.dumps(args)}\n"
        f"process.stdout.write(JSON.stringify(({expression}) ?? null))"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=STATIC,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)


def notebook_with_outputs(api: Api, cells: list[tuple[str, dict[str, Any]]], title: str) -> str:
    """A notebook of code cells that already show an output each (`source`, `data`, as a
    display_data bundle), so a test needs no kernel to have outputs on the page."""
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{index}",
                "metadata": {},
                "source": source,
                "outputs": [{"output_type": "display_data", "data": data, "metadata": {}}],
                "execution_count": None,
            }
            for index, (source, data) in enumerate(cells)
        ],
    }
    response = api.upload("outputs.ipynb", json.dumps(notebook).encode(), title=title)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
