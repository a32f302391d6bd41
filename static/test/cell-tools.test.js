// commands.js: the keys that act on several selected cells (selection.js) and who may press them.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { commandFor } from '../src/commands.js'

const key = (k, mods = {}) => ({ key: k, ctrlKey: false, altKey: false, metaKey: false, shiftKey: false, ...mods })
const command = (k, mods) => commandFor(key(k, mods), null).command

test('copying is reading: a viewer may copy cells, not cut, paste, move or merge them', () => {
  assert.ok(command('c') && !command('c').edits)
  for (const [k, mods] of [['x'], ['v'], ['V', { shiftKey: true }], ['M', { shiftKey: true }], ['ArrowUp', { ctrlKey: true, shiftKey: true }], ['ArrowDown', { ctrlKey: true, shiftKey: true }]]) {
    assert.ok(command(k, mods)?.edits, `${k} edits`)
  }
})

test('Shift+arrows and Shift+J/K extend the selection, for anyone', () => {
  for (const [k, mods] of [['ArrowUp', { shiftKey: true }], ['ArrowDown', { shiftKey: true }], ['J', { shiftKey: true }], ['K', { shiftKey: true }]]) {
    const found = command(k, mods)
    assert.ok(found && !found.edits, `${k} extends`)
  }
})

test('the run and delete keys act on the selection', () => {
  const calls = []
  const nb = { selection: { run: (advance) => calls.push(['run', advance]), remove: () => calls.push(['remove']) } }
  command('Enter', { shiftKey: true }).run(nb)
  command('Enter', { ctrlKey: true }).run(nb)
  commandFor(key('d'), 'd').command.run(nb)
  assert.deepEqual(calls, [['run', true], ['run', false], ['remove']])
})
