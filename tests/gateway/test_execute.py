"""Cells run on a real worker with a real ipykernel; everyone sees the outputs."""

from __future__ import annotations

import asyncio
import base64
import re
import time

import pytest
from pycrdt import Array, Doc, Text

from tests.gateway.conftest import Cluster, wait_for_workers
from tests.gateway.helpers import cell, finished_since, run, status, text_of
from tests.support import YClient, eventually, notebook_with_code, sync_url
from tests.support_pg import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Running cells holds on SQLite and on PostgreSQL alike."""
    return str(request.param)


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


RICH = """
from IPython.display import display, HTML, Image, clear_output
import sys
print("out")
print("err", file=sys.stderr)
display(HTML("<b>bold</b>"))
handle = display({"text/plain": "v1"}, raw=True, display_id="counter")
"""


async def test_every_output_type(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    sources = [
        RICH,
        "handle.update({'text/plain': 'v2'}, raw=True)",
        "1/0",
        "print('gone')\nclear_output()\nprint('kept')",
        "print('old')\nclear_output(wait=True)\nprint('new')",
        "{'a': 1}",
    ]
    nb, ids = notebook_with_code(ann, sources)
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, ids[:2], client)
        outputs = cell(client, ids[0])["outputs"]
        assert [o["output_type"] for o in outputs] == [
            "stream",
            "stream",
            "display_data",
            "display_data",
        ]
        assert outputs[0] == {"output_type": "stream", "name": "stdout", "text": "out\n"}
        assert outputs[1]["name"] == "stderr"
        assert outputs[2]["data"]["text/html"] == "<b>bold</b>"
        # update_display_data changed the output shown by the earlier cell, in place.
        assert outputs[3]["data"] == {"text/plain": "v2"}
        await run(ann, nb, [ids[2]], client)
        error = cell(client, ids[2])["outputs"][0]
        assert error["output_type"] == "error"
        assert error["ename"] == "ZeroDivisionError"
        plain = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error["traceback"]))
        assert "1/0" in plain
        assert cell(client, ids[2])["metadata"]["executionInfo"]["status"] == "error"
        await run(ann, nb, ids[3:], client)
        assert text_of(client, ids[3]) == "kept\n"
        assert text_of(client, ids[4]) == "new\n"
        result = cell(client, ids[5])["outputs"][0]
        assert result["output_type"] == "execute_result"
        assert result["execution_count"] == cell(client, ids[5])["execution_count"]
    exported = ann.export(nb)  # display ids do not leak into the file; it validates
    assert all("transient" not in o for c in exported["cells"] for o in c["outputs"])
    ann.client.close()


async def test_error_stops_the_rest_of_a_run_all(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, ["a = 1", "raise ValueError('stop here')", "b = 2"])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, ids[:2], client)
        response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ids})
        assert response.status_code == 202

        def settled() -> bool:
            # Idle with nothing queued: between two cells of a run the kernel is idle too.
            now = status(ann, nb)
            return bool(now["status"] == "idle" and not now["queued_cells"])

        await eventually(settled)
        await eventually(lambda: cell(client, ids[2])["execution_state"] == "idle")
        assert cell(client, ids[2])["execution_count"] is None  # never ran
        assert "ValueError: stop here" in text_of(client, ids[1])
    ann.client.close()


async def test_progress_bars_update_in_place(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    code = (
        "import sys, time\n"
        "for i in range(0, 101, 5):\n"
        "    sys.stdout.write(f'\\rprogress {i:3d}%')\n"
        "    sys.stdout.flush()\n"
        "    time.sleep(0.02)\n"
        "print()\n"
        "print('ab\\bc')\n"
        "print('naïve → ünïcode')"
    )
    nb, ids = notebook_with_code(ann, [code])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, ids, client)
        assert text_of(client, ids[0]) == "progress 100%\nac\nnaïve → ünïcode\n"
        assert len(cell(client, ids[0])["outputs"]) == 1  # one stream, coalesced
    ann.client.close()


async def test_markdown_skipped_unknown_cell_refused(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb, _ = notebook_with_code(ann, ["1"])
    response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": ["nope"]})
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]
    response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": []})
    assert response.status_code == 422
    ann.client.close()


async def test_roles_on_every_gateway_route(cluster: Cluster) -> None:
    ann, ben = cluster.api("ann"), cluster.api("ben")
    nb, ids = notebook_with_code(ann, ["1"])
    for role in ("viewer", "commenter"):
        ann.share(nb, "ben", role)
        for path, body in [
            ("execute", {"cell_ids": ids}),
            ("kernel/interrupt", None),
            ("kernel/restart", None),
            ("kernel/input", {"value": "x"}),
        ]:
            response = ben.client.post(f"/api/notebooks/{nb}/{path}", json=body)
            assert response.status_code == 403, (role, path, response.text)
        response = ben.client.put(f"/api/notebooks/{nb}/runtime", json={"type": "gpu"})
        assert response.status_code == 403
        assert status(ben, nb)["type"] == "cpu"  # reading the status is fine
    response = ben.client.get("/api/workers")
    assert response.status_code == 403
    response = ben.client.post("/api/workers/tokens", json={"name": "x"})
    assert response.status_code == 403
    ann.client.close()
    ben.client.close()


async def test_kernels_never_see_the_worker_token(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    code = "import os\nsorted(k for k in os.environ if 'TANDEM_WORKER' in k)"
    nb, ids = notebook_with_code(ann, [code])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, ids, client)
        assert text_of(client, ids[0]) == "[]"
    ann.client.close()


async def test_a_run_waits_for_the_edits_the_caller_has_made(cluster: Cluster) -> None:
    """The browser sends its state vector with a run: the server runs the code the caller
    sees, even when the REST call overtakes the keystrokes on the websocket."""
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, ["print('old code')"])
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        # An edit the server has not got yet: made on a copy, delivered a little later.
        ahead = Doc()
        ahead.apply_update(client.doc.get_update())
        before = ahead.get_state()
        source = ahead.get("cells", type=Array)[0]["source"]
        source.clear()
        source += "print('new code')"
        late_update = ahead.get_update(before)
        seen = base64.b64encode(ahead.get_state()).decode()

        async def deliver_late() -> None:
            await asyncio.sleep(0.5)
            client.doc.apply_update(late_update)

        since = int(time.time() * 1000) - 5
        delivery = asyncio.create_task(deliver_late())
        response = await asyncio.to_thread(
            ann.client.post,
            f"/api/notebooks/{nb}/execute",
            json={"cell_ids": ids, "state_vector": seen},
        )
        assert response.status_code == 202, response.text
        await delivery
        await eventually(lambda: finished_since(client, ids[0], since), 30)
        assert text_of(client, ids[0]) == "new code\n"
        # Edits that never arrive: a clear refusal, nothing queued.
        never = Doc()
        never.get("t", type=Text).insert(0, "never sent")
        stale = base64.b64encode(never.get_state()).decode()
        refused = ann.client.post(
            f"/api/notebooks/{nb}/execute", json={"cell_ids": ids, "state_vector": stale}
        )
        assert refused.status_code == 409
        assert "not reached the server" in refused.json()["detail"]
        garbage = ann.client.post(
            f"/api/notebooks/{nb}/execute", json={"cell_ids": ids, "state_vector": "%%%"}
        )
        assert garbage.status_code == 400
    ann.client.close()
