"""A server that adopts a kernel without its widgets (it was SIGKILLed and started again
while the worker kept the kernel) rebuilds them from the kernel's answers to
`request_state`: the snapshot shows them as they are, pages get them as events, editors'
changes reach the kernel again; and a kernel that lies about its widgets costs a bounded
amount of work."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway.conftest import Cluster, running_cluster, wait_for_workers
from tests.gateway.helpers import Events, events_url, run, text_of
from tests.support import Api, YClient, eventually, notebook_with_code, sync_url

# A slider moved after it was made, and an image (its value travels as a binary buffer).
WIDGETS = (
    "import ipywidgets\n"
    "w = ipywidgets.IntSlider(max=100, description='dial')\n"
    "picture = ipywidgets.Image(value=b'\\x89PNG-ish bytes', format='png')\n"
    "ipywidgets.VBox([w, picture])"
)
# A kernel that lies: its comm_info_reply lists its real comms, then more made-up widget
# comms than the worker asks about; it counts the comm_msgs it is sent. Its Text widget
# is bigger than one comm message may be.
# What the server follows of one kernel, low here so that asking every comm stays quick.
MAX_WIDGETS = 300
MADE_UP = 2 * MAX_WIDGETS
LIAR = (
    "import ipywidgets\n"
    "k = get_ipython().kernel\n"
    "real = ipywidgets.IntSlider(value=7, description='real')\n"
    "huge = ipywidgets.Text(value='x' * 6_000_000)\n"
    f"MADE_UP = {MADE_UP}\n"
    "made_up = {f'fake{i}': {'target_name': 'jupyter.widget'} for i in range(MADE_UP)}\n"
    "async def lying_comm_info(stream, ident, parent):\n"
    "    comms = {c: {'target_name': v.target_name} for c, v in k.comm_manager.comms.items()}\n"
    "    content = {'status': 'ok', 'comms': {**comms, **made_up}}\n"
    "    k.session.send(stream, 'comm_info_reply', content, parent, ident)\n"
    "k.shell_handlers['comm_info_request'] = lying_comm_info\n"
    "asked = [0]\n"
    "handle = k.shell_handlers['comm_msg']\n"
    "def counting(stream, ident, msg):\n"
    "    asked[0] += 1\n"
    "    return handle(stream, ident, msg)\n"
    "k.shell_handlers['comm_msg'] = counting\n"
    "real"
)


@pytest.fixture(scope="module")
def restartable(
    tmp_path_factory: pytest.TempPathFactory, scientific_stack: list[str]
) -> Iterator[Cluster]:
    """A server whose worker keeps its kernels for a minute when the server goes."""
    with running_cluster(
        tmp_path_factory.mktemp("widget-adoption"),
        TANDEM_WORKER_RECONNECT_GRACE_SECONDS="60",
        TANDEM_WORKER_TIMEOUT_SECONDS="5",
        TANDEM_ENVIRONMENTS=json.dumps({"default": scientific_stack}),
        TANDEM_MAX_WIDGETS_PER_KERNEL=str(MAX_WIDGETS),
    ) as cluster:
        cluster.start_worker("keeper")
        wait_for_workers(cluster, 1)
        yield cluster


def models(api: Api, nb: str) -> list[dict[str, Any]]:
    response = api.client.get(f"/api/notebooks/{nb}/widgets")
    assert response.status_code == 200, response.text
    return list(response.json()["models"])


def named(api: Api, nb: str, model_name: str) -> dict[str, Any] | None:
    found = [x for x in models(api, nb) if x["state"].get("_model_name") == model_name]
    return found[0] if found else None


def public(model: dict[str, Any]) -> tuple[Any, ...]:
    """What a page makes a model from (the comm's metadata is the open's only)."""
    return model["state"], model["buffer_paths"], model["buffers"]


def restart(cluster: Cluster) -> None:
    cluster.server.kill()
    cluster.server.start()


async def test_a_restarted_server_rebuilds_the_widgets_of_the_kernel_it_adopts(
    restartable: Cluster,
) -> None:
    cluster = restartable
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, [WIDGETS, "w.value = 37", "print(w.value)"])
    token = cluster.person("ann").token
    async with YClient(sync_url(cluster.server, nb, token)) as client:
        await run(ann, nb, ids[:2], client)
        before = {x["comm_id"]: x for x in models(ann, nb)}
    restart(cluster)
    async with Events(events_url(cluster.server, nb, token)) as events:
        # What the kernel says its widgets are: every model, as they were.
        await eventually(lambda: len(models(ann, nb)) == len(before), 30)
        after = {x["comm_id"]: x for x in models(ann, nb)}
        assert {c: public(x) for c, x in after.items()} == {c: public(x) for c, x in before.items()}
        slider = named(ann, nb, "IntSliderModel")
        assert slider is not None and slider["state"]["value"] == 37
        picture = named(ann, nb, "ImageModel")
        assert picture is not None and picture["buffer_paths"] == [["value"]]
        # Pages that were open get each model as a comm_open with its whole state.
        await eventually(
            lambda: (
                {e["comm_id"] for e in events.received if e.get("msg_type") == "comm_open"}
                == set(before)
            )
        )
        # An editor's change reaches the kernel again.
        body = {"msg_id": uuid.uuid4().hex, "data": {"method": "update", "state": {"value": 55}}}
        response = ann.client.post(f"/api/notebooks/{nb}/widgets/{slider['comm_id']}", json=body)
        assert response.status_code == 200, response.text
        async with YClient(sync_url(cluster.server, nb, token)) as client:
            await run(ann, nb, ids[2:], client)
            assert text_of(client, ids[2]) == "55\n"
        # A viewer's is refused as before.
        ann.share(nb, "ben", "viewer")
        ben = cluster.api("ben")
        response = ben.client.post(f"/api/notebooks/{nb}/widgets/{slider['comm_id']}", json=body)
        assert response.status_code == 403, response.text


async def test_a_kernel_listing_endless_or_huge_widgets_is_asked_a_bounded_amount(
    restartable: Cluster,
) -> None:
    cluster = restartable
    ann = cluster.api("ann")
    nb, ids = notebook_with_code(ann, [LIAR, "print(asked[0])"])
    token = cluster.person("ann").token
    async with YClient(sync_url(cluster.server, nb, token)) as client:
        await run(ann, nb, ids[:1], client)
    before = {x["comm_id"] for x in models(ann, nb)}
    assert named(ann, nb, "IntSliderModel") is not None
    assert named(ann, nb, "TextModel") is None  # too big to follow from the start
    restart(cluster)
    await eventually(lambda: named(ann, nb, "IntSliderModel") is not None, 60)
    # The real widgets (the slider, the layouts and styles), none of the made-up ones, nor
    # the one too big for a comm message.
    await eventually(lambda: {x["comm_id"] for x in models(ann, nb)} == before, 30)
    assert named(ann, nb, "TextModel") is None
    async with YClient(sync_url(cluster.server, nb, token)) as client:

        async def asked() -> int:
            await run(ann, nb, ids[1:], client)
            return int(text_of(client, ids[1]))

        # Cells run between the worker's questions (a few wait in the kernel's queue at a
        # time); once they stop, the kernel was asked about as many comms as the cap.
        counts = [-2, -1]
        while counts[-1] != counts[-2]:
            await asyncio.sleep(1)
            counts.append(await asked())
        assert counts[-1] == MAX_WIDGETS, counts
