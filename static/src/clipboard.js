// Cells on a clipboard of their own (C, X, V, Shift+V in command mode), as JupyterLab
// keeps one: type, source, metadata and outputs, in this browser's localStorage, so a
// copy in one notebook (or tab) pastes in another. Also how a cell's JSON becomes a
// shared cell again. Pure apart from the storage and Yjs: unit-tested in Node.
import * as Y from 'yjs'

const KEY = 'tandem:cell-clipboard'
const FORMAT = 'tandem-cells/1'
const TYPES = ['code', 'markdown', 'raw']
const MAX_CELLS = 10000

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value)
const text = (value) => (Array.isArray(value) ? value.join('') : typeof value === 'string' ? value : '')

// Cells (as Y.Map.toJSON gives them) as the clipboard's text.
export function serialize (cells) {
  return JSON.stringify({ format: FORMAT, cells: cells.map(clean) })
}

// The cells a clipboard text holds, each cleaned to a cell's shape; [] for anything else
// (another program's text, a newer format, a broken value).
export function parse (value) {
  let data
  try { data = JSON.parse(value) } catch { return [] }
  if (!isObject(data) || data.format !== FORMAT || !Array.isArray(data.cells)) return []
  return data.cells.slice(0, MAX_CELLS).filter(isObject).map(clean).filter((cell) => cell !== null)
}

// What a cell keeps on the clipboard. The run state stays behind (a pasted cell is idle);
// the id too: a pasted cell gets a new one.
export function clean (cell) {
  if (!isObject(cell) || !TYPES.includes(cell.cell_type)) return null
  const out = { cell_type: cell.cell_type, source: text(cell.source), metadata: isObject(cell.metadata) ? cell.metadata : {} }
  if (cell.cell_type === 'code') {
    out.outputs = Array.isArray(cell.outputs) ? cell.outputs.filter(isObject) : []
    out.execution_count = Number.isInteger(cell.execution_count) ? cell.execution_count : null
  } else if (isObject(cell.attachments)) {
    out.attachments = cell.attachments
  }
  return out
}

export const newCellId = () => crypto.randomUUID().replaceAll('-', '').slice(0, 16)

// A shared cell (jupyter_ydoc's schema) from a cell's JSON; `id` is kept when given (a
// move), else a new one is made (a paste).
export function cellFromJSON (json, id = newCellId()) {
  const cell = new Y.Map()
  cell.set('id', id)
  cell.set('cell_type', json.cell_type)
  cell.set('source', new Y.Text(text(json.source)))
  cell.set('metadata', new Y.Map(Object.entries(isObject(json.metadata) ? json.metadata : {})))
  if (json.cell_type === 'code') {
    const outputs = new Y.Array()
    outputs.push((json.outputs ?? []).map((o) => {
      const m = new Y.Map(Object.entries(o).filter(([k]) => k !== 'text'))
      if (o.output_type === 'stream') m.set('text', new Y.Text(text(o.text)))
      return m
    }))
    cell.set('outputs', outputs)
    cell.set('execution_count', json.execution_count ?? null)
    cell.set('execution_state', 'idle')
  } else if (isObject(json.attachments)) {
    cell.set('attachments', json.attachments)
  }
  return cell
}

// The browser's copy (localStorage: every tab of this origin reads the same one), one per
// person, so someone else signing in on this browser does not paste it.
export function store (person, cells, storage = globalThis.localStorage) {
  storage.setItem(`${KEY}:${person}`, serialize(cells))
}

export function load (person, storage = globalThis.localStorage) {
  return parse(storage.getItem(`${KEY}:${person}`) ?? '')
}
