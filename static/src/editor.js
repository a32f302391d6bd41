// The notebook page: the shared Y.Doc over y-websocket, the cells, running, the runtime
// badge, presence, and the connection state.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import * as decoding from 'lib0/decoding'
import { api, h, toast } from './api.js'
import { CellView, UnrenderableCell } from './cell.js'
import { cellProblem } from './schema.js'
import { SidePanel } from './panel.js'
import { commandFor, globalCommandFor } from './commands.js'
import { openPalette } from './palette.js'
import { showShortcuts } from './shortcuts.js'
import { nextChoice, setThemeChoice, themeChoice } from './theme.js'
import { NotebookTitle } from './title.js'
import { RuntimeBar } from './runtime.js'
import { UnsentEdits, forgetLocally, keepLocally } from './offline.js'
import { renderOutput, setWidgetRenderer } from './outputs.js'
import { Widgets } from './widgets.js'
import { CellSelection } from './selection.js'
import { FindBar } from './findbar.js'
import { Outline } from './outline.js'

// Origin of this person's structural edits (add, delete, move, split, merge, change type):
// Z in command mode undoes exactly those, never someone else's, never typing.
const CELLS = 'tandem-cells'
// Deleting an unrenderable item: not undoable (undo would only bring the bad value back).
const CLEANUP = 'tandem-cleanup'

const COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#008080', '#9a6324', '#800000', '#000075', '#f032e6']

function colorFor (name) {
  let hash = 0
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0
  return COLORS[hash % COLORS.length]
}

// The ids of the drawable cells among `items` (what Run all and Run above/below run).
const idsOf = (items) => items.filter((item) => cellProblem(item) === null).map((cell) => cell.get('id'))

function newCell (type, source = '') {
  const cell = new Y.Map()
  cell.set('id', crypto.randomUUID().replaceAll('-', '').slice(0, 16))
  cell.set('cell_type', type)
  cell.set('source', new Y.Text(source))
  cell.set('metadata', new Y.Map())
  if (type === 'code') {
    cell.set('outputs', new Y.Array())
    cell.set('execution_count', null)
    cell.set('execution_state', 'idle')
  }
  return cell
}

function copyCell (ymap, type) {
  const copy = new Y.Map()
  const json = ymap.toJSON()
  copy.set('id', json.id)
  copy.set('cell_type', type ?? json.cell_type)
  copy.set('source', new Y.Text(json.source ?? ''))
  copy.set('metadata', new Y.Map(Object.entries(json.metadata ?? {})))
  if ((type ?? json.cell_type) === 'code') {
    const outputs = new Y.Array()
    outputs.push((json.outputs ?? []).map((o) => {
      const m = new Y.Map(Object.entries(o).filter(([k]) => k !== 'text'))
      if (o.output_type === 'stream') m.set('text', new Y.Text(o.text ?? ''))
      return m
    }))
    copy.set('outputs', outputs)
    copy.set('execution_count', json.execution_count ?? null)
    copy.set('execution_state', 'idle')
  }
  if (json.attachments) copy.set('attachments', json.attachments)
  return copy
}

export async function editorPage (root, notebookId) {
  const [me, info] = await Promise.all([api('GET', '/api/me'), api('GET', `/api/notebooks/${encodeURIComponent(notebookId)}`).catch((error) => error)])
  if (info instanceof Error) {
    if (info.status === 403 || info.status === 404) forgetLocally(me.id, notebookId)
    throw info
  }
  const nb = new Notebook(root, me, info)
  window.tandem = nb // for the browser tests and the curious
  return nb
}

