// The table of contents: the markdown cells' headings (markdown-it reads them, so `#` in
// a code fence or setext underlines come out right), live as people edit; a click goes to
// the heading's cell. `headings` is pure: unit-tested in Node.
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
    nb.cells.observeDeep(() => { if (!this.el.hidden) { clearTimeout(this.timer); this.timer = setTimeout(() => this.render(), 100) } })
  }

  toggle (open) {
    this.el.hidden = !open
    this.button.classList.toggle('active', open)
    if (open) this.render()
  }

  render () {
    const cells = this.nb.cells.toArray().map((cell) => {
      const source = cell?.get?.('source')
      return { id: cell?.get?.('id'), cell_type: cell?.get?.('cell_type'), source: typeof source?.toString === 'function' ? source.toString() : '' }
    })
    const items = headings(cells)
    this.list.replaceChildren(...(items.length
      ? items.map((item) => h('li', { class: `level-${item.level}` },
        h('button', { class: 'link', 'data-level': item.level, onclick: () => this.nb.reveal(item.cellId) }, item.text)))
      : [h('li', { class: 'empty' }, 'No headings: add a text cell with a # heading.')]))
  }
}
