"""Completion and inspection (Tab, Shift+Tab) from the notebook's kernel, through a real
server and a real sandboxed worker; and the pure pieces that shape the kernel's replies."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from kernels import messages as m
from kernels.kernel import completion_reply, inspection_reply, strip_ansi
from server.gateway.completion import KernelQueries
from server.gateway.registry import Placement, WorkerLink
from tests.gateway.conftest import Cluster, wait_for_workers
from tests.gateway.helpers import run, status
from tests.support import Api, YClient, eventually, notebook_with_code, sync_url


@pytest.fixture(autouse=True)
def _workers(cluster: Cluster) -> None:
    wait_for_workers(cluster, 1)


def complete(api: Api, nb: str, code: str, cursor_pos: int | None = None) -> Any:
    body = {"code": code, "cursor_pos": len(code) if cursor_pos is None else cursor_pos}
    return api.client.post(f"/api/notebooks/{nb}/complete", json=body)


def inspect(api: Api, nb: str, code: str, cursor_pos: int | None = None) -> Any:
    body = {"code": code, "cursor_pos": len(code) if cursor_pos is None else cursor_pos}
    return api.client.post(f"/api/notebooks/{nb}/inspect", json=body)


def completed(code: str, answer: dict[str, Any]) -> list[str]:
    """The code as each match would leave it."""
    start, end = answer["cursor_start"], answer["cursor_end"]
    return [code[:start] + match + code[end:] for match in answer["matches"]]


async def started(cluster: Cluster, sources: list[str]) -> tuple[Api, str, list[str]]:
    """A notebook of ann's whose first cell has run (so its kernel is up)."""
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, sources)
    async with YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client:
        await run(ann, nb, ids[:1], client)
    return ann, nb, ids


async def test_completes_and_inspects_from_the_kernel(cluster: Cluster) -> None:
    ann, nb, _ = await started(cluster, ["import os\nanswer_value = 42"])
    response = complete(ann, nb, "os.pa")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "ok"
    assert "os.path" in completed("os.pa", answer)
    assert answer["types"] == [] or len(answer["types"]) == len(answer["matches"])

    # Names the kernel defined complete too; the cursor may sit inside the code.
    # (A kernel slower than the worker's wait, on a loaded machine, answers "busy": the
    # editor then offers words; asked again, it answers.)
    code = "print(answer_v)\nx = 1"
    answers: list[dict[str, Any]] = []

    def answered() -> bool:
        answers.append(complete(ann, nb, code, cursor_pos=code.index(")")).json())
        return answers[-1]["status"] != "busy"

    await eventually(answered, 60, interval=0.5)
    assert "print(answer_value)\nx = 1" in completed(code, answers[-1])

    response = inspect(ann, nb, "len")
    assert response.status_code == 200, response.text
    help_text = response.json()
    assert help_text["status"] == "ok" and help_text["found"] is True
    assert "Return the number of items" in help_text["text"]
    assert "\x1b" not in help_text["text"]  # ANSI colours are taken out

    nothing = inspect(ann, nb, "no_such_name_here").json()
    assert nothing["status"] == "ok" and nothing["found"] is False


async def test_a_busy_kernel_answers_busy_at_once_and_recovers(cluster: Cluster) -> None:
    ann, nb, (_, sleeper) = await started(cluster, ["import os", "import time; time.sleep(5)"])
    response = ann.client.post(f"/api/notebooks/{nb}/execute", json={"cell_ids": [sleeper]})
    assert response.status_code == 202, response.text
    await eventually(lambda: status(ann, nb)["running_cell"] == sleeper, 10)
    await asyncio.sleep(0.3)  # the cell is in the kernel, not only sent

    began = time.monotonic()
    answer = complete(ann, nb, "os.pa").json()
    first = time.monotonic() - began
    assert answer["status"] in ("busy", "ok")  # never a hang
    assert first < 2.5

    # The first question still waits in the kernel's queue: the next is told at once.
    began = time.monotonic()
    assert complete(ann, nb, "os.pa").json()["status"] == "busy"
    assert inspect(ann, nb, "len").json()["status"] == "busy"
    assert time.monotonic() - began < 0.5

    # Once the cell ends, the kernel answers again.
    async def answers() -> bool:
        return bool(complete(ann, nb, "os.pa").json()["status"] == "ok")

    deadline = time.monotonic() + 15
    while not await answers():
        assert time.monotonic() < deadline, "completion did not come back after the cell"
        await asyncio.sleep(0.2)
    assert "os.path" in completed("os.pa", complete(ann, nb, "os.pa").json())


async def test_only_editors_ask(cluster: Cluster) -> None:
    ann, nb, _ = await started(cluster, ["import os"])
    ben = cluster.api("ben")
    for role in ("viewer", "commenter"):
        ann.share(nb, "ben", role)
        assert complete(ben, nb, "os.pa").status_code == 403
        assert inspect(ben, nb, "len").status_code == 403
    ann.share(nb, "ben", "editor")
    assert complete(ben, nb, "os.pa").json()["status"] == "ok"


