"""A notebook's files and its kernels, through a real server and a real sandboxed worker:
uploads are in /content, what cells write comes back, and nothing goes with a runtime."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator

import pytest

from tests.gateway.conftest import Cluster, running_cluster
from tests.gateway.helpers import Events, events_url, run, text_of
from tests.support import YClient, eventually, notebook_with_code, sync_url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path_factory.mktemp("files"),
        {"filer": ["--max-kernels", "16"]},
        TANDEM_NOTEBOOK_FILES_MB="8",
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
