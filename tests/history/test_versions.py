"""Version history through a real server: checkpoints, named versions, compare, export,
restore while others edit (convergence holds, no socket breaks), mass-deletion rescue."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from pycrdt import Array, Map, Text

from tests.support import (
    Api,
    ServerProcess,
    YClient,
    eventually,
    make_people,
    notebook_with_code,
    sync_url,
)


@pytest.fixture
def history_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, dict[str, Any]]]:
    server = ServerProcess(tmp_path / "data", env={"TANDEM_CHECKPOINT_SECONDS": "1"})
    server.start()
    people = make_people(server.data_dir, ["owner", "writer", "reader"])
    yield server, people
    server.stop()
    assert "Traceback" not in server.log(), server.log()[-3000:]


def versions(api: Api, notebook: str) -> list[dict[str, Any]]:
    response = api.client.get(f"/api/notebooks/{notebook}/versions")
    assert response.status_code == 200, response.text
    return list(response.json())


def sources(client: YClient) -> dict[str, str]:
    return {str(c["id"]): str(c["source"]) for c in client.cells}


def new_cell(cell_id: str, source: str) -> Map[Any]:
    return Map(
        {
            "id": cell_id,
            "cell_type": "code",
            "source": Text(source),
            "metadata": Map(),
            "outputs": Array(),
            "execution_count": None,
        }
    )


async def test_named_compare_export_and_restore_while_editing(
    history_server: tuple[ServerProcess, dict[str, Any]],
) -> None:
    server, people = history_server
    owner, writer, reader = (Api(server, people[n]) for n in ("owner", "writer", "reader"))
    nb, ids = notebook_with_code(owner, ["a = 1", "b = 2", "c = 3"])
    owner.share(nb, "writer", "editor")
    owner.share(nb, "reader", "viewer")
    named = owner.client.post(f"/api/notebooks/{nb}/versions", json={"name": "good state"})
    assert named.status_code == 201, named.text
    v1 = named.json()
    assert (v1["kind"], v1["name"], v1["cells"]) == ("named", "good state", 3)
    assert (
        reader.client.post(f"/api/notebooks/{nb}/versions", json={"name": "x"}).status_code == 403
    )
    async with (
        YClient(sync_url(server, nb, people["owner"].token)) as one,
        YClient(sync_url(server, nb, people["writer"].token)) as two,
    ):
        # After the version: a cell rewritten, one deleted, one added.
        one.cells[0]["source"].insert(len("a = 1"), "00")
        del one.cells[1]
        one.cells.append(new_cell("added", "d = 4"))
        await eventually(lambda: sources(two) == sources(one) and "added" in sources(two))
        diff = owner.client.get(f"/api/notebooks/{nb}/versions/compare", params={"base": v1["id"]})
        assert diff.status_code == 200, diff.text
        comparison = diff.json()
        assert [c["id"] for c in comparison["added"]] == ["added"]
        assert [c["id"] for c in comparison["removed"]] == [ids[1]]
        assert [c["id"] for c in comparison["changed"]] == [ids[0]]
        assert "-a = 1" in comparison["changed"][0]["diff"]
        assert "+a = 100" in comparison["changed"][0]["diff"]
        exported = owner.client.get(f"/api/notebooks/{nb}/versions/{v1['id']}/export").json()
        nbformat.validate(nbformat.from_dict(exported))
        assert [c["source"] for c in exported["cells"]] == ["a = 1", "b = 2", "c = 3"]

        assert (
            reader.client.post(f"/api/notebooks/{nb}/versions/{v1['id']}/restore").status_code
            == 403
        )
        # The writer keeps typing in the last cell while the owner restores.
        two.cells[2]["source"].insert(0, "# typing ")
        restored = owner.client.post(f"/api/notebooks/{nb}/versions/{v1['id']}/restore")
        assert restored.status_code == 200, restored.text
        two.cells[len(two.cells) - 1]["source"].insert(0, "# more ")
        await eventually(lambda: sources(one) == sources(two) and len(sources(one)) == 3)
        final = sources(one)
        assert final[ids[0]] == "a = 1" and final[ids[1]] == "b = 2"
        assert "added" not in final
        assert one.ws is not None and one.ws.close_code is None  # nobody was cut off
        assert two.ws is not None and two.ws.close_code is None
        # What was there before the restore is itself a version, and restorable.
        saved = restored.json()["saved_as"]
        kinds = {v["id"]: v["kind"] for v in versions(owner, nb)}
        assert kinds[saved] == "before-restore"
        back = owner.client.post(f"/api/notebooks/{nb}/versions/{saved}/restore")
        assert back.status_code == 200
        await eventually(lambda: "added" in sources(one) and sources(one) == sources(two))
        assert ids[1] not in sources(one)
    for api in (owner, writer, reader):
        api.client.close()


async def test_checkpoints_while_editing(
    history_server: tuple[ServerProcess, dict[str, Any]],
) -> None:
    server, people = history_server
    owner = Api(server, people["owner"])
    nb, _ = notebook_with_code(owner, ["x = 1"])
    async with YClient(sync_url(server, nb, people["owner"].token)) as client:
        client.cells[0]["source"].insert(0, "# edited\n")
        await eventually(lambda: any(v["kind"] == "checkpoint" for v in versions(owner, nb)), 15)
    checkpoint = next(v for v in versions(owner, nb) if v["kind"] == "checkpoint")
    assert checkpoint["created_by"] == "tandem"
    exported = owner.client.get(f"/api/notebooks/{nb}/versions/{checkpoint['id']}/export").json()
    assert exported["cells"][0]["source"] == "# edited\nx = 1"
    owner.client.close()


async def test_a_notebook_that_loses_most_cells_can_be_brought_back(
    history_server: tuple[ServerProcess, dict[str, Any]],
) -> None:
    server, people = history_server
    owner = Api(server, people["owner"])
    nb, ids = notebook_with_code(owner, [f"step_{i} = {i}" for i in range(6)])
    async with YClient(sync_url(server, nb, people["owner"].token)) as client:
        await eventually(lambda: len(client.cells) == 6)
        cells: Array[Any] = client.cells
        with client.doc.transaction():
            del cells[1:6]  # one bad update
        rescue = await _wait_for_kind(owner, nb, "before-mass-delete")
        assert rescue["cells"] == 6
        restored = owner.client.post(f"/api/notebooks/{nb}/versions/{rescue['id']}/restore")
        assert restored.status_code == 200
        await eventually(lambda: [str(c["id"]) for c in client.cells] == ids)
    owner.client.close()


async def _wait_for_kind(api: Api, notebook: str, kind: str) -> dict[str, Any]:
    await eventually(lambda: any(v["kind"] == kind for v in versions(api, notebook)), 10)
    return next(v for v in versions(api, notebook) if v["kind"] == kind)
