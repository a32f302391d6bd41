"""Everything already stored stays readable (issue 12): a document poisoned before the schema
guard exports (repaired, 200, the repairs named), saves versions, compares, checkpoints, and a
restore brings a good version back over it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest

from tests.support import Api, ServerProcess, YClient, eventually, make_people, sync_url
from tests.support_schema import POISONS, plant, whole


@pytest.fixture(scope="module")
def history_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Api]]:
    server = ServerProcess(
        tmp_path_factory.mktemp("poisoned"), env={"TANDEM_CHECKPOINT_SECONDS": "1"}
    )
    server.start()
    owner = make_people(server.data_dir, ["owner"])["owner"]
    api = Api(server, owner)
    yield server, api
    api.client.close()
    server.stop()
    assert "Traceback" not in server.log(), server.log()[-3000:]


def _versions(api: Api, notebook: str) -> list[dict[str, Any]]:
    response = api.client.get(f"/api/notebooks/{notebook}/versions")
    assert response.status_code == 200, response.text
    return list(response.json())


@pytest.mark.parametrize("name", sorted(POISONS))
async def test_a_poisoned_notebook_stays_readable_and_restorable(
    name: str, history_server: tuple[ServerProcess, Api]
) -> None:
    server, api = history_server
    notebook = api.create(f"poisoned: {name}")
    good = api.client.post(f"/api/notebooks/{notebook}/versions", json={"name": "good"})
    assert good.status_code == 201, good.text
    time.sleep(1.2)  # the room opened by the version closes (grace 1 s)
    plant(server, notebook, POISONS[name])

    exported = api.client.get(f"/api/notebooks/{notebook}/export")
    assert exported.status_code == 200, exported.text
    assert json.loads(exported.headers["x-tandem-repaired"])
    nbformat.validate(nbformat.from_dict(exported.json()))

    saved = api.client.post(f"/api/notebooks/{notebook}/versions", json={"name": "bad"})
    assert saved.status_code == 201, saved.text
    bad = saved.json()["id"]
    compared = api.client.get(
        f"/api/notebooks/{notebook}/versions/compare", params={"base": good.json()["id"]}
    )
    assert compared.status_code == 200, compared.text
    version_export = api.client.get(f"/api/notebooks/{notebook}/versions/{bad}/export")
    assert version_export.status_code == 200, version_export.text
    assert "x-tandem-repaired" in version_export.headers

    # An edit makes the automatic checkpoint save the poisoned document too.
    count = len(_versions(api, notebook))
    async with YClient(sync_url(server, notebook, api.person.token)) as client:
        client.cells[0]["source"].insert(0, "# edited\n")
        await eventually(lambda: len(_versions(api, notebook)) > count, timeout=15)

    restored = api.client.post(f"/api/notebooks/{notebook}/versions/{good.json()['id']}/restore")
    assert restored.status_code == 200, restored.text
    whole(api, notebook)  # nothing left to repair
    # Restoring the poisoned version brings it back repaired.
    again = api.client.post(f"/api/notebooks/{notebook}/versions/{bad}/restore")
    assert again.status_code == 200, again.text
    whole(api, notebook)