class Notebook {
  constructor (root, me, info) {
    this.me = me
    this.info = info
    this.canEdit = info.role === 'owner' || info.role === 'editor'
    this.widgets = new Widgets(info.id, { canEdit: this.canEdit, renderOutput })
    setWidgetRenderer((data) => this.widgets.render(data))
    this.doc = new Y.Doc()
    this.cells = this.doc.getArray('cells')
    // Only edits need keeping: a reader's would be refused by the server anyway (and what
    // was kept while this person could edit is dropped, not sent on a later promotion).
    this.store = this.canEdit ? keepLocally(me.id, info.id, this.doc) : null
    if (!this.canEdit) forgetLocally(me.id, info.id)
    this.views = new Map()
    this.unrenderable = new Map() // item (or index and value, for a plain value) -> row
    this.current = null
    this.lastKey = null
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
    this.provider = new WebsocketProvider(`${scheme}://${location.host}/api/notebooks`, `${info.id}/sync`, this.doc)
    // A reader's sync step 2 is dropped without an echo, and a reader has nothing to lose.
    this.unsent = this.canEdit ? new UnsentEdits(this.provider) : null
    window.addEventListener('beforeunload', (event) => {
      if (!this.unsent?.any) return
      event.preventDefault()
      event.returnValue = '' // older browsers want it set to show the prompt
    })
    this.provider.on('connection-close', (event) => { if (event?.code === 4403 || event?.code === 4404) this.forgetLocally() })
    this.provider.awareness.setLocalStateField('user', { name: me.username, color: colorFor(me.username), colorLight: colorFor(me.username) + '33' })
    // The server answers a refused edit with the y-protocols permission-denied message.
    this.provider.messageHandlers[2] = (_encoder, decoder) => {
      if (decoding.readVarUint(decoder) === 0) this.denied(decoding.readVarString(decoder))
    }

    this.status = h('span', { class: 'status', 'data-testid': 'status' }, 'connecting')
    this.runtimeBar = new RuntimeBar(this)
    this.people = h('span', { class: 'people', 'data-testid': 'people' })
    this.banner = h('div', { class: 'banner', hidden: true, role: 'alert' })
    this.list = h('div', { class: 'cells', 'data-testid': 'cells' })
    this.panel = new SidePanel(this)
    const edit = this.canEdit
    // Editors rename by clicking the title (Enter saves, Esc cancels); others only read it.
    this.title = new NotebookTitle(info, edit)
    this.themeButton = h('button', { class: 'theme-toggle', 'data-testid': 'theme-toggle', onclick: () => this.setTheme(nextChoice(themeChoice())) })
    const panelButton = (tab, label) => h('button', { onclick: () => this.panel.show(tab), 'data-testid': `open-${tab}` }, label)
    root.replaceChildren(
      h('header', { class: 'bar' },
        h('a', { href: '/', class: 'home' }, 'Tandem'), this.title.el,
        h('span', { class: 'role' }, info.role),
        h('span', { class: 'spacer' }), this.people, this.status,
        this.runtimeBar.el,
        panelButton('comments', 'Comments'),
        panelButton('files', 'Files'),
        info.role === 'owner' ? panelButton('share', 'Share') : null,
        panelButton('history', 'History'),
        edit ? panelButton('variables', 'Variables') : null,
        this.themeButton,
        h('button', { title: 'Command palette (Ctrl+Shift+P)', 'data-testid': 'open-palette', onclick: () => this.openPalette() }, 'Commands'),
        h('button', { title: 'Keyboard shortcuts (H)', 'aria-label': 'Keyboard shortcuts', 'data-testid': 'open-shortcuts', onclick: () => this.showShortcuts() }, '?')),
      edit
        ? h('div', { class: 'tools' },
          h('button', { class: 'primary', onclick: () => this.run(this.cellIds()) }, 'Run all'),
          h('button', { onclick: () => this.runAround('above') }, 'Run above'),
          h('button', { onclick: () => this.runAround('below') }, 'Run below'),
          h('button', { onclick: () => this.kernel('interrupt'), 'data-testid': 'interrupt' }, 'Interrupt'),
          h('button', { onclick: () => this.restartKernel(), 'data-testid': 'restart' }, 'Restart'),
          h('button', { onclick: () => this.restartKernel({ runAll: true }), 'data-testid': 'restart-run-all' }, 'Restart and run all'),
          h('button', { onclick: () => this.insertAt(this.cells.length, 'code') }, '+ Code'),
          h('button', { onclick: () => this.insertAt(this.cells.length, 'markdown') }, '+ Text'))
        : h('div', { class: 'tools readonly' }, `Read only: you are a ${info.role}.`),
      this.banner,
      h('div', { class: 'workspace' }, h('main', { class: 'notebook' }, this.list), this.panel.el))

    this.provider.on('status', ({ status }) => this.showStatus(status))
    window.addEventListener('offline', () => this.showStatus('offline'))
    window.addEventListener('online', () => this.showStatus(this.provider.wsconnected ? 'connected' : 'connecting'))
    this.provider.on('sync', (synced) => { if (synced) { this.render(); this.markThreads(this.panel.threads) } })
    this.cells.observe(() => this.render())
    this.cellUndo = new Y.UndoManager(this.cells, { trackedOrigins: new Set([CELLS]), captureTimeout: 0 })
    // The everyday cell tools: multi-cell selection, find and replace, the contents.
    this.selection = new CellSelection(this)
    this.find = new FindBar(this)
    this.outline = new Outline(this)
    this.provider.awareness.on('change', () => this.renderPeople())
    this.connectEvents()
    this.showThemeChoice()
    window.addEventListener('tandem-theme', () => this.showThemeChoice())
    // Ctrl+Shift+P (⌘+Shift+P) anywhere, an editor's included; caught before CodeMirror.
    window.addEventListener('keydown', (event) => {
      const command = globalCommandFor(event)
      if (!command || document.querySelector('dialog[open]')) return
      event.preventDefault()
      event.stopPropagation()
      command.run(this)
    }, true)
  }

