// The table of contents: the markdown cells' headings (markdown-it reads them, so `#` in
// a code fence or setext underlines come out right), live as people edit; a click goes to
// the heading's cell. Also the cells a collapsed heading hides. `headings` and
// `hiddenBySections` are pure: unit-tested in Node.
import MarkdownIt from 'markdown-it'
import { h } from './api.js'

const md = new MarkdownIt({ html: true })

// The heading's text as a reader sees it: inline markup (emphasis, code, links) dropped.
function inlineText (token) {
  return (token.children ?? []).map((child) => (child.type === 'text' || child.type === 'code_inline' ? child.content : child.type === 'softbreak' ? ' ' : '')).join('').trim()
}

// [{ cellId, index, level, text }] for cells given as { id, cell_type, source }.
export function headings (cells) {
  const found = []
  cells.forEach((cell, index) => {
    if (cell?.cell_type !== 'markdown' || typeof cell.source !== 'string') return
    const tokens = md.parse(cell.source, {})
    tokens.forEach((token, at) => {
      if (token.type !== 'heading_open') return
      const text = inlineText(tokens[at + 1])
      if (text) found.push({ cellId: cell.id, index, level: Number(token.tag.slice(1)), text })
    })
  })
  return found
}

// The indexes of the cells a collapsed heading hides: those after it up to the next
// heading of its level or above (a cell's level is its first heading's). Cells are given
// as { cell_type, source, collapsed }; `collapsed` is the heading cell's
// `metadata.heading_collapsed`, where Jupyter's collapsible headings keep it.
export function hiddenBySections (cells) {
  const hidden = []
  let under = null // the level of the collapsed heading being hidden under
  cells.forEach((cell, index) => {
    const level = cell?.cell_type === 'markdown' && typeof cell.source === 'string' ? headingLevel(cell.source) : null
    if (under !== null && (level === null || level > under)) { hidden.push(index); return }
    under = level !== null && cell.collapsed ? level : null
  })
  return hidden
}

function headingLevel (source) {
  const open = md.parse(source, {}).find((token) => token.type === 'heading_open')
  return open ? Number(open.tag.slice(1)) : null
}

// Whether a batch of `cells.observeDeep` events touches what headings, sections and find
// read (cells, their type, source or metadata), not only outputs or run states: those
// stream in while a cell runs and need no new look at every markdown cell.
const RUN_KEYS = new Set(['outputs', 'execution_state', 'execution_count'])
export function touchesSources (events) {
  return events.some((event) => {
    if (event.path.length === 0) return true
    if (event.path.length === 1) return [...(event.keysChanged ?? [])].some((key) => !RUN_KEYS.has(key))
    return !RUN_KEYS.has(event.path[1])
  })
}

export class Outline {
  constructor (nb) {
    this.nb = nb
    this.list = h('ol', { class: 'outline-list', 'data-testid': 'outline' })
    this.el = h('nav', { class: 'outline', hidden: true, 'aria-label': 'Table of contents' },
      h('div', { class: 'outline-head' }, h('strong', {}, 'Contents'), h('button', { class: 'close', title: 'Close', onclick: () => this.toggle(false) }, '✕')),
      this.list)
    this.button = h('button', { 'data-testid': 'open-outline', onclick: () => this.toggle(this.el.hidden) }, 'Contents')
    const workspace = nb.list.closest('.workspace')
    workspace?.prepend(this.el)
    workspace?.parentNode.querySelector('[data-testid="open-comments"]')?.before(this.button)
    this.opened = new Set() // sections a reader opened for themselves
    nb.cells.observeDeep((events) => {
      if (!touchesSources(events)) return
      clearTimeout(this.timer)
      this.timer = setTimeout(() => { this.hideSections(); if (!this.el.hidden) this.render() }, 50)
    })
  }

  cellsAsJSON () {
    return this.nb.cells.toArray().map((cell) => {
      const source = cell?.get?.('source')
      const metadata = cell?.get?.('metadata')
      const collapsed = typeof metadata?.get === 'function' ? metadata.get('heading_collapsed') : metadata?.heading_collapsed
      const id = cell?.get?.('id')
      return { id, cell_type: cell?.get?.('cell_type'), source: typeof source?.toString === 'function' ? source.toString() : '', collapsed: collapsed === true && !this.opened.has(id) }
    })
  }

  // Cells under a collapsed heading are not drawn (they are still in the document).
  hideSections () {
    const hidden = new Set(hiddenBySections(this.cellsAsJSON()))
    this.nb.cells.toArray().forEach((item, index) => this.nb.views.get(item)?.el.classList.toggle('section-hidden', hidden.has(index)))
  }

  // A reader's own "show this section" (an editor writes the metadata instead).
  openSection (id, open) {
    if (open) this.opened.add(id)
    else this.opened.delete(id)
    this.hideSections()
  }

  toggle (open) {
    this.el.hidden = !open
    this.button.classList.toggle('active', open)
    if (open) this.render()
  }

  render () {
    const items = headings(this.cellsAsJSON())
    this.list.replaceChildren(...(items.length
      ? items.map((item) => h('li', { class: `level-${item.level}` },
        h('button', { class: 'link', 'data-level': item.level, onclick: () => this.nb.reveal(item.cellId) }, item.text)))
      : [h('li', { class: 'empty' }, 'No headings: add a text cell with a # heading.')]))
  }
}
