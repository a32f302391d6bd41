// The notebook's find bar (Ctrl+F while the focus is in the notebook): matches in every
// cell's source highlighted, "3 of 17", next and previous across cells, and for editors
// Replace and Replace all as small Y.Text edits made against the text as it is then.
import * as Y from 'yjs'
import { EditorView, Decoration } from '@codemirror/view'
import { StateEffect, StateField } from '@codemirror/state'
import { h } from './api.js'
import { touchesSources } from './outline.js'
import { compile, countText, findMatches, nextIndex, replaceAllEdits, replacementAt, minimalEdit } from './find.js'

// The origin of replacements: tracked by the notebook's cell undo (Z in command mode), so
// a Replace all comes back in one step, and only the replacer's.
export const FIND = 'tandem-find'

// What every editor highlights: the notebook's query (one find bar per page) and, in the
// editor holding it, the current match.
let active = null
const setFind = StateEffect.define()

function decorate (doc, re, current) {
  const text = doc.toString()
  const marks = findMatches(text, re).map((m) => (current && current.from === m.from && current.to === m.to ? currentMark : matchMark).range(m.from, m.to))
  return Decoration.set(marks)
}
const matchMark = Decoration.mark({ class: 'find-match' })
const currentMark = Decoration.mark({ class: 'find-match find-current' })

export const findHighlight = StateField.define({
  create: (state) => ({ re: active, current: null, marks: decorate(state.doc, active, null) }),
  update (value, tr) {
    let { re, current } = value
    let changed = tr.docChanged
    for (const effect of tr.effects) {
      if (effect.is(setFind)) { ({ re, current } = effect.value); changed = true }
    }
    if (!changed) return value
    if (current && tr.docChanged) current = { from: tr.changes.mapPos(current.from, 1), to: tr.changes.mapPos(current.to, -1) }
    return { re, current, marks: decorate(tr.state.doc, re, current) }
  },
  provide: (field) => EditorView.decorations.from(field, (value) => value.marks)
})

const sourceOf = (ymap) => (ymap instanceof Y.Map && ymap.get('source') instanceof Y.Text ? ymap.get('source') : null)

