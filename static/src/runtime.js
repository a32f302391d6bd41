// The notebook's runtime in the top bar: the badge (type, status, GPUs, time left, why it
// waits), Colab's RAM / Disk bars, the sandbox mark, the "Change runtime type" dialog,
// interrupt and restart (which asks first: the kernel is everyone's), and the prompt of an
// input() for the person who ran the cell. Cells' timers count on the server's clock,
// learnt here from the runtime statuses.
import { api, h, toast } from './api.js'
import { confirmDialog } from './dialog.js'
import { sandboxMark, usageDetail, usageMeters } from './usage.js'

export class RuntimeBar {
  constructor (nb) {
    this.nb = nb
    this.info = null
    this.badge = h('button', { class: 'runtime', 'data-testid': 'runtime', onclick: () => this.choose() }, 'runtime')
    this.reason = h('span', { class: 'runtime-reason', 'data-testid': 'runtime-reason', hidden: true })
    this.usage = h('span', { class: 'usage', 'data-testid': 'runtime-usage', hidden: true })
    this.sandbox = h('span', { class: 'sandbox', 'data-testid': 'runtime-sandbox', hidden: true })
    this.detail = h('p', { class: 'runtime-detail', 'data-testid': 'runtime-detail' })
    this.el = h('span', { class: 'runtime-badge' }, this.badge, this.reason, this.usage, this.sandbox)
  }

  show (runtime) {
    if (!runtime) return
    this.info = runtime
    this.learnClock(runtime.now)
    const gpu = runtime.gpus && runtime.gpus.length ? ` · ${runtime.gpus.join(', ')}` : ''
    let left = ''
    if (runtime.lifetime_deadline) {
      const minutes = Math.max(0, Math.round((new Date(runtime.lifetime_deadline) - Date.now()) / 60000))
      left = ` · ${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')} left`
    }
    const queue = runtime.queue_position ? ` (#${runtime.queue_position} in line)` : ''
    const waiting = runtime.waiting_for_input
    const status = waiting ? `waiting for input from ${waiting.username}` : runtime.status
    this.badge.textContent = `${runtime.type.toUpperCase()} · ${status}${queue}${gpu}${left}`
    this.badge.title = runtime.reason || ''
    this.badge.dataset.state = runtime.status
    // What it waits for (a worker that offers this type; an environment being built, which
    // takes minutes) or why it stopped: said next to the badge, not hidden in a tooltip.
    const said = ['starting', 'waiting', 'reconnecting', 'disconnected'].includes(runtime.status) && runtime.reason
    this.reason.hidden = !said
    this.reason.textContent = said ? runtime.reason : ''
    this.reason.dataset.state = runtime.status
    for (const view of this.nb.views.values()) view.showInputWait(waiting?.cell_id === view.id ? waiting : null)
    if (this.status === 'busy' && runtime.status !== 'busy') this.nb.panel.variablesChanged?.()
    this.status = runtime.status
    // Colab's RAM / Disk bars: small here, the full numbers in the tooltip and the dialog.
    const meters = usageMeters(runtime.usage)
    this.usage.hidden = meters.length === 0
    this.usage.title = usageDetail(runtime.usage)
    this.usage.replaceChildren(...meters.map((m) => h('span', { class: 'meter', 'data-name': m.name },
      `${m.label} `,
      m.fraction === null ? null : h('meter', { min: 0, max: 1, low: 0.8, high: 0.95, optimum: 0, value: m.fraction }),
      m.text)))
    const mark = sandboxMark(runtime.sandbox)
    this.sandbox.hidden = !mark
    this.sandbox.textContent = mark ? mark.text : ''
    this.sandbox.title = mark ? mark.title : ''
    this.sandbox.dataset.kind = mark ? mark.kind : ''
    this.sandbox.dataset.level = mark ? mark.level : ''
    this.renderDetail()
  }

  // How far the server's clock is ahead of this one (ms), from the times in runtime
  // statuses: a message late by the network only makes it look smaller, so the largest of
  // the last few is the best guess. Cells' timers count on the server's clock.
  learnClock (serverNow) {
    const at = Date.parse(serverNow)
    if (!Number.isFinite(at)) return
    this.clockSamples = [...(this.clockSamples ?? []).slice(-9), at - Date.now()]
    this.clockOffset = Math.max(...this.clockSamples)
  }

  now () { return Date.now() + (this.clockOffset ?? 0) }

