"""The variable inspector (`POST .../variables`) through a real server and a real sandboxed
worker: who may ask, no kernel, a busy kernel, hostile variables; and the pure parsing of
the probe's answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kernels import messages as m
from kernels.probe import variables_reply
from tests.gateway.conftest import Cluster, wait_for_workers
from tests.gateway.helpers import cell, run, status
from tests.support import Api, YClient, eventually, notebook_with_code, sync_url


@pytest.fixture(autouse=True)
def _workers(cluster: Cluster) -> None:
    wait_for_workers(cluster, 1)


def ask(api: Api, nb: str) -> Any:
    return api.client.post(f"/api/notebooks/{nb}/variables")


def by_name(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in answer["variables"]}


async def started(cluster: Cluster, sources: list[str]) -> tuple[Api, str, list[str], YClient]:
    """A notebook of ann's whose cells have all run (so its kernel is up)."""
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, sources)
    client = YClient(sync_url(cluster.server, nb, cluster.person("ann").token))
    await client.connect()
    await run(ann, nb, ids, client)
    return ann, nb, ids, client


async def test_lists_user_variables_and_leaves_no_trace(cluster: Cluster) -> None:
    code = (
        "import os\n"
        "class Grid:\n"  # what numpy and pandas look like to the probe
        "    shape = property(lambda self: (4, 5))\n"
        "    nbytes = property(lambda self: 160)\n"
        "count = 3\nwords = ['a', 'b']\ngrid = Grid()\n_private = 1\n"
        "def helper():\n    pass\n"
    )
    ann, nb, ids, client = await started(cluster, [code, "print(sorted(dir()))"])
    try:
        response = ask(ann, nb)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["status"] == "ok" and answer["truncated"] is False
        found = by_name(answer)
        # Modules, functions, private names and IPython's own are not the user's variables.
        assert set(found) == {"count", "words", "grid"}
        assert found["count"] == {
            "name": "count",
            "type": "int",
            "shape": "",
            "repr": "3",
            "size_bytes": found["count"]["size_bytes"],
        }
        assert found["words"]["shape"] == "len 2" and found["words"]["type"] == "list"
        assert found["grid"]["type"] == "Grid"
        assert found["grid"]["shape"] == "4 \u00d7 5"
        assert found["grid"]["size_bytes"] == 160

        # Asking ran nothing a person sees: no execution count used, no name left behind.
        before = cell(client, ids[1])["execution_count"]
        await run(ann, nb, ids[1:], client)
        after = cell(client, ids[1])
        assert after["execution_count"] == before + 1
        printed = "".join(str(o.get("text", "")) for o in after["outputs"])
        assert "'count'" in printed and "_out" not in printed and "_g" not in printed
    finally:
        await client.close()


async def test_hostile_variables_do_not_break_it(cluster: Cluster) -> None:
    code = """
import time
class Hangs:
    def __repr__(self):
        while True:
            try:
                time.sleep(10)
            except Exception:
                pass
class Huge:
    def __repr__(self):
        return 'x' * 20_000_000
class BadLen:
    def __len__(self):
        raise RuntimeError('no length')
    def __repr__(self):
        raise ValueError('no repr either')
class Shapeless:
    @property
    def shape(self):
        raise RuntimeError('no shape')
    def __getattr__(self, name):
        raise RuntimeError(name)
class LoopingMeta(type):
    def __getattr__(cls, name):
        while True:
            pass
class Disguised(metaclass=LoopingMeta):
    @property
    def __class__(self):
        while True:
            pass
class Sneaky(str):
    def __str__(self):
        while True:
            pass
class SneakyRepr:
    def __repr__(self):
        return Sneaky('sneaky')
hangs, huge, bad, shapeless = Hangs(), Huge(), BadLen(), Shapeless()
disguised, sneaky = Disguised(), SneakyRepr()
import signal
signal.signal(signal.SIGALRM, lambda *_: None)
signal.setitimer(signal.ITIMER_REAL, 300)  # the user's own alarm must survive the probe
ok_after = 'still listed'
"""
    alarm = "import signal; print('left', round(signal.getitimer(signal.ITIMER_REAL)[0]))"
    ann, nb, ids, client = await started(cluster, [code, alarm])
    try:
        began = time.monotonic()
        answer = ask(ann, nb).json()
        assert time.monotonic() - began < 5
        assert answer["status"] == "ok", answer
        found = by_name(answer)
        assert found["hangs"]["repr"] == "<repr failed>"
        assert found["bad"]["repr"] == "<repr failed>" and found["bad"]["shape"] == ""
        assert len(found["huge"]["repr"]) <= 120
        assert found["shapeless"]["type"] == "Shapeless"
        assert found["ok_after"]["repr"] == "'still listed'"
        assert found["disguised"]["type"] == "Disguised"
        assert found["sneaky"]["repr"] == "sneaky"
        # The kernel is fine afterwards and the time limit left no alarm behind.
        second = ask(ann, nb).json()
        assert second["status"] == "ok" and "ok_after" in by_name(second)
        await run(ann, nb, ids[1:], client)
        printed = "".join(str(o.get("text", "")) for o in cell(client, ids[1])["outputs"])
        left = int(printed.split()[-1])
        assert 200 < left < 300, printed
    finally:
        await client.close()


