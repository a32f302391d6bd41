"""The Files panel in a real browser (Debian's Chromium through Playwright) against a real
server: a file dropped in one browser shows live in another and downloads byte for byte,
editors rename, move and delete, viewers only read, and an upload over the quota says why."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, FilePayload, Locator, Page, expect

from tests.gateway.conftest import Cluster, running_cluster
from tests.support import notebook_with_code
from tests.support_web import artifact, signed_in

CSV = "city,people\nLyon,522969\nGenève,203856\n"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A server whose notebooks may hold 1 MB of files, no worker (none is needed)."""
    with running_cluster(tmp_path_factory.mktemp("quota"), TANDEM_NOTEBOOK_FILES_MB="1") as c:
        yield c


@contextlib.asynccontextmanager
async def files_open(
    browser: Browser, cluster: Cluster, notebook: str, *names: str
) -> AsyncIterator[list[Page]]:
    """The notebook open with its Files panel shown, one browser per person."""
    contexts = [await signed_in(browser, cluster, name) for name in names]
    try:
        pages = [await context.new_page() for context in contexts]
        await asyncio.gather(*(open_files(page, notebook) for page in pages))
        yield pages
    finally:
        for context in contexts:
            await context.close()


async def open_files(page: Page, notebook: str) -> None:
    await page.goto(f"/n/{notebook}")
    await expect(page.get_by_test_id("status")).to_have_attribute("data-state", "connected")
    await page.get_by_test_id("open-files").click()
    await expect(page.get_by_test_id("files-usage")).to_be_visible()


def row(page: Page, path: str) -> Locator:
    return page.get_by_test_id("file-tree").locator(f'li[data-path="{path}"]')


async def drop(page: Page, target: Locator, files: dict[str, str]) -> None:
    """Drag these files (name: text) from the desktop and drop them on `target`."""
    transfer = await page.evaluate_handle(
        """(files) => {
            const transfer = new DataTransfer()
            for (const [name, text] of Object.entries(files)) {
                transfer.items.add(new File([text], name, { type: 'text/csv' }))
            }
            return transfer
        }""",
        files,
    )
    await target.dispatch_event("dragenter", {"dataTransfer": transfer})
    await target.dispatch_event("dragover", {"dataTransfer": transfer})
    await expect(page.get_by_test_id("files")).to_have_class("files dragging")
    await target.dispatch_event("drop", {"dataTransfer": transfer})
    await expect(page.get_by_test_id("files")).to_have_class("files")


def answer_dialogs(page: Page, answers: list[str | bool]) -> None:
    """Answer the next prompts and confirms in order: text for a prompt, True for OK."""

    async def answer(dialog: Dialog) -> None:
        reply = answers.pop(0)
        if reply is False:
            await dialog.dismiss()
        else:
            await dialog.accept("" if reply is True else reply)

    page.on("dialog", answer)


async def test_a_dropped_file_shows_live_for_the_other_and_downloads(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, ["import pandas"], title="Cities")
    ann.share(notebook, "ben", "viewer")
    async with files_open(browser, web, notebook, "ann", "ben") as (ann_page, ben_page):
        await expect(ben_page.get_by_test_id("file-tree")).to_contain_text("No files.")
        await drop(ann_page, ann_page.get_by_test_id("files"), {"cities.csv": CSV})
        # Ben did nothing: the event brought it.
        for page in (ann_page, ben_page):
            await expect(row(page, "cities.csv")).to_contain_text(f"{len(CSV.encode())} B")
            await expect(row(page, "cities.csv")).to_contain_text("ann")
        await expect(ben_page.get_by_test_id("files-usage")).to_contain_text(
            f"1 file · {len(CSV.encode())} B of 1.0 GB"
        )
        async with ben_page.expect_download() as info:
            await row(ben_page, "cities.csv").get_by_role("link", name="cities.csv").click()
        download = await info.value
        assert download.suggested_filename == "cities.csv"
        assert Path(await download.path()).read_bytes() == CSV.encode()

        # Two at once onto a folder row go into that folder, each with its progress bar.
        made = ann.client.post(f"/api/notebooks/{notebook}/files/raw", json={"type": "directory"})
        assert made.status_code == 201, made.text
        await expect(row(ben_page, "raw")).to_contain_text("empty")
        await drop(ann_page, row(ann_page, "raw"), {"a.csv": "a\n1\n", "b.csv": "b\n2\n"})
        await expect(row(ben_page, "raw/a.csv")).to_be_visible()
        await expect(row(ben_page, "raw/b.csv")).to_be_visible()
        await expect(ann_page.get_by_test_id("upload-progress")).to_have_count(0)
        listed = ann.client.get(f"/api/notebooks/{notebook}/files").json()["files"]
        assert sorted(f["path"] for f in listed) == ["cities.csv", "raw/a.csv", "raw/b.csv"]
        await ann_page.screenshot(path=artifact("files-panel.png"))


