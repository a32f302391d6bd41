// Command mode's keys (Jupyter's): which keydown names which command. A command runs on
// the notebook and the selected cell; `edits` ones are off for viewers and commenters.
// Nothing here touches the page, so the table reads as the list of shortcuts.

const selectAt = (nb, index) => nb.viewAt(Math.max(0, Math.min(nb.cells.length - 1, index)))?.el.focus()
const up = { run: (nb, view, index) => selectAt(nb, index - 1) }
const down = { run: (nb, view, index) => selectAt(nb, index + 1) }
// Cells made from command mode are selected, not edited: Enter edits.
const select = { edit: false }

// Commands that act on every selected cell (Shift+↑/↓, Shift+click: selection.js).
const selection = (action) => ({ edits: true, run: (nb) => action(nb.selection) })

const COMMAND_KEYS = {
  Enter: { run: (nb, view) => view.focusEditor() },
  'Shift-Enter': { run: (nb) => nb.selection.run(true) },
  'Mod-Enter': { run: (nb) => nb.selection.run(false) },
  'Alt-Enter': { edits: true, run: (nb, view) => nb.runAndAdvance(view, true, select) },
  ArrowUp: up,
  k: up,
  ArrowDown: down,
  j: down,
  a: { edits: true, run: (nb, view, index) => nb.insertAt(index, 'code', select) },
  b: { edits: true, run: (nb, view, index) => nb.insertAt(index + 1, 'code', select) },
  d: { edits: true, run: () => {} }, // the first of D D: consumed, and waits for the second
  'd d': selection((s) => s.remove()),
  m: { edits: true, run: (nb, view) => nb.setType(view, 'markdown') },
  y: { edits: true, run: (nb, view) => nb.setType(view, 'code') },
  M: selection((s) => s.merge()),
  'Shift-ArrowUp': { run: (nb) => nb.selection.extend(-1) },
  'Shift-ArrowDown': { run: (nb) => nb.selection.extend(1) },
  K: { run: (nb) => nb.selection.extend(-1) },
  J: { run: (nb) => nb.selection.extend(1) },
  'Mod-Shift-ArrowUp': selection((s) => s.move(-1)),
  'Mod-Shift-ArrowDown': selection((s) => s.move(1)),
  c: { run: (nb) => nb.selection.copy() },
  x: selection((s) => s.cut()),
  v: selection((s) => s.paste(false)),
  V: selection((s) => s.paste(true)),
  z: { edits: true, run: (nb) => nb.cellUndo.undo() }
}

// A keydown's name in COMMAND_KEYS: a letter as typed (Shift is in its case), other keys
// with their modifiers. A letter with Ctrl, Alt or Meta is the browser's (Ctrl+A, Ctrl+C).
export function keyName (event) {
  if (event.key.length === 1) return event.ctrlKey || event.altKey || event.metaKey ? null : event.key
  const mods = [event.ctrlKey || event.metaKey ? 'Mod' : null, event.altKey ? 'Alt' : null, event.shiftKey ? 'Shift' : null]
  return [...mods.filter(Boolean), event.key].join('-')
}

// The command a keydown names, given the key pressed before it (for D D), and the key to
// remember for the next one: none after a pair has run, so D D D deletes one cell.
export function commandFor (event, lastKey) {
  const name = keyName(event)
  if (name === null) return { command: null, lastKey: null }
  const pair = lastKey === name ? COMMAND_KEYS[`${name} ${name}`] : undefined
  return { command: pair ?? COMMAND_KEYS[name] ?? null, lastKey: pair ? null : name }
}