  cellIds () { return idsOf(this.cells.toArray()) }

  showStatus (status) {
    const text = !navigator.onLine ? 'offline — edits are kept' : status === 'connected' ? 'connected' : 'reconnecting…'
    this.status.textContent = text
    this.status.dataset.state = !navigator.onLine ? 'offline' : status
  }

  forgetLocally () {
    if (this.store) this.store.clearData()
    else forgetLocally(this.me.id, this.info.id)
    this.store = null
  }

  denied (reason) {
    this.banner.hidden = false
    this.banner.textContent = `Your change was not saved: ${reason}`
  }

  // Every item of `cells` gets a row: a cell view, or, for what breaks the schema (from a
  // document stored before the server guarded it), a placeholder that says why and that
  // an editor can delete. The rest of the notebook works as ever.
  render () {
    const seen = new Set()
    const unrenderable = new Map()
    const order = []
    this.cells.toArray().forEach((item, index) => {
      let problem = cellProblem(item)
      if (problem === null) {
        let view = this.views.get(item)
        try {
          view ??= new CellView(item, this)
          this.views.set(item, view)
          seen.add(item)
          order.push(view.el)
          return
        } catch (error) {
          problem = `it could not be drawn (${error.message})`
        }
      }
      const key = item instanceof Y.AbstractType ? item : `${index}:${typeof item}:${String(item)}`
      let row = this.unrenderable.get(key)
      if (!row || row.reason !== problem) row = new UnrenderableCell(item, problem, this)
      row.index = index
      unrenderable.set(key, row)
      order.push(row.el)
    })
    for (const [ymap, view] of this.views) {
      if (!seen.has(ymap)) { view.destroy(); view.el.remove(); this.views.delete(ymap) }
    }
    for (const [key, row] of this.unrenderable) {
      if (unrenderable.get(key) !== row) row.destroy()
    }
    this.unrenderable = unrenderable
    // Only what is new or moved is (re)inserted: taking out the cell that holds the focus
    // would drop it, and with it the command-mode selection or the editor being typed in.
    let at = this.list.firstElementChild
    for (const el of order) {
      if (el === at) at = at.nextElementSibling
      else this.list.insertBefore(el, at)
    }
  }

  viewAt (index) { return this.views.get(this.cells.get(index)) }
  indexOf (view) { return this.cells.toArray().indexOf(view.ymap) }

  focused (view) {
    this.current = view
    for (const v of this.views.values()) v.el.classList.toggle('current', v === view)
    this.provider.awareness.setLocalStateField('cell', view.id)
  }

  // --- editing -----------------------------------------------------------------------

  // The new cell is edited (its editor focused) or, from command mode, only selected.
  insertAt (index, type, { edit = true } = {}) {
    if (!this.canEdit) return null
    const cell = newCell(type)
    this.doc.transact(() => this.cells.insert(index, [cell]), CELLS)
    const view = this.views.get(cell)
    if (edit) view?.focusEditor()
    else view?.el.focus()
    return view
  }

  // The item a placeholder stands for, taken out of `cells` by its index.
  removeUnrenderable (row) {
    if (!this.canEdit) return
    const index = row.item instanceof Y.AbstractType ? this.cells.toArray().indexOf(row.item) : row.index
    if (index < 0 || index >= this.cells.length || !Object.is(this.cells.get(index), row.item)) return
    this.doc.transact(() => this.cells.delete(index, 1), CLEANUP)
  }

