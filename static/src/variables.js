// The variable inspector (a side-panel tab, editors only): the kernel's user variables from
// POST .../variables, refreshed after each run while the tab is open and on demand. The
// server checks the role (it runs code in the kernel); the tab is only left out for others.
import { api, h } from './api.js'

// "1.2 KB", "3.4 MB"; '' when unknown.
export function bytes (size) {
  if (!Number.isFinite(size)) return ''
  const units = ['B', 'KB', 'MB', 'GB', 'TB']
  let value = size
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`
}

// What a reply says in words, when it lists nothing to show.
export function replyNote (reply) {
  if (reply.status === 'busy') return 'The kernel is busy: the list refreshes when the cell ends.'
  if (reply.status === 'error') return 'The kernel could not list its variables.'
  if (!reply.variables.length) return 'No variables yet.'
  return reply.truncated ? 'Some variables are not shown (too many, or too slow to describe).' : ''
}

export class VariablesPanel {
  constructor (notebook) {
    this.nb = notebook
    this.el = h('div', { class: 'variables', 'data-testid': 'variables' })
    this.loading = null
  }

  show () {
    this.refresh()
    return this.el
  }

  async refresh () {
    if (this.loading) return this.loading
    this.loading = this.load().finally(() => { this.loading = null })
    return this.loading
  }

  async load () {
    let reply
    try {
      reply = await api('POST', `/api/notebooks/${encodeURIComponent(this.nb.info.id)}/variables`)
    } catch (error) {
      if (!error.status) throw error
      const note = error.status === 409 ? 'No kernel runs: run a cell to see its variables.' : `No variables: ${error.message}`
      return this.draw([], note)
    }
    this.draw(reply.variables, replyNote(reply))
  }

  draw (variables, note) {
    const refresh = h('button', { class: 'link', 'data-testid': 'variables-refresh', onclick: () => this.refresh() }, 'Refresh')
    const rows = variables.map((v) => h('tr', { 'data-name': v.name },
      h('td', { class: 'name' }, v.name),
      h('td', { class: 'type' }, v.type),
      h('td', { class: 'shape' }, v.shape),
      h('td', { class: 'size' }, bytes(v.size_bytes ?? NaN)),
      h('td', { class: 'repr' }, h('code', {}, v.repr))))
    const table = rows.length
      ? h('table', { class: 'variables-table' },
        h('thead', {}, h('tr', {}, ...['Name', 'Type', 'Shape', 'Size', 'Value'].map((t) => h('th', {}, t)))),
        h('tbody', {}, ...rows))
      : null
    this.el.replaceChildren(h('div', { class: 'row' }, h('strong', {}, 'Variables'), refresh),
      note ? h('p', { class: 'muted', 'data-testid': 'variables-note' }, note) : null, table)
  }
}
