// Find and replace over the notebook's cell sources: what matches a query, and the edits
// a replacement makes. Pure (strings in, numbers and strings out): unit-tested in Node.
// Positions count UTF-16 units, as Y.Text, CodeMirror and JavaScript's RegExp all do.

const ESCAPE = /[.*+?^${}()|[\]\\]/g

// The query as a global RegExp, or null for an empty query; an invalid regular expression
// throws a SyntaxError whose message the find bar shows.
export function compile (query, { caseSensitive = false, wholeWord = false, regex = false } = {}) {
  if (!query) return null
  let source = regex ? query : query.replace(ESCAPE, '\\$&')
  // A word is letters, digits and underscores in any script, as an identifier is.
  if (wholeWord) source = `(?<![\\p{L}\\p{N}_])(?:${source})(?![\\p{L}\\p{N}_])`
  return new RegExp(source, 'gmu' + (caseSensitive ? '' : 'i'))
}

// Every non-empty match of `re` in `text`, in order: [{ from, to }].
export function findMatches (text, re) {
  if (!re) return []
  const found = []
  const scan = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g')
  let match
  while ((match = scan.exec(text)) !== null) {
    if (match[0].length === 0) {
      // An empty match (`^`, `a*`) is nothing to show or replace: step over it, a whole
      // code point at a time so that the `u` flag never lands inside a surrogate pair.
      scan.lastIndex += text.codePointAt(scan.lastIndex) > 0xffff ? 2 : 1
      continue
    }
    found.push({ from: match.index, to: match.index + match[0].length })
    if (found.length >= 100000) break // a pathological query on a huge notebook
  }
  return found
}

// What replaces the match of `re` that starts at `from` in `text` (with `$1`, `$<name>`,
// `$&` expanded as String.replace does, for a regular expression), or null when no match
// starts there any more: the text changed under it.
export function replacementAt (text, re, from, replacement, { regex = false } = {}) {
  const sticky = new RegExp(re.source, re.flags.replace('g', '') + 'y')
  sticky.lastIndex = from
  const match = sticky.exec(text)
  if (!match || match[0].length === 0) return null
  const to = from + match[0].length
  sticky.lastIndex = from
  let insert = replacement
  if (regex) {
    // The text after the match is left as it was, so what lies between is the expansion.
    const replaced = text.replace(sticky, replacement)
    insert = replaced.slice(from, replaced.length - (text.length - to))
  }
  return { from, to, insert }
}

// The smallest edit that turns text[from, to) into `insert`: the part they share at either
// end is kept, so a cursor or a concurrent insertion there stays where it was.
export function minimalEdit (text, { from, to, insert }) {
  const old = text.slice(from, to)
  let start = 0
  while (start < old.length && start < insert.length && old[start] === insert[start]) start++
  let end = 0
  while (end < old.length - start && end < insert.length - start && old[old.length - 1 - end] === insert[insert.length - 1 - end]) end++
  return { from: from + start, to: to - end, insert: insert.slice(start, insert.length - end) }
}

// The edits that replace every match in `text`, last first (so each one's positions hold
// when applied in order), each as small as minimalEdit makes it.
export function replaceAllEdits (text, re, replacement, options = {}) {
  return findMatches(text, re)
    .map((m) => replacementAt(text, re, m.from, replacement, options))
    .filter((edit) => edit !== null)
    .map((edit) => minimalEdit(text, edit))
    .filter((edit) => edit.to > edit.from || edit.insert.length > 0)
    .reverse()
}

// The index in `matches` (sorted by cell, then position) of the first at or after
// (cell, pos): where "next" goes after the notebook changed. -1 when there are none.
export function nextIndex (matches, cell, pos) {
  if (!matches.length) return -1
  const at = matches.findIndex((m) => m.cell > cell || (m.cell === cell && m.from >= pos))
  return at < 0 ? 0 : at
}

// "3 of 17", "0 of 0" or "no results".
export function countText (index, total) {
  return total === 0 ? 'no results' : `${index + 1} of ${total}`
}
