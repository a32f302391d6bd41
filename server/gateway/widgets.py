"""The shared state of a notebook's widgets (ipywidgets models), kept by the server.

The kernel is the source of truth: every `comm_open`, `update` and `echo_update` it sends
is applied here (buffers included) and broadcast to every page as a `widget.comm` event; a
page opened later starts from `snapshot()`. A person's change goes to the kernel only; the
kernel's `echo_update` of it is what moves everyone's widget, the sender's included (the
sender's widget manager recognises its own echo by the msg_id and does not apply it twice).
A store belongs to one kernel: a new kernel starts an empty one. When the kernel's runtime
moves to another replica (its worker reconnected there), the store goes with it
(`snapshot()` there, `restore()` here). A server that adopts a kernel without its store (a
restarted one, or one taking over from a killed replica) rebuilds it from the kernel's
answers to `request_state` (`describe`), which carry each widget's whole state.

Output widgets capture here too: while an Output model's `msg_id` names a kernel request
(`with out:`, or `interact` running its function), that request's outputs go into the
model's `outputs` instead of the cell, as JupyterLab's widget manager does in the browser.

Pure: messages in, state and events out, no I/O.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kernels import messages as m

WIDGET_TARGET = m.WIDGET_TARGET
OUTPUT_MODULE = "@jupyter-widgets/output"
# A kernel opening widgets without end (a loop making them) stops being followed here.
MAX_WIDGET_MODELS = m.MAX_WIDGETS
# What a whole state names, which a delta may leave out: what makes a model of it.
MODEL_KEYS = ("_model_name", "_model_module", "_model_module_version")
# What one Output widget keeps: the newest outputs, streams of one name merged.
MAX_CAPTURED_OUTPUTS = 100
MAX_CAPTURED_TEXT = 1_000_000
# What a person may send to a widget: a state change, or a custom message (a click).
PERSON_METHODS = frozenset({"update", "custom"})
BufferPath = tuple[str | int, ...]


@dataclass
class WidgetModel:
    comm_id: str
    state: dict[str, Any]
    metadata: dict[str, Any]
    buffers: dict[BufferPath, str] = field(default_factory=dict)  # path -> base64
    clear_on_next: bool = False  # clear_output(wait=True) came: the next output clears

    def public(self) -> dict[str, Any]:
        paths = list(self.buffers)
        return {
            "comm_id": self.comm_id,
            "state": self.state,
            "metadata": self.metadata,
            "buffer_paths": [list(path) for path in paths],
            "buffers": [self.buffers[path] for path in paths],
        }

    def apply(self, state: dict[str, Any], paths: list[BufferPath], buffers: list[str]) -> None:
        """A delta: its keys replace ours; a buffer at a path replaces what was there. A key
        whose whole value is binary (an Image's `value`) is named by its buffer path only:
        ipywidgets takes it out of `state`."""
        pairs = [
            (p, b) for p, b in zip(paths, buffers, strict=False) if p and isinstance(p[0], str)
        ]
        replaced = set(state) | {path[0] for path, _ in pairs}
        self.buffers = {p: b for p, b in self.buffers.items() if p[0] not in replaced}
        for key, value in state.items():
            self.state[key] = copy.deepcopy(value)
        for path, buffer in pairs:
            if path[0] not in state:
                self.state.pop(str(path[0]), None)  # binary now: its old JSON value goes
            self.buffers[path] = buffer


def buffer_paths(data: dict[str, Any]) -> list[BufferPath]:
    raw = data.get("buffer_paths")
    if not isinstance(raw, list):
        return []
    paths: list[BufferPath] = []
    for path in raw:
        if isinstance(path, list) and path and all(isinstance(p, str | int) for p in path):
            paths.append(tuple(path))
        else:
            paths.append(())  # keeps the pairing of paths and buffers by position
    return paths


class WidgetStore:
    """The widget models of one kernel, as the kernel last described them."""

    def __init__(self, kernel_id: str, max_models: int | None = None) -> None:
        self.kernel_id = kernel_id
        self.max_models = max_models or MAX_WIDGET_MODELS
        self.models: dict[str, WidgetModel] = {}
        # The Output widgets among them: every kernel output is checked against these
        # (`capturing`), so that check must not walk every slider and label.
        self._outputs: dict[str, WidgetModel] = {}

    @classmethod
    def restore(
        cls, kernel_id: str, models: list[Any], max_models: int | None = None
    ) -> WidgetStore:
        """The store another replica's `snapshot()` describes (the runtime moved here)."""
        store = cls(kernel_id, max_models)
        for public in models[: store.max_models]:
            if not isinstance(public, dict):
                continue
            comm_id, state, metadata = (
                public.get("comm_id"),
                public.get("state"),
                public.get("metadata"),
            )
            if not isinstance(comm_id, str) or not isinstance(state, dict):
                continue
            model = WidgetModel(comm_id, {}, dict(metadata) if isinstance(metadata, dict) else {})
            buffers = public.get("buffers")
            model.apply(
                state,
                buffer_paths(public),
                [str(b) for b in buffers] if isinstance(buffers, list) else [],
            )
            store.models[comm_id] = model
            store._sort(model)
        return store

    def _sort(self, model: WidgetModel) -> None:
        if model.state.get("_model_module") == OUTPUT_MODULE:
            self._outputs[model.comm_id] = model
        else:
            self._outputs.pop(model.comm_id, None)

    def apply(self, comm: m.Comm) -> bool:
        """Apply one of the kernel's comm messages; False when it concerns no widget (another
        comm target, a comm never opened) and should not be passed on."""
        data = comm.data
        if comm.msg_type == "comm_open":
            if comm.target_name != WIDGET_TARGET or not isinstance(data.get("state"), dict):
                return False
            if len(self.models) >= self.max_models:
                return False
            opened = WidgetModel(comm.comm_id, {}, dict(comm.metadata))
            opened.apply(data["state"], buffer_paths(data), comm.buffers)
            self.models[comm.comm_id] = opened
            self._sort(opened)
            return True
        model = self.models.get(comm.comm_id)
        if model is None:
            return False
        if comm.msg_type == "comm_close":
            del self.models[comm.comm_id]
            self._outputs.pop(comm.comm_id, None)
            return True
        state = data.get("state")
        if data.get("method") in ("update", "echo_update") and isinstance(state, dict):
            model.apply(state, buffer_paths(data), comm.buffers)
            self._sort(model)
        return True

    def describe(self, answer: m.WidgetState) -> WidgetModel | None:
        """Apply the kernel's whole state of one widget (its answer to `request_state`):
        a model this store does not know is made from it; None when it describes none."""
        data = answer.data
        state = data.get("state")
        if data.get("method") != "update" or not isinstance(state, dict):
            return None
        model = self.models.get(answer.comm_id)
        if model is None:
            if len(self.models) >= self.max_models or not all(
                isinstance(state.get(key), str) for key in MODEL_KEYS
            ):
                return None
            model = self.models[answer.comm_id] = WidgetModel(
                answer.comm_id, {}, dict(answer.metadata)
            )
        model.apply(state, buffer_paths(data), answer.buffers)
        self._sort(model)
        return model

    def capturing(self, parent_msg_id: str) -> WidgetModel | None:
        """The Output widget that captures the outputs of this kernel request, if any."""
        if not parent_msg_id:
            return None
        for model in self._outputs.values():
            if model.state.get("msg_id") == parent_msg_id:
                return model
        return None

    def snapshot(self) -> list[dict[str, Any]]:
        return [model.public() for model in self.models.values()]


def capture(model: WidgetModel, msg_type: str, content: dict[str, Any]) -> bool:
    """Put one IOPub output into an Output widget's `outputs`; False when it is not one
    an Output widget keeps (an input echo, a display update)."""
    if msg_type == "clear_output":
        if content.get("wait"):
            model.clear_on_next = True
        else:
            model.state["outputs"] = []
        return True
    output = nbformat_output(msg_type, content)
    if output is None:
        return False
    outputs = [] if model.clear_on_next else list(model.state.get("outputs") or [])
    model.clear_on_next = False
    last = outputs[-1] if outputs else None
    if (
        output["output_type"] == "stream"
        and isinstance(last, dict)
        and last.get("output_type") == "stream"
        and last.get("name") == output["name"]
    ):
        text = str(last.get("text", "")) + output["text"]
        outputs[-1] = {**last, "text": text[-MAX_CAPTURED_TEXT:]}
    else:
        outputs.append(output)
    model.state["outputs"] = outputs[-MAX_CAPTURED_OUTPUTS:]
    return True


def nbformat_output(msg_type: str, content: dict[str, Any]) -> dict[str, Any] | None:
    if msg_type == "stream":
        name = content.get("name")
        return {
            "output_type": "stream",
            "name": name if name in ("stdout", "stderr") else "stdout",
            "text": str(content.get("text", ""))[-MAX_CAPTURED_TEXT:],
        }
    if msg_type in ("display_data", "execute_result"):
        data, metadata = content.get("data"), content.get("metadata")
        output: dict[str, Any] = {
            "output_type": msg_type,
            "data": data if isinstance(data, dict) else {},
            "metadata": metadata if isinstance(metadata, dict) else {},
        }
        if msg_type == "execute_result":
            output["execution_count"] = content.get("execution_count")
        return output
    if msg_type == "error":
        traceback = content.get("traceback")
        return {
            "output_type": "error",
            "ename": str(content.get("ename", "")),
            "evalue": str(content.get("evalue", "")),
            "traceback": [str(line) for line in traceback] if isinstance(traceback, list) else [],
        }
    return None


def person_message_problem(store: WidgetStore | None, comm_id: str, data: dict[str, Any]) -> str:
    """Why a person's message to a widget is refused; "" when it may go to the kernel."""
    if store is None or comm_id not in store.models:
        return "no such widget in the running kernel"
    method = data.get("method")
    if method not in PERSON_METHODS:
        return "a widget message is an update or a custom message"
    if method == "update" and not isinstance(data.get("state"), dict):
        return "an update carries a state object"
    return ""