async def test_editors_make_rename_move_and_delete_and_others_see_it(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, [""], title="Tidy files")
    ann.share(notebook, "ben", "editor")
    put = ann.client.put(f"/api/notebooks/{notebook}/files/notes.txt", content=b"hello")
    assert put.status_code == 201, put.text
    async with files_open(browser, web, notebook, "ann", "ben") as (ann_page, ben_page):
        answer_dialogs(ann_page, ["archive", "archive/old notes.txt", True])
        await ann_page.get_by_test_id("new-folder").click()
        await expect(row(ben_page, "archive")).to_be_visible()
        await row(ann_page, "notes.txt").get_by_role("button", name="rename").click()
        await expect(row(ben_page, "archive/old notes.txt")).to_be_visible()
        await expect(row(ben_page, "notes.txt")).to_have_count(0)
        # The folder now holds a file: deleting it takes the file too, once confirmed.
        await row(ann_page, "archive").get_by_role("button", name="delete").click()
        await expect(ben_page.get_by_test_id("file-tree")).to_contain_text("No files yet")
        assert ann.client.get(f"/api/notebooks/{notebook}/files").json()["files"] == []


async def test_changes_while_the_tab_is_closed_mark_it_and_show_when_opened(
    web: Cluster, browser: Browser
) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, [""], title="Quiet")
    async with files_open(browser, web, notebook, "ann") as (page,):
        await page.get_by_test_id("open-comments").click()
        put = ann.client.put(f"/api/notebooks/{notebook}/files/.local/lib/x.py", content=b"x")
        assert put.status_code == 201, put.text
        await expect(page.get_by_test_id("open-files")).to_have_class("news")
        await page.get_by_test_id("open-files").click()
        await expect(page.get_by_test_id("open-files")).not_to_have_class("news")
        # What pip leaves in .local starts folded.
        await expect(row(page, ".local")).to_be_visible()
        await expect(row(page, ".local/lib")).to_have_count(0)
        await row(page, ".local").get_by_role("button", name=".local/").click()
        await expect(row(page, ".local/lib/x.py")).to_be_visible()


async def test_a_viewer_can_download_but_not_change(web: Cluster, browser: Browser) -> None:
    ann = web.api("ann")
    notebook, _ = notebook_with_code(ann, [""], title="Read only files")
    ann.share(notebook, "ben", "viewer")
    put = ann.client.put(f"/api/notebooks/{notebook}/files/data/x.csv", content=b"x\n1\n")
    assert put.status_code == 201, put.text
    async with files_open(browser, web, notebook, "ben") as (page,):
        await expect(row(page, "data/x.csv")).to_be_visible()
        panel = page.get_by_test_id("files")
        for control in ("upload", "new-folder", "upload-input"):
            await expect(page.get_by_test_id(control)).to_have_count(0)
        await expect(panel.get_by_role("button", name="rename")).to_have_count(0)
        await expect(panel.get_by_role("button", name="delete")).to_have_count(0)
        await expect(page.get_by_test_id("download-archive")).to_have_attribute(
            "href", f"/api/notebooks/{notebook}/archive"
        )
        # A drop is not taken either.
        await page.evaluate(
            """() => {
                const transfer = new DataTransfer()
                transfer.items.add(new File(['no'], 'no.csv'))
                document.querySelector('[data-testid=files]')
                    .dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true }))
            }"""
        )
        await expect(page.get_by_test_id("upload-progress")).to_have_count(0)
    paths = [f["path"] for f in ann.client.get(f"/api/notebooks/{notebook}/files").json()["files"]]
    assert paths == ["data/x.csv"]


async def test_an_upload_over_the_quota_shows_the_servers_reason(
    small: Cluster, browser: Browser
) -> None:
    ann = small.api("ann")
    notebook, _ = notebook_with_code(ann, [""], title="Full")
    put = ann.client.put(f"/api/notebooks/{notebook}/files/big.bin", content=b"0" * 700_000)
    assert put.status_code == 201, put.text
    async with files_open(browser, small, notebook, "ann") as (page,):
        await expect(page.get_by_test_id("files-usage")).to_contain_text("684 KB of 1.0 MB")
        await page.get_by_test_id("upload-input").set_input_files(
            files=FilePayload(
                name="more.bin", mimeType="application/octet-stream", buffer=b"1" * 500_000
            )
        )
        toast = page.locator(".toast.error")
        await expect(toast).to_contain_text("more.bin was not uploaded: more.bin is 0.5 MB")
        await expect(toast).to_contain_text("quota")
        await expect(page.get_by_test_id("upload-progress")).to_have_count(0)
    paths = [f["path"] for f in ann.client.get(f"/api/notebooks/{notebook}/files").json()["files"]]
    assert paths == ["big.bin"]