  // The full figures and the sandbox, shown in the "Change runtime type" dialog.
  renderDetail () {
    const runtime = this.info
    const mark = sandboxMark(runtime?.sandbox)
    const usage = usageDetail(runtime?.usage)
    this.detail.textContent = [usage, mark ? `Sandbox: ${mark.title}` : ''].filter(Boolean).join('\n')
    this.detail.hidden = !this.detail.textContent
  }

  async choose () {
    if (!this.info || !this.nb.canEdit) return
    // Fresh, so that which types a connected worker can run is true now.
    try {
      this.show(await api('GET', `/api/notebooks/${this.nb.info.id}/runtime`))
    } catch (e) {
      // offline: the last status known still says what there is
    }
    const runtime = this.info
    const available = new Set(runtime.available_types ?? runtime.types.map((t) => t.name))
    const why = (t) => t.gpus > 0 ? 'no GPU worker connected' : 'no worker offers it'
    const select = h('select', { 'aria-label': 'runtime type' }, ...runtime.types.map((t) => h('option', {
      value: t.name,
      selected: t.name === runtime.type,
      'data-available': available.has(t.name) ? 'yes' : 'no'
    }, (t.label || t.name) + (available.has(t.name) ? '' : ` (unavailable: ${why(t)})`))))
    const note = h('p', { class: 'runtime-note', 'data-testid': 'runtime-note', hidden: true })
    const explain = () => {
      const type = runtime.types.find((t) => t.name === select.value)
      note.hidden = !type || available.has(type.name)
      note.textContent = note.hidden ? '' : `${type.label || type.name} is unavailable: ${why(type)}. Runs will wait until one connects.`
    }
    select.addEventListener('change', explain)
    explain()
    const dialog = h('dialog', { class: 'card' },
      h('h2', {}, 'Change runtime type'), select, note, this.detail,
      h('div', { class: 'row' },
        h('button', { onclick: () => dialog.close() }, 'Cancel'),
        h('button', {
          class: 'primary',
          onclick: async () => {
            dialog.close()
            try { this.show(await api('PUT', `/api/notebooks/${this.nb.info.id}/runtime`, { type: select.value })) } catch (e) { toast(e.message, 'error') }
          }
        }, 'Save')))
    document.body.append(dialog)
    dialog.addEventListener('close', () => dialog.remove())
    dialog.showModal()
  }

  async kernel (action) {
    try { await api('POST', `/api/notebooks/${this.nb.info.id}/kernel/${action}`) } catch (e) { toast(e.message, 'error') }
  }

  // The kernel is everyone's: a restart loses every person's variables, so it asks first.
  // With `runAll`, every code cell is queued once the restart was accepted; the server's
  // runner starts the new kernel and then runs the queue in order.
  async restart ({ runAll = false } = {}) {
    if (!this.nb.canEdit) return
    const others = new Set([...this.nb.provider.awareness.getStates().entries()]
      .filter(([client, state]) => client !== this.nb.doc.clientID && state.user)
      .map(([, state]) => state.user.name)).size
    const ok = await confirmDialog({
      title: runAll ? 'Restart the kernel and run all cells?' : 'Restart the kernel?',
      message: [
        'Variables will be lost: the kernel starts afresh.',
        `It restarts for everyone in this notebook${others ? ` (${others === 1 ? 'one other person is' : `${others} other people are`} here now)` : ''}, and whatever is queued or running stops.`,
        runAll ? 'Then every code cell runs, top to bottom.' : null
      ].filter(Boolean),
      confirm: runAll ? 'Restart and run all' : 'Restart',
      danger: true,
      testId: 'restart-confirm'
    })
    if (!ok) return
    try {
      await api('POST', `/api/notebooks/${this.nb.info.id}/kernel/restart`)
    } catch (e) {
      toast(`Could not restart: ${e.message}`, 'error')
      return
    }
    if (runAll) await this.nb.run(this.nb.cellIds())
  }

  // The prompt of an input() in a cell this person ran (the runtime status says so, also
  // after a reload); the others see whose answer the cell waits for (CellView).
  inputForm (waiting) {
    const field = h('input', { type: waiting.password ? 'password' : 'text', 'aria-label': waiting.prompt || 'input' })
    const form = h('form', { class: 'input-request' }, h('label', {}, waiting.prompt, field), h('button', { type: 'submit' }, 'Send'))
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      form.remove()
      try { await api('POST', `/api/notebooks/${this.nb.info.id}/kernel/input`, { value: field.value }) } catch (e) { toast(e.message, 'error') }
    })
    setTimeout(() => field.focus())
    return form
  }
}
