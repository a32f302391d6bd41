"""A notebook's files and its kernels, through a real server and a real sandboxed worker:
uploads are in /content, what cells write comes back, and nothing goes with a runtime."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import Cluster, running_cluster
from tests.gateway.helpers import Events, events_url, finished_since, run, text_of
from tests.support import YClient, eventually, notebook_with_code, sync_url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("files"),
        {"filer": ["--max-kernels", "16"]},
        TANDEM_NOTEBOOK_FILES_MB="8",
        TANDEM_RUNTIME_TYPES=json.dumps(
            [
                {"name": "cpu", "label": "CPU"},
                {"name": "cpu-small", "label": "Small", "memory_mb": 512},
                {"name": "small-disk", "label": "Small disk", "disk_mb": 16},
            ]
        ),
    ) as shared:
        yield shared


def listed(cluster: Cluster, notebook_id: str) -> dict[str, dict[str, object]]:
    answer = cluster.api("ann").client.get(f"/api/notebooks/{notebook_id}/files")
    assert answer.status_code == 200, answer.text
    return {f["path"]: f for f in answer.json()["files"]}


async def test_an_upload_is_read_by_the_next_cell_and_a_written_file_comes_back(
    cluster: Cluster,
) -> None:
    api = cluster.api("ann")
    nb, ids = notebook_with_code(
        api,
        [
            "print(open('data/input.csv').read().upper(), end='')",
            "import os\nos.makedirs('out', exist_ok=True)\n"
            "with open('out/results.csv', 'w') as f:\n    f.write('a,b\\n1,2\\n')",
        ],
    )
    put = api.client.put(f"/api/notebooks/{nb}/files/data/input.csv", content=b"x,y\n3,4\n")
    assert put.status_code == 201, put.text
    token = cluster.person("ann").token
    async with (
        YClient(sync_url(cluster.server, nb, token)) as client,
        Events(events_url(cluster.server, nb, token)) as events,
    ):
        await run(api, nb, [ids[0]], client, timeout=120)
        assert text_of(client, ids[0]) == "X,Y\n3,4\n"
        await run(api, nb, [ids[1]], client)
        # Listed as soon as the cell is done: the worker pushes before it says so.
        files = listed(cluster, nb)
        assert files["out/results.csv"]["size"] == 8
        assert files["out/results.csv"]["modified_by"] == "runtime"
        got = api.client.get(f"/api/notebooks/{nb}/files/out/results.csv")
        assert got.content == b"a,b\n1,2\n"
        digest = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
        assert got.headers["etag"] == f'"{digest}"'
        await events.wait("files.changed", lambda e: e.get("path") == "out/results.csv")


async def run_code(cluster: Cluster, nb: str, code: str, client: YClient) -> str:
    """Put `code` in the notebook's first cell, run it, return what it printed."""
    api = cluster.api("ann")
    cell_id = "cell-0"

    def edit() -> None:
        for item in client.cells:
            if item.get("id") == cell_id:
                source = item["source"]
                del source[0 : len(str(source))]
                source.insert(0, code)

    with client.doc.transaction():
        edit()
    since = int(time.time() * 1000) - 5
    # With the client's state vector, the run waits until the server holds the edit.
    seen = base64.b64encode(client.doc.get_state()).decode()
    answer = await asyncio.to_thread(
        api.client.post,
        f"/api/notebooks/{nb}/execute",
        json={"cell_ids": [cell_id], "state_vector": seen},
    )
    assert answer.status_code == 202, answer.text
    await eventually(lambda: finished_since(client, cell_id, since), 120)
    return text_of(client, cell_id)


async def test_files_outlive_a_restart_and_a_runtime_change(
    cluster: Cluster,
) -> None:
    api = cluster.api("ann")
    nb, _ = notebook_with_code(api, ["pass"])
    token = cluster.person("ann").token
    async with YClient(sync_url(cluster.server, nb, token)) as client:
        await run_code(cluster, nb, "open('keep.txt', 'w').write('kept')", client)
        assert "keep.txt" in listed(cluster, nb)
        assert api.client.post(f"/api/notebooks/{nb}/kernel/restart").status_code in (200, 202, 204)
        assert await run_code(cluster, nb, "print(open('keep.txt').read())", client) == "kept\n"
        changed = api.client.put(f"/api/notebooks/{nb}/runtime", json={"type": "cpu-small"})
        assert changed.status_code == 200, changed.text
        assert await run_code(cluster, nb, "print(open('keep.txt').read())", client) == "kept\n"


def status_of(cluster: Cluster, nb: str) -> str:
    answer = cluster.api("ann").client.get(f"/api/notebooks/{nb}/runtime")
    return str(answer.json()["status"])


