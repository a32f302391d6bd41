// What the editor can draw: the parts of jupyter_ydoc's YNotebook schema a cell view and
// an output need. Anything else in `cells` (a number, a string, a Text, a Map without an
// id, a cell whose source is not a Text ...) is drawn as a placeholder that says why and
// can be deleted; a bad output as a note in its cell. Pure (yjs only): unit-tested in Node.
import * as Y from 'yjs'

export const CELL_TYPES = ['code', 'markdown', 'raw']
const OUTPUT_TYPES = ['stream', 'display_data', 'execute_result', 'error']

// A value's kind in words, for messages (never the value itself).
export function kind (value) {
  if (value instanceof Y.Text) return 'a Text'
  if (value instanceof Y.Map) return 'a Map'
  if (value instanceof Y.Array) return 'an Array'
  if (value instanceof Y.AbstractType) return 'a shared type'
  if (value === null) return 'null'
  if (value === undefined) return 'missing'
  if (Array.isArray(value)) return 'a list'
  if (value instanceof Uint8Array) return 'binary data'
  return { boolean: 'a boolean', number: 'a number', string: 'a string', object: 'an object' }[typeof value] ?? `a ${typeof value}`
}

const isPlainObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array)
const isText = (value) => typeof value === 'string' || (Array.isArray(value) && value.every((line) => typeof line === 'string'))

// Why an item of `cells` cannot be drawn as a cell, or null when it can.
export function cellProblem (item) {
  if (!(item instanceof Y.Map)) return `it is ${kind(item)}, not a cell`
  const id = item.get('id')
  if (typeof id !== 'string' || !id) return 'it has no id'
  const type = item.get('cell_type')
  if (!CELL_TYPES.includes(type)) return typeof type === 'string' ? `its type "${type.slice(0, 40)}" is not code, markdown or raw` : `its type is ${kind(type)}`
  const source = item.get('source')
  if (!(source instanceof Y.Text)) return `its source is ${kind(source)}, not a Text`
  const metadata = item.get('metadata')
  if (metadata !== undefined && !(metadata instanceof Y.Map) && !isPlainObject(metadata)) return `its metadata is ${kind(metadata)}`
  if (type === 'code' && !(item.get('outputs') instanceof Y.Array)) return `its outputs are ${kind(item.get('outputs'))}, not a list`
  return null
}

// Why an output (as `toJSON` gives it) cannot be drawn, or null when it can.
export function outputProblem (output) {
  if (!isPlainObject(output)) return `it is ${kind(output)}, not an output`
  const type = output.output_type
  if (!OUTPUT_TYPES.includes(type)) return typeof type === 'string' ? `its type "${type.slice(0, 40)}" is unknown` : 'it has no output_type'
  if (type === 'stream') {
    if (!isText(output.text)) return `its text is ${kind(output.text)}`
    if (output.name !== undefined && typeof output.name !== 'string') return 'its stream name is not a string'
  } else if (type === 'error') {
    if (output.traceback !== undefined && !(Array.isArray(output.traceback) && isText(output.traceback))) return 'its traceback is not a list of lines'
    if (['ename', 'evalue'].some((key) => output[key] !== undefined && typeof output[key] !== 'string')) return 'its error name or value is not text'
  } else {
    if (!isPlainObject(output.data)) return `its data is ${kind(output.data)}`
    for (const [mime, value] of Object.entries(output.data)) {
      if (mime !== 'application/json' && !mime.endsWith('+json') && !isText(value)) return `its ${mime.slice(0, 60)} is ${kind(value)}, not text`
    }
  }
  return null
}
