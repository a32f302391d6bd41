// Several cells selected at once in command mode (Shift+↑/↓, Shift+click), as in
// JupyterLab, and what acts on them: copy, cut, paste, delete, merge, run, move. A
// selection is an anchor and a head, held as cell ids so that it survives others adding
// and removing cells; the span between them is computed when used.
import { cellFromJSON, load, store } from './clipboard.js'

// The origin of these edits: the notebook's cell undo (Z) tracks it, so a cut or a paste
// of many cells comes back in one step, and only its author's.
export const CELL_TOOLS = 'tandem-cell-tools'

// [lo, hi] (indexes into `ids`) between anchor and head, or null when the head is gone;
// an anchor that is gone leaves the head alone.
export function span (ids, anchor, head) {
  const h = ids.indexOf(head)
  if (h < 0) return null
  const a = ids.indexOf(anchor)
  return a < 0 ? [h, h] : [Math.min(a, h), Math.max(a, h)]
}

// The id the head moves to with Shift+↑ (-1) or Shift+↓ (+1): it stops at either end.
export function extendHead (ids, head, delta) {
  const at = ids.indexOf(head)
  if (at < 0) return head
  return ids[Math.max(0, Math.min(ids.length - 1, at + delta))]
}

// Where a block [lo, hi] starts after moving it by `delta`, or null when it cannot move.
export function movedStart (lo, hi, delta, length) {
  const start = lo + delta
  return start < 0 || hi + delta >= length ? null : start
}

export class CellSelection {
  constructor (nb) {
    this.nb = nb
    this.anchor = null
    this.head = null
    this.extending = false
    nb.cellUndo.addTrackedOrigin(CELL_TOOLS)
    nb.list.addEventListener('focusin', (event) => {
      const cell = event.target.closest?.('section.cell')
      if (!cell?.dataset.cellId || this.extending) return
      this.anchor = this.head = cell.dataset.cellId
      this.paint()
    })
    // Shift+click on another cell extends the selection to it (not the editor's text).
    nb.list.addEventListener('mousedown', (event) => {
      const cell = event.target.closest?.('section.cell')
      if (!event.shiftKey || !cell || !this.head || cell.contains(document.querySelector('.cm-focused'))) return
      event.preventDefault()
      this.select(this.anchor, cell.dataset.cellId)
    }, true)
    nb.cells.observe(() => this.paint())
  }

  ids () { return this.nb.cells.toArray().map((cell) => cell?.get?.('id')) }

  // [lo, hi] now; the selected cell alone when there is no wider selection.
  range () {
    const ids = this.ids()
    const found = span(ids, this.anchor, this.head)
    if (found) return found
    const at = this.nb.current ? this.nb.indexOf(this.nb.current) : -1
    return at < 0 ? null : [at, at]
  }

  views () {
    const range = this.range()
    if (!range) return []
    return this.nb.cells.toArray().slice(range[0], range[1] + 1).map((item) => this.nb.views.get(item)).filter(Boolean)
  }

  // Anchor and head by id; the head's cell takes the focus (command mode).
  select (anchor, head) {
    this.anchor = anchor
    this.head = head
    const view = [...this.nb.views.values()].find((v) => v.id === head)
    this.extending = true
    try { view?.el.focus() } finally { this.extending = false }
    this.paint()
  }

  extend (delta) {
    if (!this.head) return
    this.select(this.anchor ?? this.head, extendHead(this.ids(), this.head, delta))
  }

  paint () {
    const ids = this.ids()
    const found = span(ids, this.anchor, this.head)
    const wide = found && found[1] > found[0]
    const items = this.nb.cells.toArray()
    for (const view of this.nb.views.values()) {
      const at = items.indexOf(view.ymap)
      view.el.classList.toggle('selected', Boolean(wide) && at >= found[0] && at <= found[1])
    }
  }

  // --- what acts on the selection ------------------------------------------------------

  copy () {
    const cells = this.views().map((view) => view.ymap.toJSON())
    if (!cells.length) return false
    try {
      store(this.nb.me.id, cells)
    } catch {
      return false // over the browser's storage quota (huge outputs): nothing is lost
    }
    return true
  }

  cut () {
    if (this.nb.canEdit && this.copy()) this.remove()
  }

  paste (above) {
    const cells = load(this.nb.me.id)
    const range = this.range()
    if (!this.nb.canEdit || !cells.length) return
    const at = range ? (above ? range[0] : range[1] + 1) : this.nb.cells.length
    const made = cells.map((json) => cellFromJSON(json))
    this.nb.doc.transact(() => this.nb.cells.insert(at, made), CELL_TOOLS)
    this.select(made[0].get('id'), made[made.length - 1].get('id'))
  }

  remove () {
    const range = this.range()
    if (!this.nb.canEdit || !range) return
    this.nb.doc.transact(() => this.nb.cells.delete(range[0], range[1] - range[0] + 1), CELL_TOOLS)
    const next = this.nb.viewAt(Math.min(range[0], this.nb.cells.length - 1))
    if (next) this.select(next.id, next.id)
  }

  // Shift+M: the selected cells become the first of them; one cell merges with the next.
  merge () {
    const views = this.views()
    if (!this.nb.canEdit || !views.length) return
    if (views.length === 1) { this.nb.mergeBelow(views[0]); return }
    const [first, ...rest] = views
    const range = this.range()
    const text = rest.map((view) => view.ytext.toString()).join('\n')
    this.nb.doc.transact(() => {
      first.ytext.insert(first.ytext.length, (first.ytext.length ? '\n' : '') + text)
      this.nb.cells.delete(range[0] + 1, range[1] - range[0])
    }, CELL_TOOLS)
    this.select(first.id, first.id)
  }

  // Ctrl+Enter runs the selected cells; Shift+Enter then selects the cell after them.
  run (advance) {
    const views = this.views()
    if (!views.length) return
    if (advance && views.length === 1) { this.nb.runAndAdvance(views[0], false, { edit: false }); return }
    this.nb.run(views.filter((view) => view.type === 'code').map((view) => view.id))
    if (!advance) return
    const after = this.range()[1] + 1
    if (after < this.nb.cells.length) {
      const next = this.nb.viewAt(after)
      this.select(next.id, next.id)
    } else {
      this.nb.insertAt(after, 'code', { edit: false })
    }
  }

  // The selected block one cell up (-1) or down (+1), in one transaction; cells keep
  // their ids (Yjs has no move: they go out and copies come in).
  move (delta) {
    const range = this.range()
    if (!this.nb.canEdit || !range) return
    const start = movedStart(range[0], range[1], delta, this.nb.cells.length)
    if (start === null) return
    const cells = this.nb.cells.toArray().slice(range[0], range[1] + 1).map((item) => item.toJSON())
    const anchor = this.anchor ?? cells[0].id
    const head = this.head ?? cells[cells.length - 1].id
    this.nb.doc.transact(() => {
      this.nb.cells.delete(range[0], cells.length)
      this.nb.cells.insert(start, cells.map((json) => cellFromJSON(json, json.id)))
    }, CELL_TOOLS)
    this.select(anchor, head)
  }
}
