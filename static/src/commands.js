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
  h: { run: (nb) => nb.showShortcuts() },
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

// --- what the shortcut help (H) and the command palette read ------------------------------

// What each command-mode key does, in words: beside COMMAND_KEYS rather than in it, so the
// table stays as the key handling reads it. A key with no words here is still listed (by
// its own `label`, else as "(no description)"), so a new key can never be missing.
const KEY_LABELS = {
  Enter: 'Edit the selected cell',
  'Shift-Enter': 'Run the cell, select the next',
  'Mod-Enter': 'Run the cell',
  'Alt-Enter': 'Run the cell, insert a cell below',
  ArrowUp: 'Select the cell above',
  k: 'Select the cell above',
  ArrowDown: 'Select the cell below',
  j: 'Select the cell below',
  h: 'Show keyboard shortcuts',
  a: 'Insert a code cell above',
  b: 'Insert a code cell below',
  'd d': 'Delete the cell',
  m: 'Change the cell to markdown',
  y: 'Change the cell to code',
  M: 'Merge with the cell below',
  z: 'Undo your last cell change (add, delete, move, type)',
  'Shift-ArrowUp': 'Extend the selection up',
  'Shift-ArrowDown': 'Extend the selection down',
  K: 'Extend the selection up',
  J: 'Extend the selection down',
  'Mod-Shift-ArrowUp': 'Move the selected cells up',
  'Mod-Shift-ArrowDown': 'Move the selected cells down',
  c: 'Copy the selected cells',
  x: 'Cut the selected cells',
  v: 'Paste cells below',
  V: 'Paste cells above'
}

// Edit mode's keys (in a cell's editor): cell.js binds those with `run` ahead of
// CodeMirror's own; those without are CodeMirror's (basicSetup), listed for the help.
// `run (nb, cell, editorView)` returns whether it handled the key.
export const EDIT_KEYS = [
  { key: 'Shift-Enter', label: 'Run the cell, edit the next', run: (nb, cell) => { nb.runAndAdvance(cell, false); return true } },
  { key: 'Mod-Enter', label: 'Run the cell', run: (nb, cell) => { nb.run([cell.id]); cell.doneEditingMarkdown(); return true } },
  { key: 'Alt-Enter', label: 'Run the cell, insert a cell below', run: (nb, cell) => { nb.runAndAdvance(cell, true); return true } },
  { key: 'Escape', label: 'Command mode (or close the documentation)', run: (nb, cell) => cell.leaveEditor() },
  { key: 'Mod-Shift--', label: 'Split the cell at the cursor', run: (nb, cell) => { nb.split(cell); return true } },
  { key: 'Tab', label: 'Complete from the kernel (after a name), else indent', run: (nb, cell, view) => cell.tab(view) },
  { key: 'Shift-Tab', label: 'Documentation (after a name), else dedent', run: (nb, cell, view) => cell.shiftTab(view) },
  { key: 'Ctrl-Space', label: 'Complete' },
  { key: 'Mod-z', label: 'Undo your typing' },
  { key: 'Mod-Shift-z', label: 'Redo' },
  { key: 'Mod-f', label: 'Find in the cell' },
  { key: 'Mod-/', label: 'Comment or uncomment the line' }
]

// Keys that work anywhere on the page, in either mode.
export const GLOBAL_KEYS = {
  'Mod-Shift-P': { label: 'Command palette', run: (nb) => nb.openPalette() }
}

export function globalCommandFor (event) {
  if (!(event.ctrlKey || event.metaKey) || !event.shiftKey || event.altKey || event.key.length !== 1) return null
  return GLOBAL_KEYS[`Mod-Shift-${event.key.toUpperCase()}`] ?? null
}

// Every shortcut, for the help dialog: the three tables above, read, not copied. `d` alone
// (the first half of D D) is no shortcut of its own and is left out.
export function shortcutList () {
  const command = Object.entries(COMMAND_KEYS)
    .filter(([key]) => !COMMAND_KEYS[`${key} ${key}`])
    .map(([key, entry]) => ({ key, label: entry.label ?? KEY_LABELS[key] ?? '(no description)', edits: Boolean(entry.edits) }))
  return {
    command,
    edit: EDIT_KEYS.map(({ key, label }) => ({ key, label, edits: false })),
    anywhere: Object.entries(GLOBAL_KEYS).map(([key, entry]) => ({ key, label: entry.label, edits: false }))
  }
}

// A key's name as people read it: "Ctrl+Shift+P" (⌘ on a Mac), "Shift+M", "D, D".
export function keyLabel (name, mac = false) {
  const part = (key) => {
    if (key.length === 1) return /[A-Z]/.test(key) ? `Shift+${key}` : key.toUpperCase()
    const bits = key.split('-')
    // "Mod-Shift--": the last part is the minus itself.
    if (key.endsWith('--')) bits.splice(-2, 2, '-')
    const words = { Mod: mac ? '⌘' : 'Ctrl', ArrowUp: '↑', ArrowDown: '↓', Escape: 'Esc' }
    return bits.map((bit) => words[bit] ?? (bit.length === 1 ? bit.toUpperCase() : bit)).join('+')
  }
  return name.split(' ').map(part).join(', ')
}

