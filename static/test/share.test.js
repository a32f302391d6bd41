// share.js: the role a member works with when a share link they opened gives more.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { effectiveRole } from '../src/share.js'

const link = (role, holders, active = true) => ({ id: role, role, holders, active })

test('a live link opened by a demoted member explains the role they keep', () => {
  const member = { username: 'ben', role: 'viewer' }
  const links = [link('commenter', ['ben']), link('editor', ['ben']), link('editor', ['ann'])]
  const effective = effectiveRole(member, links)
  assert.equal(effective.role, 'editor')
  assert.deepEqual(effective.links.map((l) => l.holders), [['ben']])
})

test('ended links, links of others and lesser links change nothing', () => {
  const member = { username: 'ben', role: 'commenter' }
  const links = [link('editor', ['ben'], false), link('editor', ['ann']), link('viewer', ['ben'])]
  assert.deepEqual(effectiveRole(member, links), { role: 'commenter', links: [] })
})