  insert (view, offset) { return this.insertAt(this.indexOf(view) + (offset > 0 ? 1 : 0), 'code') }

  remove (view) {
    if (!this.canEdit) return
    const index = this.indexOf(view)
    if (index >= 0) this.doc.transact(() => this.cells.delete(index, 1), CELLS)
    this.viewAt(Math.min(index, this.cells.length - 1))?.el.focus()
  }

  move (view, offset) {
    const index = this.indexOf(view)
    const target = index + offset
    if (target < 0 || target >= this.cells.length) return
    this.views.get(this.replaceCell(view, target))?.el.focus()
  }

  // Yjs has no move: the cell goes out and a copy (same id, possibly another type) comes in
  // at `target`, in one transaction, so the others see one change.
  replaceCell (view, target, type) {
    const index = this.indexOf(view)
    if (!this.canEdit || index < 0) return null
    const copy = copyCell(view.ymap, type)
    this.doc.transact(() => {
      this.cells.delete(index, 1)
      this.cells.insert(Math.min(target, this.cells.length), [copy])
    }, CELLS)
    return copy
  }

  setType (view, type) {
    if (view.type === type) return
    this.views.get(this.replaceCell(view, this.indexOf(view), type))?.el.focus()
  }

  moveTo (view, target) {
    if (target !== this.indexOf(view)) this.replaceCell(view, target)
  }

  split (view) {
    // At the cursor: what follows it becomes a new cell of the same type below.
    const editor = view.view
    if (!this.canEdit || !editor) return
    const head = editor.state.selection.main.head
    const ytext = view.ytext
    const source = ytext.toString()
    const rest = source.slice(head)
    // The line break at the cut goes with neither half (at the start of a line, it is the
    // one before): a trailing newline made merging back add a blank line.
    const at = head > 0 && source[head - 1] === '\n' && !rest.startsWith('\n') ? head - 1 : head
    const index = this.indexOf(view)
    const cell = newCell(view.type, rest.replace(/^\n/, ''))
    this.doc.transact(() => {
      ytext.delete(at, ytext.length - at)
      this.cells.insert(index + 1, [cell])
    }, CELLS)
    this.views.get(cell)?.focusEditor()
  }

  mergeBelow (view) {
    const index = this.indexOf(view)
    const next = this.viewAt(index + 1)
    if (!this.canEdit || !next) return
    const text = next.ytext.toString()
    this.doc.transact(() => {
      view.ytext.insert(view.ytext.length, (view.ytext.length ? '\n' : '') + text)
      this.cells.delete(index + 1, 1)
    }, CELLS)
  }

  markThreads (threads) {
    const open = new Map()
    for (const t of threads) if (!t.resolved && !t.orphaned) open.set(t.cell_id, (open.get(t.cell_id) || 0) + 1)
    for (const view of this.views.values()) view.setThreads(open.get(view.id) || 0)
  }

  reveal (cellId) {
    const view = [...this.views.values()].find((v) => v.id === cellId)
    if (!view) return
    view.el.scrollIntoView({ behavior: 'smooth', block: 'center' })
    view.el.focus()
  }

  clearOutputs (view) {
    const outputs = view.ymap.get('outputs')
    if (this.canEdit && outputs instanceof Y.Array) this.doc.transact(() => outputs.delete(0, outputs.length))
  }

  // --- running -----------------------------------------------------------------------

  async run (ids) {
    if (!this.canEdit || !ids.length) return
    try {
      // The server runs what we see: it waits until it holds everything this replica holds.
      const sv = Y.encodeStateVector(this.doc)
      const state_vector = btoa(String.fromCharCode(...sv))
      await api('POST', `/api/notebooks/${this.info.id}/execute`, { cell_ids: ids, state_vector })
    } catch (e) {
      toast(`Could not run: ${e.message}`, 'error')
    }
  }

  runAround (where) {
    const index = this.current ? this.indexOf(this.current) : 0
    const items = this.cells.toArray()
    this.run(idsOf(where === 'above' ? items.slice(0, index) : items.slice(index)))
  }