async def test_no_kernel_is_409_and_starts_none(cluster: Cluster) -> None:
    ann = cluster.api("ann")
    nb, _ = notebook_with_code(ann, ["import os"])
    began = time.monotonic()
    response = complete(ann, nb, "os.pa")
    assert response.status_code == 409, response.text
    assert "no kernel is running" in response.json()["detail"]
    assert inspect(ann, nb, "len").status_code == 409
    assert time.monotonic() - began < 1
    assert status(ann, nb)["status"] == "stopped"


async def test_bounded_requests(cluster: Cluster) -> None:
    ann, nb, _ = await started(cluster, ["import os"])
    big = "x" * (m.MAX_QUERY_CODE_CHARS + 1)
    assert complete(ann, nb, big).status_code in (413, 422)
    assert inspect(ann, nb, big).status_code in (413, 422)
    assert complete(ann, nb, "os.pa", cursor_pos=6).status_code == 422
    assert complete(ann, nb, "os.pa", cursor_pos=-1).status_code == 422
    missing = ann.client.post(f"/api/notebooks/{nb}/complete", json={"code": "os"})
    assert missing.status_code == 422


# --- the pure pieces --------------------------------------------------------------------


def test_completion_reply_keeps_types_only_when_they_match() -> None:
    content = {
        "status": "ok",
        "matches": ["path", "pathsep"],
        "cursor_start": 3,
        "cursor_end": 5,
        "metadata": {
            "_jupyter_types_experimental": [
                {"text": "path", "type": "module"},
                {"text": "pathsep", "type": "instance"},
            ]
        },
    }
    reply = completion_reply("k", "r", content)
    assert reply.matches == ["path", "pathsep"]
    assert reply.types == ["module", "instance"]
    assert (reply.cursor_start, reply.cursor_end) == (3, 5)
    content["metadata"] = {"_jupyter_types_experimental": [{"text": "other", "type": "x"}]}
    assert completion_reply("k", "r", content).types == []


def test_completion_reply_drops_what_is_too_big_or_malformed() -> None:
    content = {
        "status": "ok",
        "matches": ["a" * (m.MAX_MATCH_CHARS + 1), 7, *[f"m{i}" for i in range(2000)]],
        "cursor_start": -4,
        "cursor_end": "x",
    }
    reply = completion_reply("k", "r", content)
    assert len(reply.matches) == m.MAX_MATCHES and reply.matches[0] == "m0"
    assert (reply.cursor_start, reply.cursor_end) == (0, 0)
    assert completion_reply("k", "r", None).status == "busy"
    assert completion_reply("k", "r", {"status": "error"}).status == "error"


def test_inspection_reply_strips_ansi_and_cuts() -> None:
    coloured = "\x1b[0;31mSignature:\x1b[0m len(obj, /)\n\x1b]8;;http://x\x07link\x1b]8;;\x07"
    assert strip_ansi(coloured) == "Signature: len(obj, /)\nlink"
    content = {"status": "ok", "found": True, "data": {"text/plain": "y" * 100_000}}
    reply = inspection_reply("k", "r", content)
    assert len(reply.text) == m.MAX_INSPECT_CHARS and reply.text.endswith("too long to show]")
    assert inspection_reply("k", "r", {"status": "ok", "found": True, "data": {}}).found is False
    assert inspection_reply("k", "r", None).status == "busy"


async def test_a_reply_for_another_kernel_or_kind_is_dropped() -> None:
    sent: list[str] = []
    worker = WorkerLink(
        name="w",
        resources=m.Resources(cpus=1, memory_mb=1),
        max_kernels=1,
        sandbox=m.Sandbox(kind="none"),
        token_id=None,
        send_text=sent.append,
        close=lambda code, why: None,
    )
    placement = Placement(worker=worker, kernel_id="k1", gpus=[], owner="nb")
    queries = KernelQueries()
    question = m.Complete(kernel_id="k1", request_id="r1", code="os.pa", cursor_pos=5)
    asking = asyncio.create_task(queries.ask(placement, question, m.CompleteReply))
    await eventually(lambda: bool(sent))
    queries.answer(m.CompleteReply(kernel_id="k2", request_id="r1", status="ok", matches=["x"]))
    queries.answer(m.InspectReply(kernel_id="k1", request_id="r1", status="ok", text="x"))
    queries.answer(m.CompleteReply(kernel_id="k1", request_id="r9", status="ok"))
    assert not asking.done()
    queries.answer(m.CompleteReply(kernel_id="k1", request_id="r1", status="ok", matches=["y"]))
    reply = await asking
    assert isinstance(reply, m.CompleteReply) and reply.matches == ["y"]
