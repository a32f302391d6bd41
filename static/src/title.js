// The notebook's title in the top bar: editors click it (or focus it and press Enter) to
// rename in place, Enter saves through the rename API, Esc cancels, leaving the field saves;
// everyone's page shows a rename as the events channel reports it (show).
import { api, h, toast } from './api.js'

export class NotebookTitle {
  constructor (info, canEdit) {
    this.info = info
    this.canEdit = canEdit
    this.el = h('h1', {
      class: canEdit ? 'nb-title editable' : 'nb-title',
      'data-testid': 'title',
      title: canEdit ? 'Rename' : null,
      tabindex: canEdit ? '0' : null,
      onclick: () => this.edit(),
      onkeydown: (event) => { if (event.key === 'Enter' && event.target === this.el) this.edit() }
    }, info.title)
    document.title = `${info.title} · Tandem`
  }

  get editing () { return this.el.querySelector('input') !== null }

  show (title) {
    this.info.title = title
    document.title = `${title} · Tandem`
    if (!this.editing) this.el.textContent = title
  }

  edit () {
    if (!this.canEdit || this.editing) return
    const input = h('input', { class: 'title-input', 'data-testid': 'title-input', 'aria-label': 'Notebook title', maxlength: '200', value: this.info.title })
    let done = false
    const finish = async (save) => {
      if (done) return
      done = true
      const title = input.value.trim()
      this.el.textContent = this.info.title
      if (!save || !title || title === this.info.title) return
      this.el.textContent = title
      try {
        this.show((await api('PATCH', `/api/notebooks/${encodeURIComponent(this.info.id)}`, { title })).title)
      } catch (e) {
        this.el.textContent = this.info.title
        toast(`Could not rename: ${e.message}`, 'error')
      }
    }
    input.addEventListener('keydown', (event) => {
      event.stopPropagation()
      if (event.key === 'Enter') { event.preventDefault(); finish(true) }
      else if (event.key === 'Escape') { event.preventDefault(); finish(false) }
    })
    input.addEventListener('blur', () => finish(true))
    input.addEventListener('click', (event) => event.stopPropagation())
    this.el.replaceChildren(input)
    input.focus()
    input.select()
  }
}
