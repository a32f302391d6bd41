// Collapsed inputs and outputs, stored as JupyterLab stores them, in the cell's
// `metadata.jupyter.source_hidden` / `outputs_hidden`: shared with everyone and kept in
// the exported .ipynb. A click on the collapsed bar shows the part again.
import * as Y from 'yjs'
import { h } from './api.js'

const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value)
const plain = (value) => (value instanceof Y.AbstractType ? value.toJSON() : value)

// { source, outputs, section }: what a cell's metadata (as JSON) hides; `section` is a
// heading's collapsed section, kept where Jupyter's collapsible headings keep it.
export function hiddenParts (metadata) {
  const jupyter = isObject(metadata) && isObject(metadata.jupyter) ? metadata.jupyter : {}
  return { source: jupyter.source_hidden === true, outputs: jupyter.outputs_hidden === true, section: isObject(metadata) && metadata.heading_collapsed === true }
}

// The `jupyter` metadata with `key` set to `hidden` (false is written as no key, as
// JupyterLab does), or undefined when nothing is left in it.
export function withHidden (jupyter, key, hidden) {
  const next = { ...(isObject(jupyter) ? jupyter : {}) }
  if (hidden) next[key] = true
  else delete next[key]
  return Object.keys(next).length ? next : undefined
}

// The collapsers of one cell view: two bars, two toolbar buttons (editors), and the
// cell's classes kept in step with its metadata.
export class CellCollapse {
  constructor (view) {
    this.view = view
    this.shown = { source: false, outputs: false, section: false } // a reader's own "show anyway"
    const bar = (part, label) => h('button', { class: `collapsed-bar collapsed-${part}`, hidden: true, title: 'Show', 'data-testid': `collapsed-${part}`, onclick: () => this.set(part, false) }, label)
    this.inputBar = bar('source', '⋯ input hidden')
    this.outputBar = bar('outputs', '⋯ output hidden')
    this.sectionBar = bar('section', '⋯ section collapsed')
    view.host.before(this.inputBar)
    view.outputs.before(this.outputBar)
    view.outputs.after(this.sectionBar)
    if (view.nb.canEdit) {
      view.tools.append(
        h('button', { title: 'Collapse input', 'data-testid': 'collapse-input', onclick: () => this.set('source', true) }, '⇡'),
        h('button', { title: 'Collapse output', 'data-testid': 'collapse-output', onclick: () => this.set('outputs', true) }, '⇣'),
        h('button', { title: 'Collapse the section under this heading', class: 'collapse-section', 'data-testid': 'collapse-section', onclick: () => this.set('section', true) }, '▾'))
    }
    this.onChange = (events) => {
      if (events.some((e) => (e.target === view.ymap ? e.keysChanged.has('metadata') : e.path[0] === 'metadata'))) this.paint()
    }
    view.ymap.observeDeep(this.onChange)
    this.paint()
  }

  metadata () { return plain(this.view.ymap.get('metadata')) }

  paint () {
    const hidden = hiddenParts(this.metadata())
    const source = hidden.source && !this.shown.source
    const outputs = hidden.outputs && !this.shown.outputs && this.view.type === 'code'
    this.view.el.classList.toggle('source-hidden', source)
    this.view.el.classList.toggle('outputs-hidden', outputs)
    this.inputBar.hidden = !source
    this.outputBar.hidden = !outputs
    this.sectionBar.hidden = !(hidden.section && !this.shown.section && this.view.type === 'markdown')
  }

  // An editor writes it for everyone; anyone else only changes their own view.
  set (part, hidden) {
    const nb = this.view.nb
    if (!nb.canEdit) {
      this.shown[part] = !hidden
      if (part === 'section') nb.outline?.openSection(this.view.id, !hidden)
      this.paint()
      return
    }
    this.shown[part] = false
    const ymap = this.view.ymap
    let metadata = ymap.get('metadata')
    const [key, value] = part === 'section'
      ? ['heading_collapsed', hidden || undefined]
      : ['jupyter', withHidden(plain(metadata instanceof Y.Map ? metadata.get('jupyter') : metadata?.jupyter), part === 'source' ? 'source_hidden' : 'outputs_hidden', hidden)]
    nb.doc.transact(() => {
      if (!(metadata instanceof Y.Map)) {
        metadata = new Y.Map(Object.entries(isObject(metadata) ? metadata : {}))
        ymap.set('metadata', metadata)
      }
      if (value === undefined) metadata.delete(key)
      else metadata.set(key, value)
    })
    this.paint()
  }

  destroy () { this.view.ymap.unobserveDeep(this.onChange) }
}
