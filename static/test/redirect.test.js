// redirect.js: after signing in, only same-origin pages.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { sameOriginTarget } from '../src/redirect.js'

const origin = 'https://tandem.example'

test('same-origin paths are kept whole', () => {
  assert.equal(sameOriginTarget('/n/abc?x=1#c', origin), 'https://tandem.example/n/abc?x=1#c')
})

test('other hosts, schemes and tricks go home', () => {
  for (const next of ['//evil.example', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '\t//evil.example', '', null, 42]) {
    const target = sameOriginTarget(next, origin)
    assert.equal(new URL(target).origin, origin, String(next))
  }
  // `/.//evil` keeps our origin: the whole URL is returned, never the bare path `//evil`.
  assert.equal(sameOriginTarget('/.//evil', origin), 'https://tandem.example//evil')
})
