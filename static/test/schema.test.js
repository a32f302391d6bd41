// schema.js: which cells and outputs the editor can draw, and why not.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import * as Y from 'yjs'
import { cellProblem, kind, outputProblem } from '../src/schema.js'

function cell (fields) {
  const doc = new Y.Doc()
  const cells = doc.getArray('cells')
  const map = new Y.Map()
  for (const [key, value] of Object.entries(fields)) map.set(key, value)
  cells.push([map])
  return cells.get(0)
}

test('a well-formed code cell is drawable', () => {
  assert.equal(cellProblem(cell({ id: 'a', cell_type: 'code', source: new Y.Text('x'), outputs: new Y.Array() })), null)
})

test('malformed cells say why, naming kinds not values', () => {
  assert.equal(cellProblem(42), 'it is a number, not a cell')
  assert.equal(cellProblem(cell({ cell_type: 'code' })), 'it has no id')
  assert.match(cellProblem(cell({ id: 'a', cell_type: 'bogus', source: new Y.Text() })), /"bogus" is not code/)
  assert.equal(cellProblem(cell({ id: 'a', cell_type: 'markdown', source: 'x' })), 'its source is a string, not a Text')
  assert.equal(cellProblem(cell({ id: 'a', cell_type: 'code', source: new Y.Text() })), 'its outputs are missing, not a list')
  assert.equal(kind(new Uint8Array(1)), 'binary data')
})

test('outputs: streams, errors and data bundles are checked', () => {
  assert.equal(outputProblem({ output_type: 'stream', name: 'stdout', text: ['a', 'b'] }), null)
  assert.equal(outputProblem({ output_type: 'stream', text: { x: 1 } }), 'its text is an object')
  assert.equal(outputProblem({ output_type: 'error', traceback: 'x' }), 'its traceback is not a list of lines')
  assert.equal(outputProblem({ output_type: 'display_data', data: { 'application/vnd.plotly.v1+json': { data: [] } } }), null)
  assert.equal(outputProblem({ output_type: 'display_data', data: { 'text/html': 5 } }), 'its text/html is a number, not text')
  assert.match(outputProblem({ output_type: 'nope' }), /unknown/)
})
