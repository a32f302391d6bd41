"""Cells run on a real worker with a real ipykernel; everyone sees the outputs."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import Cluster, wait_for_workers
from tests.gateway.helpers import cell, run, status, text_of
from tests.support import YClient, eventually, notebook_with_code, sync_url


@pytest.fixture(autouse=True)
def _workers(cluster: Cluster) -> None:
    wait_for_workers(cluster, 1)


async def test_outputs_reach_another_client(cluster: Cluster) -> None:
    ann, ben = cluster.api("ann"), cluster.api("ben")
    nb, (first, second) = notebook_with_code(ann, ["x = 6 * 7\nprint('hello')\nx", "x + 1"])
    ann.share(nb, "ben", "viewer")
    async with YClient(sync_url(cluster.server, nb, cluster.person("ben").token)) as watcher:
        await run(ann, nb, [first, second], watcher)
        assert text_of(watcher, first) == "hello\n42"
        assert text_of(watcher, second) == "43"
        view = cell(watcher, first)
        assert view["execution_count"] == 1
        assert cell(watcher, second)["execution_count"] == 2
        info = view["metadata"]["executionInfo"]
        assert info["user"]["displayName"] == "ann"
        assert info["status"] == "ok"
        assert info["worker"] == "cpu-1"
        assert info["runtime"] == "cpu"
    assert status(ben, nb)["status"] == "idle"
    exported = ann.export(nb)
    assert exported["cells"][0]["outputs"][0] == {
        "output_type": "stream",
        "name": "stdout",
        "text": "hello\n",
    }
    ben.client.close()
    ann.client.close()
