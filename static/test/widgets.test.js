// widgets.js: which widget events a page applies, drops, or reloads the state for.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventAction, eventsAfter } from '../src/widgets.js'

test('events up to the snapshot are dropped', () => {
  const events = [{ seq: 3 }, { seq: 5 }, { seq: 6 }, {}]
  assert.deepEqual(eventsAfter(events, 5), [{ seq: 6 }])
})

test('a gap in the event numbers reloads the state', () => {
  assert.equal(eventAction(5, 4), 'drop')
  assert.equal(eventAction(5, 5), 'drop')
  assert.equal(eventAction(5, 6), 'apply')
  assert.equal(eventAction(5, 8), 'reload')
  assert.equal(eventAction(0, 1), 'apply')
  assert.equal(eventAction(0, 2), 'reload')
})