async def test_many_variables_are_capped(cluster: Cluster) -> None:
    code = f"for i in range({m.MAX_VARIABLES + 50}):\n    globals()[f'v{{i:04d}}'] = i"
    ann, nb, _, client = await started(cluster, [code])
    try:
        answer = ask(ann, nb).json()
        assert answer["status"] == "ok"
        assert answer["truncated"] is True
        assert len(answer["variables"]) == m.MAX_VARIABLES
    finally:
        await client.close()


async def test_a_busy_kernel_answers_busy_soon(cluster: Cluster) -> None:
    ann, nb, ids, client = await started(cluster, ["x = 1", "import time; time.sleep(6)"])
    try:
        response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [ids[1]]})
        assert response.status_code == 202
        await eventually(lambda: status(ann, nb)["running_cell"] == ids[1], 10)
        await asyncio.sleep(0.3)
        began = time.monotonic()
        assert ask(ann, nb).json()["status"] == "busy"
        assert time.monotonic() - began < 2.5  # told soon, not queued behind the cell
        # Once the cell is done the inspector answers again.
        deadline = time.monotonic() + 20
        while ask(ann, nb).json()["status"] != "ok":
            assert time.monotonic() < deadline, "the inspector did not come back"
            await asyncio.sleep(0.3)
        assert "x" in by_name(ask(ann, nb).json())
    finally:
        await client.close()


async def test_only_editors_ask(cluster: Cluster) -> None:
    ann, nb, _, client = await started(cluster, ["secret = 'editors only'"])
    await client.close()
    ben = cluster.api("ben")
    assert ask(ben, nb).status_code == 404  # not shared with ben at all
    for role in ("viewer", "commenter"):
        ann.share(nb, "ben", role)
        response = ask(ben, nb)
        assert response.status_code == 403, response.text
        assert "editors only" not in response.text
    ann.share(nb, "ben", "editor")
    assert "secret" in by_name(ask(ben, nb).json())


async def test_no_kernel_is_409_and_starts_none(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb, _ = notebook_with_code(ann, ["x = 1"])
    response = ask(ann, nb)
    assert response.status_code == 409, response.text
    await asyncio.sleep(0.5)
    assert status(ann, nb)["status"] == "stopped"


def test_malformed_answers_are_errors() -> None:
    def content(plain: object) -> dict[str, Any]:
        return {
            "status": "ok",
            "user_expressions": {"variables": {"status": "ok", "data": {"text/plain": plain}}},
        }

    assert variables_reply("k", "r", None).status == "busy"
    for plain in (
        "not python",
        "'not json'",
        repr('{"variables": 5}'),
        repr('{"variables": [{"name": ""}]}'),  # a name is required
        repr('{"variables": [{"name": "x", "repr": "' + "y" * 1000 + '"}]}'),  # too long
        "__import__('os')",  # never evaluated
        5,
    ):
        assert variables_reply("k", "r", content(plain)).status == "error", plain
    error = {"status": "ok", "user_expressions": {"variables": {"status": "error"}}}
    assert variables_reply("k", "r", error).status == "error"
    good = variables_reply("k", "r", content(repr('{"variables": [{"name": "x"}]}')))
    assert good.status == "ok" and [v.name for v in good.variables] == ["x"]
