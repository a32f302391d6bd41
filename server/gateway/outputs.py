"""Kernel messages written into a cell of the shared document, the way a console shows them.

Consecutive chunks of one stream grow one output's Text, folded as a terminal shows them
(`console.Console`: `\\r`, `\\b`, erase-line, cursor up...), so a progress bar stays one line
however often it redraws; only the changed tail of the text is rewritten.
`clear_output(wait=True)` clears at the next output. Each execution may store up to a cap;
past it one notice says so and the rest is dropped. No I/O here: callers run these inside
a document transaction.

pycrdt indexes Text by UTF-8 bytes, so every offset below is a byte offset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Map, Text

from server.gateway.console import WINDOW, Console

TRUNCATED_KEY = "tandem_truncated"


@dataclass
class _Stream:
    name: str
    console: Console = field(default_factory=Console)
    shown: list[str] = field(default_factory=lambda: [""])  # the console's lines as stored
    size: int = 0  # the Text's length in bytes when we last wrote it

    @classmethod
    def resumed(cls, name: str, current: str) -> _Stream:
        """Carry on after someone else changed the text: take its last lines as they are."""
        shown = current.split("\n")[-WINDOW:]
        console = Console()
        console.feed("\n".join(shown))
        console.take()
        return cls(name, console, shown, len(current.encode()))


@dataclass
class CellWriter:
    """Writes the outputs of one execution into one cell."""

    limit_bytes: int
    stored_bytes: int = 0
    dropped_bytes: int = 0
    truncated: bool = False
    clear_pending: bool = False
    _stream: _Stream | None = None

    def start(self, cell: Map[Any]) -> None:
        """A new execution: the old outputs go, as in Jupyter."""
        outputs = _outputs(cell)
        if len(outputs):
            outputs.clear()

    def resume(self, cell: Map[Any]) -> None:
        """An execution taken back after a reconnect: keep what the cell shows, count it
        against the cap, and continue its last stream where it ended."""
        outputs = _outputs(cell)
        shown = outputs.to_py() or []
        self.stored_bytes = len(json.dumps(shown, default=str).encode())
        # Already past the cap: the rest is dropped, without a second notice.
        self.truncated = any(
            isinstance(output, dict) and (output.get("metadata") or {}).get(TRUNCATED_KEY)
            for output in shown
        )
        last = outputs[len(outputs) - 1] if len(outputs) else None
        if isinstance(last, Map) and last.get("output_type") == "stream":
            # A size that cannot match makes the next chunk read the line from the Text.
            self._stream = _Stream(str(last.get("name")), size=-1)

    def write(self, cell: Map[Any], msg_type: str, content: dict[str, Any]) -> str | None:
        """Write one message; returns the display id of an output it added under one."""
        if msg_type == "clear_output":
            if content.get("wait"):
                self.clear_pending = True
            else:
                self._clear(cell)
            return None
        if msg_type not in ("stream", "display_data", "execute_result", "error"):
            return None
        if self.clear_pending:
            self._clear(cell)
        if msg_type == "stream":
            text = str(content.get("text"))
            if self.truncated:
                self.dropped_bytes += len(text.encode())
            else:
                self._write_stream(cell, str(content.get("name", "stdout")), text)
            return None
        output = to_output(msg_type, content)
        size = _size(output)
        if self.truncated:
            self.dropped_bytes += size
            return None
        if self.stored_bytes + size > self.limit_bytes:
            self._truncate(cell, size)
            return None
        display_id = (content.get("transient") or {}).get("display_id")
        if isinstance(display_id, str) and display_id:
            output["transient"] = {"display_id": display_id}
        else:
            display_id = None
        _outputs(cell).append(Map(output))
        self.stored_bytes += size
        self._stream = None
        return display_id

    def _clear(self, cell: Map[Any]) -> None:
        self.clear_pending = False
        outputs = _outputs(cell)
        if len(outputs):
            outputs.clear()
        self.stored_bytes = 0
        self.truncated = False
        self._stream = None

    def _truncate(self, cell: Map[Any], size: int) -> None:
        self.truncated = True
        self.dropped_bytes += size
        notice = (
            f"Output truncated: this cell's output reached the {self.limit_bytes / 1e6:.1f} MB "
            "limit. Later output is not shown; write large results to a file instead."
        )
        _outputs(cell).append(
            Map(
                {
                    "output_type": "display_data",
                    "data": {"text/plain": notice},
                    "metadata": {TRUNCATED_KEY: True},
                }
            )
        )
        self._stream = None

    # --- streams -------------------------------------------------------------------------

    def _write_stream(self, cell: Map[Any], name: str, chunk: str) -> None:
        outputs = _outputs(cell)
        text = self._open_text(outputs, name)
        if text is None:
            text = Text()
            outputs.append(Map({"output_type": "stream", "name": name, "text": text}))
            self._stream = _Stream(name)
        stream = self._stream
        assert stream is not None
        if len(text) != stream.size:
            stream = self._stream = _Stream.resumed(name, str(text))
        stream.console.feed(chunk)
        changed_from, changed, final = stream.console.take()
        # From the line before at least: a new line starts with the newline ending it.
        first = min(changed_from, len(stream.shown) - 1)
        lines = stream.shown[first:changed_from] + changed
        old_tail = "\n".join(stream.shown[first:])
        new_tail = "\n".join(lines)
        old_tail_bytes = len(old_tail.encode())
        growth = len(new_tail.encode()) - old_tail_bytes
        budget = self.limit_bytes - self.stored_bytes
        over = growth > budget
        if over:
            new_tail = _cut_utf8(new_tail, old_tail_bytes + max(budget, 0))
            growth = len(new_tail.encode()) - old_tail_bytes
        _replace_tail(text, stream.size - old_tail_bytes, old_tail, new_tail)
        stream.shown[first:] = lines
        del stream.shown[:final]
        stream.size = len(text)
        self.stored_bytes += growth
        if over:
            self._truncate(cell, len(chunk.encode()))

    def _open_text(self, outputs: Array[Any], name: str) -> Text | None:
        """The Text of the last output when it is the stream this chunk continues."""
        if self._stream is None or self._stream.name != name or not len(outputs):
            self._stream = None
            return None
        last = outputs[len(outputs) - 1]
        if not isinstance(last, Map) or last.get("output_type") != "stream":
            self._stream = None
            return None
        if last.get("name") != name or not isinstance(last.get("text"), Text):
            self._stream = None
            return None
        text: Text = last["text"]
        return text


def _replace_tail(text: Text, start: int, old: str, new: str) -> None:
    """Rewrite `old` (which starts at byte `start` and runs to the end) as `new`, touching
    only what differs after their common prefix."""
    common = _common_prefix(old, new)
    offset = start + len(old[:common].encode())
    removed = len(old[common:].encode())
    if removed:
        del text[offset : offset + removed]
    if new[common:]:
        text.insert(offset, new[common:])


def _common_prefix(a: str, b: str) -> int:
    """How many first characters `a` and `b` share, found by halving with C-speed slice
    comparisons (a progress bar's long line is compared on every redraw)."""
    low, high = 0, min(len(a), len(b))  # a[:low] == b[:low]; they differ before `high`+1
    while low < high:
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _cut_utf8(value: str, max_bytes: int) -> str:
    return value.encode()[:max_bytes].decode("utf-8", errors="ignore")


def _outputs(cell: Map[Any]) -> Array[Any]:
    outputs = cell.get("outputs")
    if not isinstance(outputs, Array):
        outputs = Array()
        cell["outputs"] = outputs
    return outputs


def to_output(msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
    """An nbformat output from an IOPub message's content."""
    if msg_type == "error":
        return {
            "output_type": "error",
            "ename": str(content.get("ename", "")),
            "evalue": str(content.get("evalue", "")),
            "traceback": [str(line) for line in content.get("traceback", [])],
        }
    output: dict[str, Any] = {
        "output_type": msg_type,
        "data": _bundle(content.get("data")),
        "metadata": _bundle(content.get("metadata")),
    }
    if msg_type == "execute_result":
        output["execution_count"] = content.get("execution_count")
    return output


def _bundle(value: Any) -> dict[str, Any]:
    """A mime bundle (or its metadata) as nbformat allows it. Altair 6 sends its specs, JSON
    objects, as `application/vnd.vegalite.v6.json`: nbformat keeps non-text data only under
    `application/json` or a `+json` type, so such a key is stored under its `+json` name."""
    bundle = dict(value or {})
    for mime in list(bundle):
        data = bundle[mime]
        text = isinstance(data, str) or (
            isinstance(data, list) and all(isinstance(line, str) for line in data)
        )
        if not text and mime.startswith("application/vnd.") and mime.endswith(".json"):
            renamed = mime.removesuffix(".json") + "+json"
            bundle.setdefault(renamed, bundle.pop(mime))
    return bundle


def update_display(cell: Map[Any], display_id: str, content: dict[str, Any]) -> bool:
    """Replace data and metadata of every output of `cell` shown under `display_id`."""
    found = False
    for output in _outputs(cell):
        if not isinstance(output, Map):
            continue
        transient = output.get("transient")
        if isinstance(transient, dict) and transient.get("display_id") == display_id:
            output["data"] = _bundle(content.get("data"))
            output["metadata"] = _bundle(content.get("metadata"))
            found = True
    return found


def error_output(ename: str, evalue: str) -> Map[Any]:
    return Map(
        {
            "output_type": "error",
            "ename": ename,
            "evalue": evalue,
            "traceback": [f"\x1b[0;31m{ename}\x1b[0m: {evalue}"],
        }
    )


def _size(value: dict[str, Any]) -> int:
    return len(json.dumps(value, default=str))
