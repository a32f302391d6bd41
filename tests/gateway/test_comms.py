"""Widget comms through the gateway: the kernel's comm messages reach every page as
`widget.comm` events and the server's widget store, an editor's change reaches the kernel
once, a viewer's is refused; and the pure store that keeps the shared state."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kernels import messages as m
from server.events.bus import EventBus
from server.gateway.comms import WidgetRelay, page_msg_id
from server.gateway.widgets import WidgetStore, capture, person_message_problem
from tests.gateway.conftest import Cluster, running_cluster, wait_for_workers
from tests.gateway.helpers import Events, events_url, run, text_of
from tests.support import Api, YClient, eventually, notebook_with_code, sync_url

SLIDER = (
    "import ipywidgets as w\n"
    "changes = []\n"
    "slider = w.IntSlider(value=1, max=10)\n"
    "slider.observe(lambda change: changes.append(change['new']), 'value')\n"
    "slider"
)


def comm(msg_type: str, data: dict[str, Any], **extra: Any) -> m.Comm:
    return m.Comm(kernel_id="k1", msg_type=msg_type, comm_id="c1", data=data, **extra)  # type: ignore[arg-type]


def test_store_applies_open_updates_buffers_and_close() -> None:
    store = WidgetStore("k1")
    state = {"_model_name": "IntSliderModel", "value": 1, "data": None}
    opened = comm("comm_open", {"state": state, "buffer_paths": []}, target_name="jupyter.widget")
    assert store.apply(opened)
    assert store.apply(comm("comm_msg", {"method": "echo_update", "state": {"value": 5}}))
    update = {"method": "update", "state": {"data": {"x": None}}, "buffer_paths": [["data", "x"]]}
    assert store.apply(comm("comm_msg", update, buffers=["AAE="]))
    [model] = store.snapshot()
    assert model["state"] == {"_model_name": "IntSliderModel", "value": 5, "data": {"x": None}}
    assert model["buffer_paths"] == [["data", "x"]] and model["buffers"] == ["AAE="]
    # A new value for the key drops its old buffer; a custom message changes no state.
    assert store.apply(comm("comm_msg", {"method": "update", "state": {"data": None}}))
    assert store.apply(comm("comm_msg", {"method": "custom", "content": {}}))
    assert store.snapshot()[0]["buffers"] == []
    assert store.apply(comm("comm_close", {}))
    assert store.snapshot() == []


def test_a_top_level_binary_value_keeps_its_buffer() -> None:
    """ipywidgets takes a key whose whole value is binary (an Image's `value`) out of the
    state and names it by its buffer path alone: the buffer is kept, and replaced."""
    store = WidgetStore("k1")
    state = {"_model_name": "ImageModel", "format": "png"}
    opened = {"state": state, "buffer_paths": [["value"]]}
    store.apply(comm("comm_open", opened, target_name="jupyter.widget", buffers=["AAE="]))
    assert store.snapshot()[0]["buffers"] == ["AAE="]
    update = {"method": "update", "state": {}, "buffer_paths": [["value"]]}
    store.apply(comm("comm_msg", update, buffers=["AAI="]))
    [model] = store.snapshot()
    assert model["buffer_paths"] == [["value"]] and model["buffers"] == ["AAI="]


def answer(comm_id: str, data: dict[str, Any]) -> m.WidgetState:
    return m.WidgetState(kernel_id="k1", comm_id=comm_id, data=data)


def test_a_whole_state_answer_makes_the_model_a_delta_cannot() -> None:
    """An adopting server rebuilds its widgets from the kernel's answers to request_state:
    one naming the model makes it, one that does not (a delta, a lie) makes nothing, and a
    known model is brought up to date."""
    store = WidgetStore("k1")
    whole = {"_model_name": "IntSliderModel", "_model_module": "@jupyter-widgets/controls"}
    whole |= {"_model_module_version": "2.0.0", "value": 3}
    assert store.describe(answer("c1", {"method": "update", "state": {"value": 4}})) is None
    assert store.describe(answer("c1", {"method": "custom", "state": whole})) is None
    assert store.describe(answer("c1", {"method": "update", "state": whole})) is not None
    assert store.snapshot()[0]["state"] == whole
    assert store.describe(answer("c1", {"method": "update", "state": {"value": 9}})) is not None
    assert store.snapshot()[0]["state"]["value"] == 9
    assert len(store.snapshot()) == 1


def test_a_store_moves_to_another_replica_as_its_snapshot() -> None:
    """A runtime that moves replicas takes its widgets along: what `snapshot()` describes,
    `restore()` rebuilds (buffers and Output widgets included), and junk is skipped."""
    store = WidgetStore("k1")
    state = {"_model_name": "IntSliderModel", "value": 1, "data": None}
    update = {"method": "update", "state": {"data": {"x": None}}, "buffer_paths": [["data", "x"]]}
    store.apply(comm("comm_open", {"state": state}, target_name="jupyter.widget"))
    store.apply(comm("comm_msg", update, buffers=["AAE="]))
    output = {"_model_module": "@jupyter-widgets/output", "msg_id": "req-1", "outputs": []}
    opened = comm("comm_open", {"state": output}, target_name="jupyter.widget")
    store.apply(opened.model_copy(update={"comm_id": "c2"}))
    moved = WidgetStore.restore("k1", [*store.snapshot(), "junk", {"comm_id": 3, "state": {}}])
    assert moved.snapshot() == store.snapshot()
    assert moved.capturing("req-1") is not None


def test_widget_events_are_numbered_on_across_runtime_owners() -> None:
    """With several replicas: an owner after another numbers above it, unless it held the
    lease just before (nobody numbered since) or was handed the numbers."""
    relay = WidgetRelay(EventBus())

    def seq() -> object:
        return relay.snapshot("nb", None)["seq"]

    relay.number_from_epoch("nb", 5)
    assert seq() == 5 << 32
    relay.number_from_epoch("nb", 6)  # its own lease again, next epoch
    assert seq() == 5 << 32
    relay.number_from_epoch("nb", 8)  # epoch 7 was another replica's
    assert seq() == 8 << 32
    relay.take("nb", "k1", {"seq": (8 << 32) + 41, "models": []})
    assert seq() == (8 << 32) + 41


def test_store_follows_a_bounded_number_of_widgets() -> None:
    """However they come: opened, or described by an adopted kernel."""
    store = WidgetStore("k1", max_models=1)
    assert store.apply(comm("comm_open", {"state": {}}, target_name="jupyter.widget"))
    more = comm("comm_open", {"state": {}}, target_name="jupyter.widget")
    assert not store.apply(more.model_copy(update={"comm_id": "c2"}))
    whole = dict.fromkeys(("_model_name", "_model_module", "_model_module_version"), "x")
    assert store.describe(answer("c3", {"method": "update", "state": whole})) is None
    assert [model["comm_id"] for model in store.snapshot()] == ["c1"]


def test_store_ignores_other_comm_targets_and_unknown_comms() -> None:
    store = WidgetStore("k1")
    assert not store.apply(comm("comm_open", {"state": {}}, target_name="bokeh"))
    assert not store.apply(comm("comm_msg", {"method": "update", "state": {"value": 1}}))
    assert store.snapshot() == []


def test_an_output_widget_captures_the_outputs_of_its_request() -> None:
    store = WidgetStore("k1")
    state = {"_model_module": "@jupyter-widgets/output", "msg_id": "", "outputs": []}
    store.apply(comm("comm_open", {"state": state}, target_name="jupyter.widget"))
    assert store.capturing("req-1") is None
    store.apply(comm("comm_msg", {"method": "update", "state": {"msg_id": "req-1"}}))
    model = store.capturing("req-1")
    assert model is not None and store.capturing("req-2") is None
    assert capture(model, "stream", {"name": "stdout", "text": "a"})
    assert capture(model, "stream", {"name": "stdout", "text": "b\n"})
    assert capture(model, "display_data", {"data": {"text/plain": "x"}, "metadata": {}})
    assert not capture(model, "execute_input", {"code": "1"})
    assert [o["output_type"] for o in model.state["outputs"]] == ["stream", "display_data"]
    assert model.state["outputs"][0]["text"] == "ab\n"
    # clear_output(wait=True), as interact does: cleared by the next output only.
    assert capture(model, "clear_output", {"wait": True})
    assert len(model.state["outputs"]) == 2
    assert capture(model, "error", {"ename": "E", "evalue": "v", "traceback": ["t"]})
    assert model.state["outputs"] == [
        {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["t"]}
    ]
    assert capture(model, "clear_output", {"wait": False})
    assert model.state["outputs"] == []


def test_what_a_person_may_send() -> None:
    store = WidgetStore("k1")
    store.apply(comm("comm_open", {"state": {"value": 1}}, target_name="jupyter.widget"))
    assert person_message_problem(store, "c1", {"method": "update", "state": {"value": 2}}) == ""
    assert person_message_problem(store, "c1", {"method": "custom", "content": {}}) == ""
    assert person_message_problem(store, "c1", {"method": "echo_update", "state": {}})
    assert person_message_problem(store, "c1", {"method": "update", "state": 3})
    assert person_message_problem(store, "c2", {"method": "update", "state": {}})
    assert person_message_problem(None, "c1", {"method": "update", "state": {}})


def test_only_our_own_kernel_msg_ids_name_a_page_message() -> None:
    assert page_msg_id("widget-0123abcd-page-id-1") == "page-id-1"
    assert page_msg_id("a1b2_3_0") == ""
    assert page_msg_id("widget-") == ""


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, scientific_stack: list[str]
) -> Iterator[Cluster]:
    """A server with one worker whose kernels have the scientific stack (ipywidgets)."""
    environments = json.dumps({"default": scientific_stack})
    data = tmp_path_factory.mktemp("comms")
    with running_cluster(
        data, {"cpu-1": ["--max-kernels", "16"]}, TANDEM_ENVIRONMENTS=environments
    ) as cluster:
        wait_for_workers(cluster, 1)
        yield cluster


def widget_state(api: Api, nb: str) -> dict[str, Any]:
    response = api.client.get(f"/api/notebooks/{nb}/widgets")
    assert response.status_code == 200, response.text
    return dict(response.json())


def slider_of(api: Api, nb: str) -> dict[str, Any]:
    return next(
        model
        for model in widget_state(api, nb)["models"]
        if model["state"].get("_model_name") == "IntSliderModel"
    )


def move(api: Api, nb: str, comm_id: str, value: int, msg_id: str) -> Any:
    body = {"msg_id": msg_id, "data": {"method": "update", "state": {"value": value}}}
    return api.client.post(f"/api/notebooks/{nb}/widgets/{comm_id}", json=body)


async def test_widget_changes_reach_the_kernel_once_and_everyone(stack: Cluster) -> None:
    cluster = stack
    ann, ben = cluster.api("ann"), cluster.api("ben")
    nb, ids = notebook_with_code(ann, [SLIDER, "print(changes)"], title="Widgets")
    ann.share(nb, "ben", "viewer")
    token = cluster.person("ben").token
    async with (
        YClient(sync_url(cluster.server, nb, cluster.person("ann").token)) as client,
        Events(events_url(cluster.server, nb, token)) as events,
    ):
        await run(ann, nb, ids[:1], client)
        opened = await events.wait("widget.comm", lambda e: e["msg_type"] == "comm_open")
        assert opened["metadata"].get("version", "").startswith("2.")
        slider = slider_of(ann, nb)
        assert slider["state"]["value"] == 1
        assert slider_of(ben, nb) == slider  # a viewer sees the state

        msg_id = uuid.uuid4().hex
        response = move(ann, nb, slider["comm_id"], 7, msg_id)
        assert response.status_code == 200, response.text
        assert response.json() == {"idle": True}
        echo = await events.wait("widget.comm", lambda e: e["parent_msg_id"] == msg_id)
        assert echo["data"]["method"] == "echo_update"
        assert echo["data"]["state"] == {"value": 7}
        assert slider_of(ann, nb)["state"]["value"] == 7

        # A viewer's forged change is refused by the server and never reaches the kernel.
        forged = move(ben, nb, slider["comm_id"], 9, uuid.uuid4().hex)
        assert forged.status_code == 403, forged.text
        ann.share(nb, "ben", "commenter")
        forged = move(ben, nb, slider["comm_id"], 9, uuid.uuid4().hex)
        assert forged.status_code == 403, forged.text
        unknown = move(ann, nb, "no-such-widget", 3, uuid.uuid4().hex)
        assert unknown.status_code == 404, unknown.text
        bad = ann.client.post(
            f"/api/notebooks/{nb}/widgets/{slider['comm_id']}",
            json={"msg_id": "x", "data": {"method": "echo_update", "state": {"value": 2}}},
        )
        assert bad.status_code == 400, bad.text

        await run(ann, nb, ids[1:], client)
        assert text_of(client, ids[1]).strip() == "[7]"  # once, though everyone's moved
        # The widget's output is a widget view, valid in the exported notebook.
        exported = ann.export(nb)
        [view] = exported["cells"][0]["outputs"]
        assert (
            view["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
            == (slider["comm_id"])
        )

        # A restarted kernel takes its widgets with it.
        seen = len(events.of("widget.reset"))
        response = ann.client.post(f"/api/notebooks/{nb}/kernel/restart")
        assert response.status_code == 204
        await events.wait("widget.reset")
        assert len(events.of("widget.reset")) > seen
        await eventually(lambda: widget_state(ann, nb)["models"] == [], 30)


CAPTURE = (
    "import ipywidgets as w\n"
    "from IPython.display import display\n"
    "out = w.Output()\n"
    "display(out)\n"
    "with out:\n"
    "    print('inside')\n"
    "print('outside')\n"
    "shown = w.interactive(lambda x: print('x is', x), x=5)\n"
    "display(shown)"
)


def outputs_of(api: Api, nb: str) -> list[str]:
    """The text each Output widget of the running kernel holds."""
    return [
        "".join(str(o.get("text", "")) for o in model["state"]["outputs"])
        for model in widget_state(api, nb)["models"]
        if model["state"].get("_model_name") == "OutputModel"
    ]


async def test_output_widgets_capture_their_outputs_and_interact_runs(stack: Cluster) -> None:
    ann = stack.api("ann")
    nb, ids = notebook_with_code(ann, [CAPTURE], title="Capture")
    async with YClient(sync_url(stack.server, nb, stack.person("ann").token)) as client:
        await run(ann, nb, ids, client)
        # What was printed inside `with out:` is in the widget, not the cell.
        printed = text_of(client, ids[0])
        assert "outside" in printed and "inside" not in printed and "x is" not in printed
        assert sorted(outputs_of(ann, nb)) == ["inside\n", "x is 5\n"]
        slider = slider_of(ann, nb)
        response = move(ann, nb, slider["comm_id"], 7, uuid.uuid4().hex)
        assert response.status_code == 200 and response.json() == {"idle": True}
        # interact ran again on the move, clearing and printing into its Output widget.
        await eventually(lambda: sorted(outputs_of(ann, nb)) == ["inside\n", "x is 7\n"], 10)