async def test_a_long_running_cell_s_files_are_listed_while_it_runs(cluster: Cluster) -> None:
    api = cluster.api("ann")
    nb, ids = notebook_with_code(
        api, ["import time\nopen('progress.log', 'w').write('half way')\ntime.sleep(20)"]
    )
    started = api.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
    assert started.status_code == 202
    await eventually(lambda: "progress.log" in listed(cluster, nb), timeout=60)
    assert status_of(cluster, nb) == "busy"
    assert api.client.post(f"/api/notebooks/{nb}/kernel/interrupt").status_code in (200, 202, 204)


async def test_changes_made_over_rest_reach_the_running_kernel_before_its_next_cell(
    cluster: Cluster,
) -> None:
    api = cluster.api("ann")
    nb, _ = notebook_with_code(api, ["pass"])
    token = cluster.person("ann").token
    async with YClient(sync_url(cluster.server, nb, token)) as client:
        await run_code(cluster, nb, "open('old.txt', 'w').write('old')", client)
        assert (
            api.client.put(f"/api/notebooks/{nb}/files/new.txt", content=b"new").status_code == 201
        )
        assert api.client.delete(f"/api/notebooks/{nb}/files/old.txt").status_code == 204
        code = "import os\nprint(sorted(p for p in os.listdir('.') if p.endswith('.txt')))"
        assert await run_code(cluster, nb, code, client) == "['new.txt']\n"
        moved = api.client.patch(f"/api/notebooks/{nb}/files/new.txt", json={"path": "d/n.txt"})
        assert moved.status_code == 200
        assert await run_code(cluster, nb, "print(open('d/n.txt').read())", client) == "new\n"


