// Pure helpers for comments: @mentions in a comment's text, and the ranges of commented
// text in a cell (the API counts characters, CodeMirror UTF-16 units).

// The same rule as the server's (server/comments/service.py): a name ends on a letter, a
// digit or "_", and is not preceded by a word character or "@" (an e-mail address).
const MENTION = /(?<![\w@])@([A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?)/g

// `text` cut into strings and { mention: name } for each @name that is in `names`.
export function mentionParts (text, names) {
  const known = new Set(names)
  const parts = []
  let last = 0
  for (const match of text.matchAll(MENTION)) {
    if (!known.has(match[1])) continue
    if (match.index > last) parts.push(text.slice(last, match.index))
    parts.push({ mention: match[1] })
    last = match.index + match[0].length
  }
  if (last < text.length) parts.push(text.slice(last))
  return parts
}

// UTF-16 offset of the `points`-th code point of `text`.
export function fromCodePoints (text, points) {
  let offset = 0
  for (const char of text) {
    if (points-- <= 0) break
    offset += char.length
  }
  return offset
}

// The open threads of `cellId` anchored to a non-empty range, as UTF-16 ranges of `text`.
export function threadRanges (text, threads, cellId) {
  const ranges = []
  for (const thread of threads) {
    if (thread.cell_id !== cellId || thread.resolved || thread.orphaned || !thread.anchor) continue
    const from = fromCodePoints(text, thread.anchor.start)
    const to = Math.min(fromCodePoints(text, thread.anchor.end), text.length)
    if (to > from) ranges.push({ from, to, id: thread.id })
  }
  return ranges.sort((a, b) => a.from - b.from || a.to - b.to)
}
