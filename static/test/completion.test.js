// completion.js: positions between code points and UTF-16, what Tab does, word fallback.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { inspectAt, kernelOptions, tabAction, toCodePoints, toUtf16, wordBefore, wordMatches } from '../src/completion.js'

test('code points and UTF-16 offsets agree on astral characters', () => {
  const text = 'a😀b'
  assert.equal(toCodePoints(text, 3), 2) // 'a' + the surrogate pair
  assert.equal(toUtf16(text, 2), 3)
  assert.equal(toUtf16(text, 99), text.length) // clamped
})

test('Tab completes after a name or a dot, indents elsewhere', () => {
  assert.equal(tabAction('np'), 'complete')
  assert.equal(tabAction('os.'), 'complete')
  assert.equal(tabAction('    '), 'indent')
  assert.equal(tabAction(''), 'indent')
  assert.equal(tabAction('x', true), 'indent')
  assert.equal(inspectAt('len'), true)
  assert.equal(inspectAt('len('), false)
})

test('word completion offers longer words once, in order', () => {
  assert.equal(wordBefore('x = dataf'), 'dataf')
  assert.deepEqual(wordMatches(['dataframe = 1', 'data datum dataframe'], 'dat'), ['dataframe', 'data', 'datum'])
  assert.deepEqual(wordMatches(['data'], 'data'), [])
})

test('a kernel reply becomes UTF-16 ranges with types; nothing usable is null', () => {
  const reply = { status: 'ok', matches: ['print', 'property'], types: ['function'], cursor_start: 2, cursor_end: 4 }
  assert.deepEqual(kernelOptions('😀 pr', reply), { from: 3, to: 5, options: [{ label: 'print', detail: 'function' }, { label: 'property' }] })
  assert.equal(kernelOptions('x', { status: 'busy' }), null)
  assert.equal(kernelOptions('x', { status: 'ok', matches: [] }), null)
})
