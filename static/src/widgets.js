// ipywidgets in the page, shared: the server keeps every widget model of the notebook's
// kernel (GET .../widgets) and sends each change the kernel makes as a `widget.comm` event;
// a person's change goes to the kernel (POST .../widgets/{comm_id}, editors only), and
// comes back to everyone, the sender included, as the kernel's echo. So a slider moved
// by one moves for all, and the kernel sees each move once.
//
// The manager (widgets-manager.js, with ipywidgets' own code) is a bundle of its own, loaded
// the first time a notebook has a widget. Events are applied in order; those numbered at
// or below the snapshot a page loaded are already in it, and a gap in the numbers means
// some were lost: the page loads the snapshot again. A widget shown as gone comes back when
// its model does: a server that adopted the kernel without its widgets (restarted, or its
// replica was killed) rebuilds them from the kernel, and each arrives as a comm_open.
import { api } from './api.js'

const MANAGER_URL = '/static/widgets-manager.js'
const STYLE_URL = '/static/widgets-manager.css'
export const WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'

// Which events to apply after loading the snapshot numbered `seq` (pure; unit-tested).
export function eventsAfter (events, seq) {
  return events.filter((event) => typeof event.seq === 'number' && event.seq > seq)
}

// What to do with an event numbered `next` when `seq` is the last one applied: "drop" one
// already in the state, "apply" the one after it, "reload" after a gap (pure; unit-tested).
export function eventAction (seq, next) {
  if (next <= seq) return 'drop'
  return next === seq + 1 ? 'apply' : 'reload'
}

export class Widgets {
  constructor (notebookId, { canEdit, renderOutput }) {
    this.notebookId = notebookId
    this.canEdit = canEdit
    this.renderOutput = renderOutput
    this.seq = null // the snapshot's number; null while none is loaded
    this.waiting = [] // events that came before the snapshot
    this.chain = Promise.resolve() // everything applied in order
    this.manager = null
    this.loading = null
    this.views = [] // [view, its node], to let go of views no longer on the page
    this.lost = new Set() // nodes shown as gone, each drawn again if its model comes back
    this.ready = new Promise((resolve) => { this.isReady = resolve })
  }

  // The events socket (re)connected: events may have been missed, so start from the
  // server's state again.
  connected () {
    this.seq = null
    this.waiting = []
    this.run(async () => {
      const snapshot = await api('GET', `/api/notebooks/${this.notebookId}/widgets`)
      if (snapshot.models.length || this.manager) {
        const manager = await this.load()
        const kept = new Set(snapshot.models.map((model) => model.comm_id))
        await manager.forget(kept)
        // Views of widgets the kernel no longer has (a reset this page did not see).
        for (const [view, node] of this.views) if (!kept.has(view.model?.model_id)) this.gone(node)
        this.views = this.views.filter(([view]) => kept.has(view.model?.model_id))
        await Promise.all(snapshot.models.map((model) => manager.load(model).catch((error) => console.warn('widget', error))))
        this.revive()
      }
      const waiting = eventsAfter(this.waiting, snapshot.seq)
      this.seq = snapshot.seq
      this.waiting = []
      for (const event of waiting) await this.apply(event)
      this.isReady()
    })
  }

  // One message of the events socket.
  event (message) {
    if (message.type !== 'widget.comm' && message.type !== 'widget.reset') return
    if (this.seq === null) {
      this.waiting.push(message)
      return
    }
    this.run(() => this.apply(message))
  }

  async apply (message) {
    if (this.seq === null) {
      this.waiting.push(message) // a new snapshot is on its way
      return
    }
    const action = eventAction(this.seq, message.seq)
    if (action === 'drop') return
    if (action === 'reload') {
      // Events were lost on the way (a flood overran the socket's queue): start again from
      // the server's state.
      this.connected()
      return
    }
    this.seq = message.seq
    if (message.type === 'widget.reset') {
      const views = this.views
      this.views = []
      try {
        if (this.manager) await this.manager.forget(new Set())
      } finally {
        for (const [, node] of views) this.gone(node) // whatever closing the models did
      }
      return
    }
    const manager = await this.load()
    await manager.receive(message)
    if (message.msg_type === 'comm_open') this.revive()
  }

