"""The files REST API through a real server: roles, bad paths, quota, cut-off uploads,
concurrent writers, folders and moves, safe downloads, versions and the zip."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import Cluster, running_cluster
from tests.gateway.helpers import Events, events_url
from tests.support import Api

QUOTA_MB = 2


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("files-api"), TANDEM_NOTEBOOK_FILES_MB=str(QUOTA_MB)
    ) as shared:
        yield shared


def files_of(api: Api, nb: str) -> dict[str, dict[str, object]]:
    answer = api.client.get(f"/api/notebooks/{nb}/files")
    assert answer.status_code == 200, answer.text
    return {f["path"]: f for f in answer.json()["files"]}


def put(api: Api, nb: str, path: str, body: bytes, **headers: str) -> httpx.Response:
    return api.client.put(f"/api/notebooks/{nb}/files/{path}", content=body, headers=headers)


def staging(cluster: Cluster) -> list[Path]:
    """Spooled uploads left behind (waiting briefly for a response's own clean-up)."""
    folder = cluster.server.data_dir / "files" / ".staging"
    deadline = time.monotonic() + 10
    while list(folder.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(folder.iterdir())


def test_viewers_and_commenters_read_and_download_but_change_nothing(cluster: Cluster) -> None:
    ann, ben = cluster.api("ann"), cluster.api("ben")
    nb = ann.create("Shared data")
    assert put(ann, nb, "data/in.csv", b"1,2\n").status_code == 201
    for role in ("viewer", "commenter"):
        ann.share(nb, "ben", role)
        assert list(files_of(ben, nb)) == ["data/in.csv"]
        assert ben.client.get(f"/api/notebooks/{nb}/files/data/in.csv").content == b"1,2\n"
        refused = [
            put(ben, nb, "data/in.csv", b"evil"),
            put(ben, nb, "new.txt", b"evil"),
            ben.client.delete(f"/api/notebooks/{nb}/files/data/in.csv"),
            ben.client.patch(f"/api/notebooks/{nb}/files/data/in.csv", json={"path": "x.csv"}),
            ben.client.post(f"/api/notebooks/{nb}/files/folder", json={"type": "directory"}),
        ]
        assert [r.status_code for r in refused] == [403] * 5, [r.text for r in refused]
    assert list(files_of(ann, nb)) == ["data/in.csv"]
    assert ann.client.get(f"/api/notebooks/{nb}/files/data/in.csv").content == b"1,2\n"
    # Someone with no role sees no such notebook.
    ann.client.delete(f"/api/notebooks/{nb}/members/ben")
    assert ben.client.get(f"/api/notebooks/{nb}/files").status_code == 404
    assert ben.client.get(f"/api/notebooks/{nb}/files/data/in.csv").status_code == 404


@pytest.mark.parametrize(
    "raw",
    [
        "%2E%2E/outside.txt",
        "data/%2e%2e/%2e%2e/outside.txt",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "data%5Cx.txt",
        "nul%00.txt",
        "line%0Abreak.txt",
        "rtl%E2%80%AEtxt.exe",
        "a//b.txt",
        "x" * 256,
    ],
)
def test_paths_that_leave_the_folder_or_lie_are_refused_and_nothing_is_written(
    cluster: Cluster, raw: str
) -> None:
    ann = cluster.api("ann")
    nb = ann.create("Traversal")
    url = f"{cluster.server.url}/api/notebooks/{nb}/files/{raw}"
    # Sent as written: a client would normalise the dots away before the server saw them.
    answer = ann.client.send(ann.client.build_request("PUT", httpx.URL(url), content=b"x"))
    assert answer.status_code == 400, answer.text
    assert "detail" in answer.json()
    assert files_of(ann, nb) == {}
    assert ann.client.get(f"/api/notebooks/{nb}/files/{raw}").status_code in (400, 404)
    assert staging(cluster) == []


def test_the_quota_answers_413_with_the_numbers_and_keeps_what_was_there(
    cluster: Cluster,
) -> None:
    ann = cluster.api("ann")
    nb = ann.create("Quota")
    first = b"a" * (QUOTA_MB * 1024 * 1024 - 1000)
    assert put(ann, nb, "big.bin", first).status_code == 201
    over = put(ann, nb, "more.bin", b"b" * 2000)
    assert over.status_code == 413, over.text
    assert f"{QUOTA_MB} MB" in over.json()["detail"]
    assert "TANDEM_NOTEBOOK_FILES_MB" in over.json()["detail"]

    # No Content-Length (chunked): refused while streaming, nothing half-kept.
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"c" * 100_000

    streamed = ann.client.put(f"/api/notebooks/{nb}/files/stream.bin", content=chunks())
    assert streamed.status_code == 413, streamed.text
    # Replacing a file may use the room it frees.
    assert put(ann, nb, "big.bin", first[:-10]).status_code == 200
    assert set(files_of(ann, nb)) == {"big.bin"}
    listing = ann.client.get(f"/api/notebooks/{nb}/files").json()
    assert listing["quota_bytes"] == QUOTA_MB * 1024 * 1024
    assert listing["total_bytes"] == len(first) - 10
    assert staging(cluster) == []


def test_an_upload_cut_off_midway_leaves_nothing_visible(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb = ann.create("Cut off")
    assert put(ann, nb, "kept.txt", b"old").status_code == 201
    for path in ("kept.txt", "new.txt"):
        with socket.create_connection(("127.0.0.1", cluster.server.port)) as raw:
            raw.sendall(
                (
                    f"PUT /api/notebooks/{nb}/files/{path} HTTP/1.1\r\n"
                    f"Host: 127.0.0.1\r\nAuthorization: Bearer {ann.person.token}\r\n"
                    "Content-Length: 1000000\r\n\r\n"
                ).encode()
                + b"x" * 300_000
            )
            time.sleep(0.3)
    assert staging(cluster) == []
    assert set(files_of(ann, nb)) == {"kept.txt"}
    assert ann.client.get(f"/api/notebooks/{nb}/files/kept.txt").content == b"old"


def test_two_writers_of_one_path_last_complete_write_wins_and_both_are_told(
    cluster: Cluster,
) -> None:
    ann, ben = cluster.api("ann"), cluster.api("ben")
    nb = ann.create("Race")
    ann.share(nb, "ben", "editor")
    started = threading.Event()
    results: dict[str, httpx.Response] = {}

    def slow() -> Iterator[bytes]:
        yield b"ann-"
        started.set()
        time.sleep(1.0)
        yield b"slow"

    def ann_writes() -> None:
        results["ann"] = ann.client.put(f"/api/notebooks/{nb}/files/shared.txt", content=slow())

    writer = threading.Thread(target=ann_writes)

    async def watch() -> list[dict[str, object]]:
        async with Events(events_url(cluster.server, nb, ann.person.token)) as events:
            writer.start()
            assert started.wait(5)
            results["ben"] = put(ben, nb, "shared.txt", b"ben-fast")
            writer.join(10)
            await events.wait("files.changed", lambda e: e.get("by") == "ann")
            return events.of("files.changed")

    import asyncio

    seen = asyncio.run(watch())
    assert results["ben"].status_code == 201
    assert results["ann"].status_code == 200  # it replaced ben's, which completed first
    assert results["ann"].json()["replaced"] is True
    assert ann.client.get(f"/api/notebooks/{nb}/files/shared.txt").content == b"ann-slow"
    writes = [(e["by"], e.get("replaced")) for e in seen if e["action"] == "written"]
    assert writes[0] == ("ben", None)
    assert writes[1][0] == "ann"
    assert writes[1][1]["by"] == "ben"  # type: ignore[index]  (ben learns his went)

    # A writer who says what it replaces is refused when someone came first.
    sha = files_of(ann, nb)["shared.txt"]["sha256"]
    assert put(ben, nb, "shared.txt", b"v2", **{"If-Match": f'"{sha}"'}).status_code == 200
    stale = put(ann, nb, "shared.txt", b"v3", **{"If-Match": f'"{sha}"'})
    assert stale.status_code == 412, stale.text
    assert put(ann, nb, "shared.txt", b"v3", **{"If-None-Match": "*"}).status_code == 412
    assert ann.client.get(f"/api/notebooks/{nb}/files/shared.txt").content == b"v2"


def test_folders_moves_and_deletes(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb = ann.create("Folders")
    base = f"/api/notebooks/{nb}/files"
    assert put(ann, nb, "a.txt", b"a").status_code == 201
    assert put(ann, nb, "a.txt/inside.txt", b"x").status_code == 409  # a.txt is a file
    assert put(ann, nb, "d/e/f.txt", b"f").status_code == 201
    assert put(ann, nb, "d", b"x").status_code == 409  # d is a folder
    assert ann.client.post(f"{base}/empty", json={"type": "directory"}).status_code == 201
    assert ann.client.post(f"{base}/empty", json={"type": "directory"}).status_code == 409
    listing = files_of(ann, nb)
    assert listing["empty"]["kind"] == "directory"
    # Moving a folder moves all in it; nothing is overwritten; a folder cannot enter itself.
    assert ann.client.patch(f"{base}/d", json={"path": "moved/d"}).status_code == 200
    assert ann.client.patch(f"{base}/a.txt", json={"path": "moved/d/e/f.txt"}).status_code == 409
    assert ann.client.patch(f"{base}/moved", json={"path": "moved/inner"}).status_code == 400
    assert ann.client.patch(f"{base}/a.txt", json={"path": "../x"}).status_code == 400
    assert ann.client.patch(f"{base}/nothing", json={"path": "y"}).status_code == 404
    assert set(files_of(ann, nb)) == {"a.txt", "empty", "moved/d/e/f.txt"}
    assert ann.client.get(f"{base}/moved/d/e/f.txt").content == b"f"
    # A file put into the empty folder makes its row go (the folder is implied now).
    assert put(ann, nb, "empty/now.txt", b"n").status_code == 201
    assert "empty" not in files_of(ann, nb)
    assert ann.client.delete(f"{base}/moved").status_code == 204
    assert ann.client.delete(f"{base}/moved").status_code == 404
    assert set(files_of(ann, nb)) == {"a.txt", "empty/now.txt"}


def test_downloads_never_run_as_pages_of_our_origin(cluster: Cluster) -> None:
    """An editor's uploaded HTML or SVG must not execute with a viewer's session."""
    ann = cluster.api("ann")
    nb = ann.create("XSS")
    page = b"<script>fetch('/api/me').then(r => r.text()).then(alert)</script>"
    assert put(ann, nb, "page.html", page).status_code == 201
    assert put(ann, nb, "résumé.svg", b"<svg onload='alert(1)'/>").status_code == 201
    html = ann.client.get(f"/api/notebooks/{nb}/files/page.html")
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["content-disposition"].startswith("attachment;")
    assert html.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in html.headers["content-security-policy"]
    svg = ann.client.get(f"/api/notebooks/{nb}/files/r%C3%A9sum%C3%A9.svg")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9.svg" in svg.headers["content-disposition"]
    assert svg.headers["content-disposition"].startswith("attachment;")


def test_a_version_keeps_the_files_and_restoring_brings_them_back(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb = ann.create("Versions")
    assert put(ann, nb, "data.csv", b"version one").status_code == 201
    saved = ann.client.post(f"/api/notebooks/{nb}/versions", json={"name": "v1"})
    assert saved.status_code == 201, saved.text
    assert saved.json()["files"] == 1
    assert put(ann, nb, "data.csv", b"version two").status_code == 200
    assert put(ann, nb, "extra.csv", b"later").status_code == 201
    assert ann.client.delete(f"/api/notebooks/{nb}/files/data.csv").status_code == 204
    restored = ann.client.post(f"/api/notebooks/{nb}/versions/{saved.json()['id']}/restore")
    assert restored.status_code == 200, restored.text
    assert set(files_of(ann, nb)) == {"data.csv"}
    assert ann.client.get(f"/api/notebooks/{nb}/files/data.csv").content == b"version one"
    # What the restore replaced is a version too, with its files.
    before = ann.client.post(f"/api/notebooks/{nb}/versions/{restored.json()['saved_as']}/restore")
    assert before.status_code == 200
    assert set(files_of(ann, nb)) == {"extra.csv"}


def test_the_archive_holds_the_notebook_and_its_files(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb = ann.create("Zip me")
    assert put(ann, nb, "data/in.csv", b"1,2\n").status_code == 201
    assert put(ann, nb, "Zip me.ipynb", b"not the notebook").status_code == 201
    assert (
        ann.client.post(f"/api/notebooks/{nb}/files/out", json={"type": "directory"}).status_code
        == 201
    )
    answer = ann.client.get(f"/api/notebooks/{nb}/archive")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as zf:
        names = set(zf.namelist())
        assert names == {"_Zip me.ipynb", "Zip me.ipynb", "data/in.csv", "out/"}
        assert zf.read("data/in.csv") == b"1,2\n"
        notebook = json.loads(zf.read("_Zip me.ipynb"))
        assert notebook["nbformat"] == 4
    assert staging(cluster) == []


def test_deleting_a_notebook_deletes_its_files(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb = ann.create("Gone")
    body = b"remove me"
    assert put(ann, nb, "x.bin", body).status_code == 201
    blob = cluster.server.data_dir / "files" / nb / hashlib.sha256(body).hexdigest()[:2]
    assert blob.is_dir()
    assert ann.client.delete(f"/api/notebooks/{nb}").status_code == 204
    deadline = time.monotonic() + 10
    while (cluster.server.data_dir / "files" / nb).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (cluster.server.data_dir / "files" / nb).exists()


def test_folders_are_matched_by_exact_name_not_ignoring_case(cluster: Cluster) -> None:
    """SQLite's LIKE ignores case: `DATA` must not be `data`."""
    ann = cluster.api("ann")
    nb = ann.create("Case")
    base = f"/api/notebooks/{nb}/files"
    assert put(ann, nb, "data/x.csv", b"x").status_code == 201
    assert put(ann, nb, "res/y.csv", b"y").status_code == 201
    assert ann.client.delete(f"{base}/DATA").status_code == 404
    assert ann.client.patch(f"{base}/RES", json={"path": "moved"}).status_code == 404
    assert put(ann, nb, "Data", b"a file beside the folder").status_code == 201
    assert set(files_of(ann, nb)) == {"data/x.csv", "res/y.csv", "Data"}


def test_refused_uploads_store_nothing(cluster: Cluster) -> None:
    """A write refused for its precondition, its place or the quota is refused before its
    body is stored: failing uploads cannot fill the disk."""
    ann = cluster.api("ann")
    nb = ann.create("No orphans")
    assert put(ann, nb, "a.txt", b"a").status_code == 201
    blobs = cluster.server.data_dir / "files" / nb
    before = sorted(p.name for p in blobs.glob("*/*"))
    for index in range(3):
        body = f"stale {index}".encode()
        assert put(ann, nb, "a.txt", body, **{"If-Match": '"0000"'}).status_code == 412
        assert put(ann, nb, "a.txt/inside", body).status_code == 409
        assert put(ann, nb, "a.txt", body, **{"If-None-Match": "*"}).status_code == 412
    assert sorted(p.name for p in blobs.glob("*/*")) == before
    assert staging(cluster) == []


def test_content_lost_from_storage_is_a_404_and_the_zip_says_so(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb = ann.create("Lost blob")
    assert put(ann, nb, "kept.txt", b"kept").status_code == 201
    assert put(ann, nb, "lost.txt", b"lost").status_code == 201
    for blob in (cluster.server.data_dir / "files" / nb).glob("*/*"):
        if blob.read_bytes() == b"lost":
            blob.unlink()
    answer = ann.client.get(f"/api/notebooks/{nb}/files/lost.txt")
    assert answer.status_code == 404
    assert "missing from storage" in answer.json()["detail"]
    archive = ann.client.get(f"/api/notebooks/{nb}/archive")
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zf:
        assert zf.read("kept.txt") == b"kept"
        assert b"lost.txt" in zf.read("Lost blob.ipynb.missing.txt")
