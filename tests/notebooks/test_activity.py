"""The list's "Updated" follows edits, not only renames."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support import ServerProcess, YClient, eventually, start_with_alice, sync_url


async def test_an_edit_moves_the_notebooks_updated_time(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        alice, api = start_with_alice(server)
        notebook = api.create("Edited later")
        before = api.client.get(f"/api/notebooks/{notebook}").json()["updated_at"]
        time.sleep(0.05)
        async with YClient(sync_url(server, notebook, alice.token)) as client:
            client.cells[0]["source"].insert(0, "x = 1")
            await eventually(lambda: api.export(notebook)["cells"][0]["source"] == "x = 1")

        def moved() -> bool:
            listed = {n["id"]: n for n in api.client.get("/api/notebooks").json()}
            return bool(listed[notebook]["updated_at"] > before)

        # Written when the room closes (1 s after the last person left, in tests).
        await eventually(moved, timeout=15)
        api.client.close()
    finally:
        server.stop()