async def test_symlinks_and_fifos_a_kernel_plants_are_never_followed(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The worker (root) reads and writes the kernel's directory: a planted symlink must not
    make it push the worker's own files or write outside the workspace, a FIFO must not
    hang it."""
    api = cluster.api("ann")
    nb, _ = notebook_with_code(api, ["pass"])
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o777)
    outside.chmod(0o777)
    token = cluster.person("ann").token
    async with (
        YClient(sync_url(cluster.server, nb, token)) as client,
        Events(events_url(cluster.server, nb, token)) as events,
    ):
        code = (
            "import os\n"
            "os.symlink('/etc/shadow', 'shadow')\n"
            "os.symlink('/', 'root')\n"
            f"os.symlink({str(outside)!r}, 'evil')\n"
            "os.mkfifo('pipe')\n"
            "open('plain.txt', 'w').write('fine')\n"
        )
        await run_code(cluster, nb, code, client)
        assert set(listed(cluster, nb)) == {"plain.txt"}
        # An upload into the planted link lands in a real folder in /content, not outside.
        put = api.client.put(f"/api/notebooks/{nb}/files/evil/owned.txt", content=b"x")
        assert put.status_code == 201
        check = "import os\nprint(os.path.islink('evil'), open('evil/owned.txt').read())"
        assert await run_code(cluster, nb, check, client) == "False x\n"
        assert list(outside.iterdir()) == []
        assert not events.of("files.refused")


async def test_what_a_kernel_writes_past_the_quota_is_refused_and_everyone_is_told(
    cluster: Cluster,
) -> None:
    api = cluster.api("ann")
    nb, _ = notebook_with_code(api, ["pass"])
    token = cluster.person("ann").token
    async with (
        YClient(sync_url(cluster.server, nb, token)) as client,
        Events(events_url(cluster.server, nb, token)) as events,
    ):
        code = "open('huge.bin', 'wb').write(b'x' * 9_000_000)\nopen('small.txt', 'w').write('s')"
        await run_code(cluster, nb, code, client)
        refused = await events.wait("files.refused", lambda e: e.get("path") == "huge.bin")
        assert "quota" in str(refused["reason"])
        assert set(listed(cluster, nb)) == {"small.txt"}


async def test_a_worker_killed_mid_run_loses_nothing_that_was_pushed(tmp_path: Path) -> None:
    with running_cluster(tmp_path, {"first": []}) as cluster:
        api = cluster.api("ann")
        nb, ids = notebook_with_code(
            api,
            [
                "import os\nopen('a.txt', 'w').write('A')\n"
                "open('run.sh', 'w').write('#!/bin/sh\\necho ran')\nos.chmod('run.sh', 0o755)",
                "import time\nopen('b.txt', 'w').write('B')\ntime.sleep(60)",
                "import subprocess\nprint(open('a.txt').read() + open('b.txt').read())\n"
                "print(subprocess.run(['./run.sh'], capture_output=True, text=True).stdout)",
            ],
        )
        token = cluster.person("ann").token
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            await run(api, nb, [ids[0]], client, timeout=120)
            assert (
                api.client.post(
                    f"/api/notebooks/{nb}/execute", json={"cell_ids": [ids[1]]}
                ).status_code
                == 202
            )
            await eventually(lambda: "b.txt" in listed(cluster, nb), timeout=30)
            cluster.workers[0].kill()
            await eventually(lambda: status_of(cluster, nb) == "disconnected", timeout=30)
            # A new machine: its own state dir, so the files can only come from the server.
            cluster.start_worker("second")
            await run(api, nb, [ids[2]], client, timeout=120)
            # Executable files (a `%pip install`'s scripts) stay executable.
            assert text_of(client, ids[2]) == "AB\nran\n\n"


def test_the_workers_file_api_serves_only_workers_running_that_notebook(cluster: Cluster) -> None:
    api = cluster.api("ann")
    nb = api.create("Private files")
    assert api.client.put(f"/api/notebooks/{nb}/files/secret.txt", content=b"s").status_code == 201
    sha = listed(cluster, nb)["secret.txt"]["sha256"]
    base = f"{cluster.server.url}/api/workers/notebooks/{nb}"
    # A person's token is no worker's; a real worker's token reaches only notebooks it runs.
    as_person = httpx.get(f"{base}/files", headers={"Authorization": f"Bearer {api.person.token}"})
    assert as_person.status_code == 401
    worker_token = cluster.worker_token("idle-machine")
    headers = {"Authorization": f"Bearer {worker_token}"}
    for answer in (
        httpx.get(f"{base}/files", headers=headers),
        httpx.get(f"{base}/blobs/{sha}", headers=headers),
        httpx.put(f"{base}/files/x.txt", content=b"x", headers=headers),
        httpx.delete(f"{base}/files/secret.txt", headers=headers),
    ):
        assert answer.status_code in (401, 403), answer.text
    assert set(listed(cluster, nb)) == {"secret.txt"}


async def test_odd_names_and_growing_files_never_stall_a_cell(cluster: Cluster) -> None:
    """A name that is not UTF-8 and a file growing while it goes up once hung the cell
    (the push raised past its handler, and the cell's end was never reported)."""
    api = cluster.api("ann")
    nb, _ = notebook_with_code(api, ["pass"])
    token = cluster.person("ann").token
    async with (
        YClient(sync_url(cluster.server, nb, token)) as client,
        Events(events_url(cluster.server, nb, token)) as events,
    ):
        code = (
            "import threading, time\n"
            "open(b'caf\\xe9.txt', 'wb').write(b'latin-1 name')\n"
            "def grow():\n"
            "    with open('train.log', 'a') as log:\n"
            "        for step in range(400):\n"
            "            log.write('step %d\\n' % step * 500)\n"
            "            log.flush()\n"
            "            time.sleep(0.01)\n"
            "threading.Thread(target=grow, daemon=True).start()\n"
            "time.sleep(0.5)\n"
            "print('first')"
        )
        assert await run_code(cluster, nb, code, client) == "first\n"
        assert await run_code(cluster, nb, "print('second')", client) == "second\n"
        refused = await events.wait("files.refused")
        assert "caf\\xe9.txt" in str(refused["path"])
        await eventually(lambda: "train.log" in listed(cluster, nb), timeout=30)
        await asyncio.sleep(4.5)  # the writer is done: the last push has it all
        size = await run_code(cluster, nb, "import os\nprint(os.path.getsize('train.log'))", client)
        await eventually(lambda: listed(cluster, nb)["train.log"]["size"] == int(size), 10)


async def test_what_the_server_did_not_take_stays_in_content(cluster: Cluster) -> None:
    """A pull never deletes a kernel's file the server has not got (refused or unpushed),
    and a file replaced by a folder of the same name goes up."""
    api = cluster.api("ann")
    nb, _ = notebook_with_code(api, ["pass"])
    token = cluster.person("ann").token
    async with YClient(sync_url(cluster.server, nb, token)) as client:
        await run_code(cluster, nb, "open('out', 'w').write('a file first')", client)
        code = (
            "import os\n"
            "open('over.bin', 'wb').write(b'x' * 9_000_000)\n"
            "open('bad\\x01name.txt', 'w').write('refused name')\n"
            "os.remove('out')\nos.makedirs('out')\nopen('out/a.txt', 'w').write('now a folder')"
        )
        await run_code(cluster, nb, code, client)
        assert "out/a.txt" in listed(cluster, nb)
        upload = api.client.put(f"/api/notebooks/{nb}/files/colleague.txt", content=b"hi")
        assert upload.status_code == 201
        check = (
            "import os\nprint(sorted(p for p in os.listdir('.') if p != '.local'),"
            " os.path.getsize('over.bin'))"
        )
        shown = await run_code(cluster, nb, check, client)
        assert shown == "['bad\\x01name.txt', 'colleague.txt', 'out', 'over.bin'] 9000000\n"


async def test_a_huge_sparse_file_is_refused_without_being_read(cluster: Cluster) -> None:
    api = cluster.api("ann")
    nb, _ = notebook_with_code(api, ["pass"])
    token = cluster.person("ann").token
    async with (
        YClient(sync_url(cluster.server, nb, token)) as client,
        Events(events_url(cluster.server, nb, token)) as events,
    ):
        code = "f = open('sparse.img', 'wb')\nf.truncate(40 * 2**30)\nf.close()\nprint('made')"
        assert await run_code(cluster, nb, code, client) == "made\n"
        refused = await events.wait("files.refused", lambda e: e.get("path") == "sparse.img")
        assert "quota" in str(refused["reason"])
        for _ in range(3):
            assert await run_code(cluster, nb, "print(1)", client) == "1\n"


async def test_a_kernel_cannot_make_the_worker_remove_folders_outside_content(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Removing a file the server deleted tidies its empty folders: through directory
    descriptors, so a folder the kernel replaced by a symlink leads nowhere. (This plants
    the symlink between syncs; the mid-walk swap race the review proved against the old
    path-string walk needs renameat2 and thousands of tries, too slow for the suite: the
    walk is `os.fwalk` and every removal is relative to a held descriptor.)"""
    api = cluster.api("ann")
    nb, _ = notebook_with_code(api, ["pass"])
    victim = tmp_path / "victim"
    (victim / "empty").mkdir(parents=True)
    token = cluster.person("ann").token
    async with YClient(sync_url(cluster.server, nb, token)) as client:
        assert (
            api.client.put(f"/api/notebooks/{nb}/files/a/empty/f.txt", content=b"f").status_code
            == 201
        )
        swap = f"import os, shutil\nshutil.rmtree('a')\nos.symlink({str(victim)!r}, 'a')"
        await run_code(cluster, nb, "print(open('a/empty/f.txt').read())", client)
        await run_code(cluster, nb, swap, client)
        assert api.client.delete(f"/api/notebooks/{nb}/files/a/empty/f.txt").status_code in (
            204,
            404,
        )
        await run_code(cluster, nb, "print('after')", client)
    assert (victim / "empty").is_dir()


async def test_disk_mb_is_a_disk_of_that_size_inside_the_kernel(cluster: Cluster) -> None:
    """A runtime type's `disk_mb` is /content's size (a file system of its own on a root
    worker): writing past it fails with 'No space left on device', and what fitted is kept."""
    api = cluster.api("ann")
    nb, _ = notebook_with_code(api, ["pass"])
    assert api.client.put(f"/api/notebooks/{nb}/files/kept.txt", content=b"kept").status_code == 201
    changed = api.client.put(f"/api/notebooks/{nb}/runtime", json={"type": "small-disk"})
    assert changed.status_code == 200, changed.text
    token = cluster.person("ann").token
    async with YClient(sync_url(cluster.server, nb, token)) as client:
        code = (
            "import errno, os\n"
            "size = os.statvfs('.').f_blocks * os.statvfs('.').f_frsize\n"
            "print(12 * 2**20 < size <= 16 * 2**20, open('kept.txt').read())\n"
            "open('fits.bin', 'wb').write(b'x' * 5_000_000)\n"
            "try:\n"
            "    for i in range(4):\n"
            "        open(f'more{i}.bin', 'wb').write(b'y' * 5_000_000)\n"
            "except OSError as error:\n"
            "    print(errno.errorcode[error.errno])"
        )
        assert await run_code(cluster, nb, code, client) == "True kept\nENOSPC\n"
        # Then the notebook's own quota (8 MB here) decides what is kept of what fitted.
        assert "kept.txt" in listed(cluster, nb)


async def test_files_and_the_pip_layer_outlive_the_idle_limit(tmp_path: Path) -> None:
    """The idle limit ends the kernel; its files, the `%pip install` layer (the user site
    in /content/.local) included, are there for the next one."""
    with running_cluster(tmp_path, {"idler": []}, TANDEM_KERNEL_IDLE_TIMEOUT_SECONDS="2") as c:
        api = c.api("ann")
        nb, ids = notebook_with_code(
            api,
            [
                "import os, site\n"
                "os.makedirs(site.getusersitepackages(), exist_ok=True)\n"
                "open(os.path.join(site.getusersitepackages(), 'layered.py'), 'w')"
                ".write('ANSWER = 42')\n"
                "open('result.txt', 'w').write('kept')",
                "import layered\nprint(layered.ANSWER, open('result.txt').read())",
            ],
        )
        token = c.person("ann").token
        async with YClient(sync_url(c.server, nb, token)) as client:
            await run(api, nb, [ids[0]], client, timeout=120)
            await eventually(lambda: status_of(c, nb) == "stopped", timeout=30)
            await run(api, nb, [ids[1]], client, timeout=120)
            assert text_of(client, ids[1]) == "42 kept\n"
        assert any(p.endswith("site-packages/layered.py") for p in listed(c, nb))
