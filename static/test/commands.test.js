// commands.js: keydown names and Jupyter's command-mode pairs (D D).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { commandFor, keyName } from '../src/commands.js'

const key = (k, mods = {}) => ({ key: k, ctrlKey: false, altKey: false, metaKey: false, shiftKey: false, ...mods })

test('letters are named as typed; with Ctrl, Alt or Meta they are the browser\'s', () => {
  assert.equal(keyName(key('a')), 'a')
  assert.equal(keyName(key('M', { shiftKey: true })), 'M')
  assert.equal(keyName(key('c', { ctrlKey: true })), null)
  assert.equal(keyName(key('Enter', { shiftKey: true })), 'Shift-Enter')
  assert.equal(keyName(key('Enter', { metaKey: true })), 'Mod-Enter')
})

test('D D deletes once: a third D starts a new pair', () => {
  const first = commandFor(key('d'), null)
  assert.equal(first.lastKey, 'd')
  const second = commandFor(key('d'), first.lastKey)
  assert.equal(second.lastKey, null)
  assert.ok(second.command.edits)
  const third = commandFor(key('d'), second.lastKey)
  assert.equal(third.lastKey, 'd')
  assert.notEqual(third.command, second.command)
})

test('unknown keys name no command', () => {
  assert.equal(commandFor(key('q'), null).command, null)
  assert.equal(commandFor(key('c', { ctrlKey: true }), 'd').command, null)
})

test('every command-mode key says what it does in the shortcut help', async () => {
  const { shortcutList } = await import('../src/commands.js')
  const missing = shortcutList().command.filter((entry) => entry.label === '(no description)')
  assert.deepEqual(missing.map((entry) => entry.key), [])
})
