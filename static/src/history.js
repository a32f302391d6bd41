// The side panel's History tab: named and automatic versions, compare with now, download,
// restore (editors; the current state is kept as a version first).
import { api, h, toast } from './api.js'

export class HistoryTab {
  constructor (panel) { this.panel = panel }

  async render () {
    const id = this.panel.nb.info.id
    const versions = await api('GET', `/api/notebooks/${id}/versions`)
    if (this.panel.tab !== 'history') return
    const detail = h('div', { class: 'comparison' })
    const name = h('input', { placeholder: 'version name', 'aria-label': 'version name', maxlength: 100 })
    const save = h('form', { class: 'row' }, name, h('button', { type: 'submit' }, 'Save version'))
    save.addEventListener('submit', async (event) => {
      event.preventDefault()
      if (!name.value.trim()) return
      try { await api('POST', `/api/notebooks/${id}/versions`, { name: name.value }); this.render() } catch (e) { toast(e.message, 'error') }
    })
    const rows = versions.map((v) => h('li', { 'data-version': v.id },
      h('div', {}, h('strong', {}, v.name || v.kind), h('span', { class: 'muted' }, ` · ${new Date(v.created_at).toLocaleString()} · ${v.cells} cells · ${v.created_by}`)),
      h('div', { class: 'row' },
        h('button', { class: 'link', onclick: () => this.compare(v, detail) }, 'Compare with now'),
        h('a', { href: `/api/notebooks/${id}/versions/${v.id}/export`, download: '' }, 'Download'),
        this.panel.nb.canEdit ? h('button', { class: 'link', onclick: () => this.restore(v) }, 'Restore') : null)))
    this.panel.body.replaceChildren(this.panel.nb.canEdit ? save : h('span'), h('ul', { class: 'plain versions' }, ...rows), detail)
  }

  async compare (version, target) {
    const result = await api('GET', `/api/notebooks/${this.panel.nb.info.id}/versions/compare?base=${version.id}&other=current`)
    const section = (title, items, render) => items.length ? [h('h4', {}, `${title} (${items.length})`), ...items.map(render)] : []
    target.replaceChildren(h('h3', {}, `Since “${version.name || version.kind}”`),
      ...section('Added', result.added, (c) => h('pre', { class: 'added' }, c.source)),
      ...section('Removed', result.removed, (c) => h('pre', { class: 'removed' }, c.source)),
      ...section('Changed', result.changed, (c) => h('pre', { class: 'diff' }, c.diff || '(outputs changed)')),
      result.added.length + result.removed.length + result.changed.length === 0 ? h('p', {}, 'No differences.') : h('span'))
  }

  async restore (version) {
    if (!confirm(`Restore “${version.name || version.kind}”? The current state is kept as a version.`)) return
    try { await api('POST', `/api/notebooks/${this.panel.nb.info.id}/versions/${version.id}/restore`); toast('Restored'); this.render() } catch (e) { toast(e.message, 'error') }
  }
}
