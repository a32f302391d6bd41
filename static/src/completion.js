// The pure parts of Tab completion and Shift+Tab inspection: the kernel counts positions in
// code points (Python's str), CodeMirror in UTF-16 units; what Tab does where the cursor is;
// and the word completion used when the kernel cannot answer. No DOM, no CodeMirror: the
// editor wires these up in cell.js, and tests run them under Node.

const IDENTIFIER_CHAR = /[\p{L}\p{N}_]/u
const WORD = /[\p{L}_][\p{L}\p{N}_]*/gu

// A UTF-16 offset into `text` as a count of code points (a surrogate pair counts once).
export function toCodePoints (text, offset) {
  return [...text.slice(0, offset)].length
}

// A count of code points into `text` as a UTF-16 offset, clamped to the text.
export function toUtf16 (text, points) {
  let offset = 0
  let seen = 0
  for (const char of text) {
    if (seen >= points) break
    offset += char.length
    seen += 1
  }
  return offset
}

// What Tab (or Shift+Tab) does with `before`, the line's text before the cursor, and
// whether something is selected: right after an identifier character (or a dot, as in
// `os.`) it asks the kernel; at the line start, after whitespace or over a selection it
// keeps indenting (or dedenting).
export function tabAction (before, selected = false) {
  if (selected || before === '') return 'indent'
  const last = [...before].pop()
  return IDENTIFIER_CHAR.test(last) || last === '.' ? 'complete' : 'indent'
}

// Shift+Tab inspects only right after an identifier character.
export function inspectAt (before, selected = false) {
  if (selected || before === '') return false
  return IDENTIFIER_CHAR.test([...before].pop())
}

// The identifier being typed at the end of `before` (maybe empty).
export function wordBefore (before) {
  const match = /[\p{L}\p{N}_]*$/u.exec(before)
  return match ? match[0] : ''
}

// Words from `texts` (the notebook's cells) that start with `prefix` and are longer than
// it, each once, in order of first appearance.
export function wordMatches (texts, prefix) {
  const seen = new Set()
  for (const text of texts) {
    for (const [word] of String(text).matchAll(WORD)) {
      if (word.length > prefix.length && word.startsWith(prefix)) seen.add(word)
    }
  }
  return [...seen]
}

// The kernel's reply to /complete as UTF-16 `from`/`to` in `code` and options
// `{label, detail}`; null when it has nothing to offer (then words are the fallback).
export function kernelOptions (code, reply) {
  if (!reply || reply.status !== 'ok' || !Array.isArray(reply.matches) || reply.matches.length === 0) return null
  const types = Array.isArray(reply.types) ? reply.types : []
  return {
    from: toUtf16(code, reply.cursor_start),
    to: toUtf16(code, reply.cursor_end),
    options: reply.matches.map((label, i) => (types[i] ? { label, detail: types[i] } : { label }))
  }
}
