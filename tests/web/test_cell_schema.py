"""What the editor can draw (static/src/schema.js), run under Node with yjs: every value that
breaks the notebook schema is named, so the editor shows a placeholder instead of skipping
it (issue 12)."""

from __future__ import annotations

from typing import Any

from tests.support_web import run_module

BUILD = """((Y) => {
  const doc = new Y.Doc()
  const cells = doc.getArray('cells')
  const cell = (fields) => {
    const map = new Y.Map()
    for (const [key, value] of Object.entries(fields)) map.set(key, value)
    return map
  }
  const code = (extra) => cell({ id: 'c', cell_type: 'code', source: new Y.Text('x'),
    metadata: new Y.Map(), outputs: new Y.Array(), ...extra })
  cells.push([
    code({}),
    cell({ id: 'm', cell_type: 'markdown', source: new Y.Text('# hi'), metadata: new Y.Map() }),
    1.5, 'not a cell', new Y.Text('not a cell'), null,
    cell({ cell_type: 'code', source: new Y.Text('x'), outputs: new Y.Array() }),
    code({ cell_type: 'nonsense' }),
    code({ source: 'plain string' }),
    code({ outputs: 'oops' }),
    code({ metadata: 7 }),
  ])
  return cells.toArray().map(m.cellProblem)
})(await import('yjs'))"""


def test_every_bad_cell_is_named() -> None:
    problems: list[Any] = run_module("schema.js", BUILD)
    assert problems == [
        None,
        None,
        "it is a number, not a cell",
        "it is a string, not a cell",
        "it is a Text, not a cell",
        "it is null, not a cell",
        "it has no id",
        'its type "nonsense" is not code, markdown or raw',
        "its source is a string, not a Text",
        "its outputs are a string, not a list",
        "its metadata is a number",
    ]


def test_every_bad_output_is_named() -> None:
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "hi\n"},
        {"output_type": "display_data", "data": {"text/plain": ["a", "b"]}, "metadata": {}},
        {"output_type": "execute_result", "data": {"application/json": {"a": 1}}},
        {"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["t"]},
        {"output_type": "stream", "name": "stdout", "text": {"a": "b"}},
        {"output_type": "display_data", "data": {"text/html": 5}},
        {"output_type": "display_data", "data": "oops"},
        {"output_type": "error", "traceback": "not a list"},
        {"output_type": "nonsense"},
        {"text": "no type"},
        7,
        None,
    ]
    assert run_module("schema.js", "args[0].map(m.outputProblem)", outputs) == [
        None,
        None,
        None,
        None,
        "its text is an object",
        "its text/html is a number, not text",
        "its data is a string",
        "its traceback is not a list of lines",
        'its type "nonsense" is unknown',
        "it has no output_type",
        "it is a number, not an output",
        "it is null, not an output",
    ]