  runAndAdvance (view, insert, { edit = true } = {}) {
    if (view.type === 'code') this.run([view.id])
    view.doneEditingMarkdown()
    const index = this.indexOf(view)
    if (insert || index === this.cells.length - 1) this.insertAt(index + 1, 'code', { edit })
    else if (edit) this.viewAt(index + 1)?.focusEditor()
    else this.viewAt(index + 1)?.el.focus()
  }

  // Jupyter's command mode: Esc leaves the editor; these keys act on the selected cell.
  // A key that names a command is consumed here, so it never goes on to type into an
  // editor the command focused; cells it creates are selected, not edited (Enter edits).
  commandKey (event, view) {
    if (event.target !== view.el || event.isComposing) return
    const { command, lastKey } = commandFor(event, this.lastKey)
    this.lastKey = lastKey
    if (!command || (command.edits && !this.canEdit)) return
    event.preventDefault()
    command.run(this, view, this.indexOf(view))
  }

  // --- the top bar's commands: palette, shortcuts, theme, restart, rename --------------

  openPalette () { return openPalette(this) }

  showShortcuts () {
    const back = document.activeElement
    return showShortcuts({ canEdit: this.canEdit, onClose: () => { if (back instanceof HTMLElement && back.isConnected) back.focus() } })
  }

  setTheme (choice) {
    setThemeChoice(choice)
    this.showThemeChoice()
  }

  showThemeChoice () {
    const choice = themeChoice()
    const words = { system: 'Theme: system', light: 'Theme: light', dark: 'Theme: dark' }
    this.themeButton.textContent = words[choice]
    this.themeButton.title = `Colours: ${choice === 'system' ? 'as the system' : choice}; click for ${nextChoice(choice)}`
    this.themeButton.dataset.choice = choice
  }

  clearAllOutputs () {
    if (!this.canEdit) return
    this.doc.transact(() => {
      for (const view of this.views.values()) {
        const outputs = view.ymap.get('outputs')
        if (outputs instanceof Y.Array && outputs.length) outputs.delete(0, outputs.length)
      }
    })
  }

  startRename () { this.title.edit() }

  // The runtime (runtime.js): its badge, the "Change runtime type" dialog, restart, input.
  get runtimeInfo () { return this.runtimeBar.info }
  showRuntime (runtime) { this.runtimeBar.show(runtime) }
  now () { return this.runtimeBar.now() }
  kernel (action) { return this.runtimeBar.kernel(action) }
  restartKernel (options) { return this.runtimeBar.restart(options) }
  chooseRuntime () { return this.runtimeBar.choose() }
  inputForm (waiting) { return this.runtimeBar.inputForm(waiting) }

  // --- presence and events ----------------------------------------------------------

  renderPeople () {
    const states = [...this.provider.awareness.getStates().entries()]
      .filter(([client]) => client !== this.doc.clientID)
      .map(([, state]) => state)
      .filter((state) => state.user)
    this.people.replaceChildren(...states.map((state) => h('button', {
      class: 'avatar',
      title: state.user.name,
      style: `background:${/^#[0-9a-f]{6}$/i.test(state.user.color) ? state.user.color : '#888'}`,
      onclick: () => {
        const cell = [...this.views.values()].find((v) => v.id === state.cell)
        cell?.el.scrollIntoView({ behavior: 'smooth', block: 'center' })
      }
    }, (state.user.name || '?').slice(0, 2).toUpperCase())))
  }

  connectEvents () {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
    const socket = new WebSocket(`${scheme}://${location.host}/api/notebooks/${this.info.id}/events`)
    socket.addEventListener('message', (event) => {
      const message = JSON.parse(event.data)
      if (message.type === 'hello') this.widgets.connected()
      this.widgets.event(message)
      if (message.type === 'hello' || message.type === 'runtime.status') this.showRuntime(message.runtime)
      else if (message.type === 'runtime.warning') toast(`The runtime will stop in ${Math.round(message.seconds_left / 60)} min (${message.reason} limit).`, 'warning')
      else if (message.type === 'notebook.renamed') this.title.show(message.title)
      else if (message.type === 'members.changed' && message.changed.username === this.me.username && message.changed.role && message.changed.role !== this.info.role) location.reload()
      this.panel.event(message)
    })
    socket.addEventListener('close', (event) => {
      if (event.code === 4403 || event.code === 4404) {
        this.forgetLocally()
        this.denied(event.reason || 'access ended')
      }
      else setTimeout(() => this.connectEvents(), 2000)
    })
  }
}