// The commands, once: the palette lists them, with the keys that also run them. `edits`
// ones are absent for viewers and commenters (the server refuses them anyway); `cell`
// ones need a selected cell. `run (nb, cell)` acts on the notebook page.
const onCell = (run) => ({ cell: true, run })
export const COMMANDS = [
  { id: 'run-cell', label: 'Run the selected cell', keys: ['Mod-Enter'], edits: true, ...onCell((nb, cell) => nb.run([cell.id])) },
  { id: 'run-advance', label: 'Run the selected cell and select the next', keys: ['Shift-Enter'], edits: true, ...onCell((nb, cell) => nb.runAndAdvance(cell, false, { edit: false })) },
  { id: 'run-all', label: 'Run all cells', keys: [], edits: true, run: (nb) => nb.run(nb.cellIds()) },
  { id: 'run-above', label: 'Run all cells above', keys: [], edits: true, run: (nb) => nb.runAround('above') },
  { id: 'run-below', label: 'Run the selected cell and all below', keys: [], edits: true, run: (nb) => nb.runAround('below') },
  { id: 'interrupt', label: 'Interrupt the kernel', keys: [], edits: true, run: (nb) => nb.kernel('interrupt') },
  { id: 'restart', label: 'Restart the kernel…', keys: [], edits: true, run: (nb) => nb.restartKernel() },
  { id: 'restart-run-all', label: 'Restart the kernel and run all cells…', keys: [], edits: true, run: (nb) => nb.restartKernel({ runAll: true }) },
  { id: 'clear-output', label: 'Clear the selected cell\'s output', keys: [], edits: true, ...onCell((nb, cell) => nb.clearOutputs(cell)) },
  { id: 'clear-all-outputs', label: 'Clear all outputs', keys: [], edits: true, run: (nb) => nb.clearAllOutputs() },
  { id: 'insert-above', label: 'Insert a code cell above', keys: ['a'], edits: true, ...onCell((nb, cell) => nb.insertAt(nb.indexOf(cell), 'code', { edit: false })) },
  { id: 'insert-below', label: 'Insert a code cell below', keys: ['b'], edits: true, ...onCell((nb, cell) => nb.insertAt(nb.indexOf(cell) + 1, 'code', { edit: false })) },
  { id: 'insert-code-end', label: 'Add a code cell at the end', keys: [], edits: true, run: (nb) => nb.insertAt(nb.cells.length, 'code') },
  { id: 'insert-text-end', label: 'Add a text (markdown) cell at the end', keys: [], edits: true, run: (nb) => nb.insertAt(nb.cells.length, 'markdown') },
  { id: 'delete-cell', label: 'Delete the selected cell', keys: ['d d'], edits: true, ...onCell((nb, cell) => nb.remove(cell)) },
  { id: 'move-up', label: 'Move the cell up', keys: [], edits: true, ...onCell((nb, cell) => nb.move(cell, -1)) },
  { id: 'move-down', label: 'Move the cell down', keys: [], edits: true, ...onCell((nb, cell) => nb.move(cell, 1)) },
  { id: 'to-markdown', label: 'Change the cell to markdown', keys: ['m'], edits: true, ...onCell((nb, cell) => nb.setType(cell, 'markdown')) },
  { id: 'to-code', label: 'Change the cell to code', keys: ['y'], edits: true, ...onCell((nb, cell) => nb.setType(cell, 'code')) },
  { id: 'merge-below', label: 'Merge the cell with the one below', keys: ['M'], edits: true, ...onCell((nb, cell) => nb.mergeBelow(cell)) },
  { id: 'undo-cells', label: 'Undo your last cell change', keys: ['z'], edits: true, run: (nb) => nb.cellUndo.undo() },
  { id: 'find', label: 'Find in the selected cell', keys: ['Mod-f'], edits: false, ...onCell((nb, cell) => cell.find()) },
  { id: 'change-runtime', label: 'Change runtime type…', keys: [], edits: true, run: (nb) => nb.chooseRuntime() },
  { id: 'rename', label: 'Rename the notebook', keys: [], edits: true, run: (nb) => nb.startRename() },
  { id: 'theme-system', label: 'Theme: follow the system', keys: [], edits: false, run: (nb) => nb.setTheme('system') },
  { id: 'theme-light', label: 'Theme: light', keys: [], edits: false, run: (nb) => nb.setTheme('light') },
  { id: 'theme-dark', label: 'Theme: dark', keys: [], edits: false, run: (nb) => nb.setTheme('dark') },
  { id: 'shortcuts', label: 'Show keyboard shortcuts', keys: ['h'], edits: false, run: (nb) => nb.showShortcuts() },
  { id: 'comments', label: 'Open comments', keys: [], edits: false, run: (nb) => nb.panel.show('comments') },
  { id: 'files', label: 'Open files', keys: [], edits: false, run: (nb) => nb.panel.show('files') },
  { id: 'history', label: 'Open history (versions)', keys: [], edits: false, run: (nb) => nb.panel.show('history') }
]

// The commands this person may run: an editor's only for editors.
export function commandsFor (canEdit) {
  return COMMANDS.filter((command) => canEdit || !command.edits)
}

// The keys the registry names that no table binds (none, or the palette shows a key that
// does nothing): the tests hold this empty.
export function unboundKeys () {
  const bound = new Set([...Object.keys(COMMAND_KEYS), ...EDIT_KEYS.map((k) => k.key), ...Object.keys(GLOBAL_KEYS)])
  return COMMANDS.flatMap((command) => command.keys.filter((key) => !bound.has(key)).map((key) => `${command.id}: ${key}`))
}