  // A node whose widget went (a reset, a snapshot without it, not yet there when drawn).
  gone (el) {
    gone(el)
    if (el.dataset.modelId) this.lost.add(el)
  }

  // Draw again the nodes shown as gone whose model is here now (not awaited: `show` waits
  // for the work in progress, which may be the caller).
  revive () {
    for (const el of [...this.lost]) {
      const modelId = el.dataset.modelId
      if (!el.isConnected) {
        this.lost.delete(el)
      } else if (this.manager?.has_model(modelId) && !this.manager.closed(modelId)) {
        this.lost.delete(el)
        el.replaceChildren()
        el.classList.remove('widget-gone')
        this.show(modelId, el)
      }
    }
  }

  run (work) {
    this.chain = this.chain.then(work).catch((error) => console.warn('widgets:', error))
  }

  load () {
    this.loading ??= (async () => {
      const link = document.createElement('link')
      link.rel = 'stylesheet'
      link.href = STYLE_URL
      document.head.append(link)
      const module = await import(MANAGER_URL)
      this.manager = module.createManager({ send: (...args) => this.send(...args), renderOutput: this.renderOutput })
      return this.manager
    })()
    return this.loading
  }

  async send (commId, msgId, data, buffers) {
    try {
      if (!this.canEdit) throw new Error('only editors change widgets')
      await api('POST', `/api/notebooks/${this.notebookId}/widgets/${encodeURIComponent(commId)}`, { msg_id: msgId, data, buffers })
    } catch (error) {
      console.warn('widget change not sent:', error.message)
      if (data?.method === 'update') this.run(() => this.restore(commId, msgId))
    }
  }

  async restore (commId, msgId) {
    const snapshot = await api('GET', `/api/notebooks/${this.notebookId}/widgets`)
    const model = snapshot.models.find((m) => m.comm_id === commId)
    if (model && this.manager) this.manager.comms.get(commId)?.restore(msgId, model)
  }

  // The node an output of a widget view becomes: filled once its model is there. A viewer's
  // widget is inert (shown, not operable); the server refuses their changes anyway.
  render (data) {
    const spec = data[WIDGET_VIEW] || {}
    const el = document.createElement('div')
    el.className = 'widget-area'
    el.dataset.testid = 'widget'
    if (!this.canEdit) el.inert = true
    el.dataset.fallback = typeof data['text/plain'] === 'string' ? data['text/plain'] : ''
    if (typeof spec.model_id !== 'string') {
      el.textContent = el.dataset.fallback
      return el
    }
    el.dataset.modelId = spec.model_id
    this.show(spec.model_id, el)
    return el
  }

  async show (modelId, el) {
    await this.ready
    const manager = await this.load()
    await this.chain // the events that came with this output are applied first
    // An output drawn again after its kernel went (a restart): no view of a closed widget.
    if (manager.closed(modelId)) {
      this.gone(el)
      return
    }
    // Views whose node was on the page and is not any more (the outputs were drawn again).
    for (const [view, node] of this.views) {
      if (node.isConnected) node.dataset.seen = '1'
      else if (node.dataset.seen) removeDetached(view)
    }
    this.views = this.views.filter(([, node]) => node.isConnected || !node.dataset.seen)
    try {
      this.views.push([await manager.show(modelId, el), el])
    } catch {
      this.gone(el)
    }
  }
}

// Lumino refuses to detach a view whose node already left the page ("Widget is not
// attached"); there is nothing left to take off the page, only the view to let go of.
function removeDetached (view) {
  try {
    view.remove()
  } catch (error) {
    console.warn('widget view removed with an error:', error.message)
  }
}

// A widget whose kernel is gone (restarted, stopped): its text stands in, as in Jupyter.
function gone (el) {
  el.replaceChildren(el.dataset.fallback || 'This widget is not running any more: run its cell again.')
  el.classList.add('widget-gone')
}