export class FindBar {
  constructor (nb) {
    this.nb = nb
    this.re = null
    this.matches = [] // { cell (index), ymap, from, to }
    this.index = -1
    this.anchor = null // the current match: { ymap, pos: a Y.RelativePosition }
    this.opened = new Set() // markdown cells shown as source to reveal a match
    this.input = h('input', { type: 'search', placeholder: 'Find', 'aria-label': 'find', 'data-testid': 'find-input', oninput: () => this.search(true) })
    this.input.addEventListener('keydown', (event) => this.key(event))
    const option = (label, title, testid) => {
      const box = h('input', { type: 'checkbox', 'data-testid': testid, onchange: () => this.search(true) })
      return [box, h('label', { class: 'find-option', title }, box, label)]
    }
    ;[this.caseBox, this.caseLabel] = option('Aa', 'Match case', 'find-case')
    ;[this.wordBox, this.wordLabel] = option('W', 'Whole word', 'find-word')
    ;[this.regexBox, this.regexLabel] = option('.*', 'Regular expression', 'find-regex')
    this.count = h('span', { class: 'find-count', 'data-testid': 'find-count', role: 'status' })
    const row = h('div', { class: 'row' }, this.input, this.caseLabel, this.wordLabel, this.regexLabel, this.count,
      h('button', { title: 'Previous (Shift+Enter)', onclick: () => this.step(-1) }, '↑'),
      h('button', { title: 'Next (Enter)', onclick: () => this.step(1) }, '↓'),
      h('button', { title: 'Close (Esc)', onclick: () => this.close() }, '✕'))
    this.el = h('div', { class: 'find-bar', hidden: true, 'data-testid': 'find-bar' }, row)
    if (nb.canEdit) {
      this.replacement = h('input', { placeholder: 'Replace', 'aria-label': 'replace', 'data-testid': 'replace-input' })
      this.replacement.addEventListener('keydown', (event) => {
        if (event.key === 'Enter') { event.preventDefault(); this.replaceOne() }
      })
      this.el.append(h('div', { class: 'row' }, this.replacement,
        h('button', { onclick: () => this.replaceOne(), 'data-testid': 'replace-one' }, 'Replace'),
        h('button', { onclick: () => this.replaceAll(), 'data-testid': 'replace-all' }, 'Replace all')))
      nb.cellUndo.addTrackedOrigin(FIND)
    }
    // Esc anywhere in the bar (its inputs, its buttons) closes it.
    this.el.addEventListener('keydown', (event) => { if (event.key === 'Escape') { event.preventDefault(); this.close() } })
    nb.list.before(this.el)
    this.refreshSoon = () => { clearTimeout(this.timer); this.timer = setTimeout(() => this.search(false), 60) }
    nb.cells.observeDeep((events) => { if (!this.el.hidden && touchesSources(events)) this.refreshSoon() })
    // Capturing, so that it comes before CodeMirror's own search panel in an editor.
    document.addEventListener('keydown', (event) => {
      if (!(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey || event.key.toLowerCase() !== 'f') return
      const at = document.activeElement
      if (!(at === document.body || nb.list.contains(at) || this.el.contains(at))) return
      event.preventDefault()
      event.stopPropagation()
      this.open()
    }, true)
  }

  open () {
    this.returnTo = this.nb.list.contains(document.activeElement) ? document.activeElement : null
    const selected = this.nb.current?.view?.state
    const text = selected ? selected.sliceDoc(selected.selection.main.from, selected.selection.main.to) : ''
    if (text && !text.includes('\n')) this.input.value = text
    this.el.hidden = false
    this.input.focus()
    this.input.select()
    this.search(true)
  }

  close () {
    this.el.hidden = true
    this.re = null
    this.matches = []
    this.anchor = null
    this.paint()
    // Markdown opened only to show a match is drawn again, unless it is being edited.
    for (const view of this.opened) if (!view.el.contains(document.activeElement)) view.doneEditingMarkdown()
    this.opened.clear()
    const back = this.returnTo ?? this.nb.current?.el
    back?.focus()
  }

  key (event) {
    if (event.key === 'Enter') { event.preventDefault(); this.step(event.shiftKey ? -1 : 1) }
  }

  get options () { return { caseSensitive: this.caseBox.checked, wholeWord: this.wordBox.checked, regex: this.regexBox.checked } }

  // Matches again, over the notebook as it is now; the current one stays the one at (or
  // after) the anchor. `fresh`: the query changed, so start from the selected cell.
  search (fresh) {
    try {
      this.re = compile(this.input.value, this.options)
      this.input.removeAttribute('aria-invalid')
    } catch (error) {
      this.re = null
      this.input.setAttribute('aria-invalid', 'true')
    }
    const items = this.nb.cells.toArray()
    this.matches = []
    items.forEach((ymap, cell) => {
      const ytext = sourceOf(ymap)
      if (ytext) for (const m of findMatches(ytext.toString(), this.re)) this.matches.push({ cell, ymap, ...m })
    })
    const anchor = this.anchorPosition(items)
    const start = fresh ? { cell: Math.max(0, this.nb.current ? items.indexOf(this.nb.current.ymap) : 0), pos: 0 } : anchor
    this.index = start ? nextIndex(this.matches, start.cell, start.pos) : (this.matches.length ? 0 : -1)
    this.setAnchor()
    this.paint()
    if (fresh && this.index >= 0) this.reveal()
  }

  anchorPosition (items) {
    if (!this.anchor) return null
    const cell = items.indexOf(this.anchor.ymap)
    const abs = Y.createAbsolutePositionFromRelativePosition(this.anchor.pos, this.nb.doc)
    return cell < 0 || !abs ? null : { cell, pos: abs.index }
  }

  setAnchor () {
    const m = this.matches[this.index]
    this.anchor = m ? { ymap: m.ymap, pos: Y.createRelativePositionFromTypeIndex(sourceOf(m.ymap), m.from) } : null
  }

  step (delta) {
    if (!this.matches.length) { this.search(true); return }
    this.index = (this.index + delta + this.matches.length) % this.matches.length
    this.setAnchor()
    this.paint()
    this.reveal()
  }

  // The count, every mounted editor's highlights, and the cells holding matches.
  paint () {
    const total = this.matches.length
    this.count.textContent = this.re ? countText(this.index, total) : ''
    const current = this.matches[this.index]
    const withMatches = new Set(this.matches.map((m) => m.ymap))
    for (const view of this.nb.views.values()) {
      view.el.classList.toggle('find-hit', withMatches.has(view.ymap))
      view.el.classList.toggle('find-current-cell', current?.ymap === view.ymap)
      view.view?.dispatch({ effects: setFind.of({ re: this.re, current: current?.ymap === view.ymap ? { from: current.from, to: current.to } : null }) })
    }
    active = this.re
  }

  // The current match in view: its cell's editor made (markdown shown as source to an
  // editor, as JupyterLab does), scrolled to, the focus left in the find bar.
  reveal () {
    const m = this.matches[this.index]
    const view = m && this.nb.views.get(m.ymap)
    if (!view) return
    if (view.type === 'markdown' && this.nb.canEdit && !view.editingMarkdown) {
      view.editingMarkdown = true
      view.refresh()
      this.opened.add(view)
    }
    view.mount()
    this.paint()
    view.el.scrollIntoView({ block: 'center' })
    view.view?.dispatch({ effects: EditorView.scrollIntoView(m.from, { y: 'center' }) })
  }

  // --- replacing (editors only; the server refuses anyone else's edit anyway) ---------

  replaceOne () {
    if (!this.nb.canEdit || !this.re) return
    const m = this.matches[this.index]
    if (!m) return
    const ytext = sourceOf(m.ymap)
    const items = this.nb.cells.toArray()
    const at = this.anchorPosition(items)
    const text = ytext?.toString() ?? ''
    const edit = at && replacementAt(text, this.re, at.pos, this.replacement.value, this.options)
    if (!edit) { this.search(false); return } // it changed under us: show what is there now
    const small = minimalEdit(text, edit)
    this.nb.doc.transact(() => {
      if (small.to > small.from) ytext.delete(small.from, small.to - small.from)
      if (small.insert) ytext.insert(small.from, small.insert)
    }, FIND)
    // Go on from just after the replacement.
    this.anchor = { ymap: m.ymap, pos: Y.createRelativePositionFromTypeIndex(ytext, edit.from + edit.insert.length) }
    this.search(false)
    this.reveal()
  }

  replaceAll () {
    if (!this.nb.canEdit || !this.re) return
    const replacement = this.replacement.value
    let total = 0
    // One transaction: the others see one change, and Z takes it all back.
    this.nb.doc.transact(() => {
      for (const ymap of this.nb.cells.toArray()) {
        const ytext = sourceOf(ymap)
        if (!ytext) continue
        for (const edit of replaceAllEdits(ytext.toString(), this.re, replacement, this.options)) {
          if (edit.to > edit.from) ytext.delete(edit.from, edit.to - edit.from)
          if (edit.insert) ytext.insert(edit.from, edit.insert)
          total++
        }
      }
    }, FIND)
    this.search(false)
    this.count.textContent = `${total} replaced`
  }
}
