// One cell: a CodeMirror editor bound to the cell's Y.Text (created when the cell comes
// into view), its prompt and state, and its outputs.
import * as Y from 'yjs'
import { Decoration, EditorView, keymap } from '@codemirror/view'
import { EditorState, StateEffect, StateField } from '@codemirror/state'
import { basicSetup } from 'codemirror'
import { indentWithTab } from '@codemirror/commands'
import { autocompletion, acceptCompletion, closeCompletion, completeFromList, completionStatus, startCompletion } from '@codemirror/autocomplete'
import { indentUnit, syntaxHighlighting } from '@codemirror/language'
import { classHighlighter } from '@lezer/highlight'
import { openSearchPanel } from '@codemirror/search'
import { python } from '@codemirror/lang-python'
import { markdown } from '@codemirror/lang-markdown'
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next'
import { api, h } from './api.js'
import { EDIT_KEYS } from './commands.js'
import { inspectAt, kernelOptions, tabAction, toCodePoints, wordBefore, wordMatches } from './completion.js'
import { renderOutput } from './outputs.js'
import { renderMarkdown } from './markdown.js'
import { cellProblem } from './schema.js'
import { threadRanges } from './mentions.js'
import { CellCollapse } from './collapse.js'
import { findHighlight } from './findbar.js'
import { runningFor, timingText } from './celltiming.js'

const lazy = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (entry.isIntersecting && entry.target.tandemMount) {
      lazy.unobserve(entry.target)
      entry.target.tandemMount()
    }
  }
}, { rootMargin: '800px 0px' })

// The language's own completion sources (python's locals and keywords), for completion
// while typing: an `override` replaces them all, so they are asked through it.
const typingSources = [0, 1, 2, 3].map((i) => (context) => {
  const source = context.state.languageDataAt('autocomplete', context.pos)[i]
  if (context.explicit || !source) return null
  return (typeof source === 'function' ? source : completeFromList(source))(context)
})

// Commented text, highlighted: one mark per open thread's anchored range. The marks are
// set from the server's anchors when the threads load, and in between they move with the
// text through every change (local typing and others', which y-codemirror applies as
// changes), as the server's sticky anchors do: typing at an edge stays outside.
const setCommentMarks = StateEffect.define()
const commentMarks = StateField.define({
  create: () => Decoration.none,
  update (marks, transaction) {
    marks = marks.map(transaction.changes)
    for (const effect of transaction.effects) if (effect.is(setCommentMarks)) marks = effect.value
    return marks
  },
  provide: (field) => EditorView.decorations.from(field)
})

function commentDecorations (text, threads, cellId) {
  return Decoration.set(threadRanges(text, threads, cellId).map(({ from, to, id }) =>
    Decoration.mark({ class: 'cm-comment-mark', attributes: { 'data-thread': id, title: 'Commented: click to open the thread' } }).range(from, to)), true)
}

export class CellView {
  constructor (ymap, notebook) {
    this.ymap = ymap
    this.nb = notebook
    this.view = null
    this.editingMarkdown = false
    this.timer = null
    this.prompt = h('div', { class: 'prompt' })
    this.host = h('div', { class: 'source' })
    this.rendered = h('div', { class: 'markdown rendered' })
    this.outputs = h('div', { class: 'outputs', 'data-testid': 'outputs' })
    // Last run ("2.3 s · ann · 14:02") and, while a cell waits for input(), whose answer
    // it waits for (or, for that person, the prompt): kept apart from the outputs, which
    // are redrawn on every change.
    this.timing = h('div', { class: 'cell-timing', 'data-testid': 'cell-timing', hidden: true })
    this.inputArea = h('div', { class: 'input-area', 'data-testid': 'input-area' })
    this.inspector = h('pre', { class: 'inspect', 'data-testid': 'inspect', role: 'status', hidden: true })
    this.tools = this.toolbar()
    this.el = h('section', { class: 'cell', tabindex: '-1', 'data-cell-id': ymap.get('id') },
      this.prompt, h('div', { class: 'body' }, this.tools, this.host, this.inspector, this.rendered, this.timing, this.outputs, this.inputArea))
    this.el.tandemCell = this
    if (notebook.canEdit) {
      this.prompt.draggable = true
      this.prompt.title = 'Drag to move'
      this.prompt.addEventListener('dragstart', (event) => { event.dataTransfer.setData('text/x-tandem-cell', this.id); event.dataTransfer.effectAllowed = 'move' })
      this.el.addEventListener('dragover', (event) => { if (event.dataTransfer.types.includes('text/x-tandem-cell')) event.preventDefault() })
      this.el.addEventListener('drop', (event) => {
        const id = event.dataTransfer.getData('text/x-tandem-cell')
        if (!id) return
        event.preventDefault()
        const dragged = [...notebook.views.values()].find((v) => v.id === id)
        if (dragged) notebook.moveTo(dragged, notebook.indexOf(this))
      })
    }
    this.host.tandemMount = () => this.mount()
    this.rendered.addEventListener('dblclick', () => this.editMarkdown())
    this.el.addEventListener('focusin', () => notebook.focused(this))
    this.el.addEventListener('keydown', (event) => notebook.commandKey(event, this))
    // A change that breaks the cell (say, its source replaced by a number) turns it into a
    // placeholder: the notebook draws it again.
    this.onMap = () => { if (cellProblem(ymap) === null) this.refresh(); else notebook.render() }
    this.onOutputs = () => this.renderOutputs()
    ymap.observe(this.onMap)
    this.watchOutputs()
    this.placeholder()
    if (this.ytext instanceof Y.Text) this.ytext.observe(() => { if (!this.view) this.placeholder(); else if (this.type === 'markdown') this.refresh() })
    lazy.observe(this.host)
    this.refresh()
    this.collapse = new CellCollapse(this)
    const waiting = notebook.runtimeInfo?.waiting_for_input
    if (waiting?.cell_id === this.id) this.showInputWait(waiting)
  }

  get id () { return this.ymap.get('id') }
  get type () { return this.ymap.get('cell_type') }
  get ytext () { return this.ymap.get('source') }

  toolbar () {
    const nb = this.nb
    this.threadBadge = h('button', { class: 'threads-badge', hidden: true, title: 'Open comments', onclick: () => nb.panel.show('comments') })
    const comment = nb.info.role !== 'viewer'
      ? h('button', { title: 'Comment on the selection or the cell', class: 'comment', onclick: () => this.comment() }, 'Comment')
      : null
    if (!nb.canEdit) return h('div', { class: 'cell-tools' }, this.threadBadge, comment)
    const type = h('select', { 'aria-label': 'cell type' },
      ...['code', 'markdown', 'raw'].map((t) => h('option', { value: t }, t)))
    type.addEventListener('change', () => nb.setType(this, type.value))
    this.typeSelect = type
    return h('div', { class: 'cell-tools' },
      this.threadBadge,
      comment,
      h('button', { title: 'Run (Shift+Enter)', class: 'run', onclick: () => nb.run([this.id]) }, '▶'),
      h('button', { title: 'Move up', onclick: () => nb.move(this, -1) }, '↑'),
      h('button', { title: 'Move down', onclick: () => nb.move(this, 1) }, '↓'),
      type,
      h('button', { title: 'Add a cell below (B)', onclick: () => nb.insert(this, 1) }, '+'),
      h('button', { title: 'Delete (D D)', class: 'danger', onclick: () => nb.remove(this) }, '✕'))
  }

  setThreads (count) {
    this.threadBadge.hidden = count === 0
    this.threadBadge.textContent = count === 1 ? '1 comment' : `${count} comments`
    this.el.classList.toggle('commented', count > 0)
    this.markComments()
  }

  // The open threads' ranges in this cell, highlighted (the panel holds the threads).
  markComments () {
    if (!this.view) return
    const threads = this.nb.panel?.threads || []
    this.view.dispatch({ effects: setCommentMarks.of(commentDecorations(this.view.state.doc.toString(), threads, this.id)) })
  }

  comment () {
    // A range in the API counts characters (code points); CodeMirror counts UTF-16 units.
    const state = this.view?.state
    const selection = state?.selection.main
    if (state && selection && !selection.empty) {
      const chars = (text) => [...text].length
      const start = chars(state.sliceDoc(0, selection.from))
      const quote = state.sliceDoc(selection.from, selection.to)
      this.nb.panel.startThread(this.id, { start, end: start + chars(quote) }, quote)
    } else {
      this.nb.panel.startThread(this.id, {}, '')
    }
  }

  placeholder () {
    if (this.view) return
    const text = this.ytext instanceof Y.Text ? this.ytext.toString() : ''
    this.host.replaceChildren(h('pre', { class: 'placeholder' }, text || ' '))
  }

  mount () {
    if (this.view || !(this.ytext instanceof Y.Text)) return
    const nb = this.nb
    const ytext = this.ytext
    const undoManager = new Y.UndoManager(ytext) // this person's edits only
    const keys = keymap.of([
      // Run, Esc, split, Tab and Shift+Tab: the table the shortcut help lists (commands.js).
      ...EDIT_KEYS.filter((k) => k.run).map(({ key, run }) => ({ key, run: (view) => run(nb, this, view) })),
      ...yUndoManagerKeymap,
      // Tab indents and Shift+Tab dedents, as in Jupyter: neither leaves the editor (Shift+Tab
      // went back to the cell's Delete button, so Shift+Tab then Enter deleted the cell).
      // A read-only editor lets them through, so a viewer can still tab around the page.
      indentWithTab
    ])
    const state = EditorState.create({
      doc: ytext.toString(),
      extensions: [
        keys,
        basicSetup,
        indentUnit.of('    '), // Jupyter's (and PEP 8's) four spaces, not CodeMirror's two
        this.type === 'code' ? python() : markdown(),
        // Tokens get stable classes (tok-keyword, ...) that app.css colours for light and dark.
        syntaxHighlighting(classHighlighter),
        yCollab(ytext, nb.provider.awareness, { undoManager }),
        // The kernel answers asked-for completions (Tab, Ctrl+Space) only: what pops up while
        // typing stays the language's own, with no request per keystroke.
        autocompletion({ override: [(context) => context.explicit ? this.complete(context) : null, ...typingSources] }),
        EditorState.readOnly.of(!nb.canEdit),
        EditorView.editable.of(nb.canEdit),
        EditorView.updateListener.of((update) => { if (update.focusChanged && update.view.hasFocus) nb.focused(this) }),
        commentMarks,
        EditorView.domEventHandlers({
          click: (event) => {
            const mark = event.target.closest?.('.cm-comment-mark[data-thread]')
            if (mark) nb.panel.openThread(mark.dataset.thread)
            return false
          }
        }),
        findHighlight // the find bar's matches
      ]
    })
    this.view = new EditorView({ state, parent: this.host })
    this.host.querySelector('pre.placeholder')?.remove()
    this.markComments()
    this.refresh()
  }

  // The line's text before the cursor, and whether something is selected.
  before (state) {
    const selection = state.selection.main
    const line = state.doc.lineAt(selection.head)
    return [state.sliceDoc(line.from, selection.head), !selection.empty || state.selection.ranges.length > 1]
  }

  tab (view) {
    if (!this.nb.canEdit) return false
    if (completionStatus(view.state) === 'active') return acceptCompletion(view)
    if (tabAction(...this.before(view.state)) !== 'complete') return false
    return startCompletion(view)
  }

  // Esc: closes the documentation if shown, else leaves the editor for command mode.
  leaveEditor () {
    if (!this.inspector.hidden) { this.inspector.hidden = true; return true }
    this.doneEditingMarkdown()
    this.el.focus()
    return true
  }

  find () {
    this.focusEditor()
    if (this.view) openSearchPanel(this.view)
  }

  shiftTab (view) {
    if (!this.nb.canEdit || !inspectAt(...this.before(view.state))) return false
    closeCompletion(view) // so that Esc then closes the documentation
    this.inspect(view.state)
    return true
  }

  // A completion source: the kernel's matches, else words from the notebook's cells (the
  // kernel is busy, failed, or none runs).
  async complete (context) {
    const code = context.state.doc.toString()
    let reply = null
    try {
      reply = await api('POST', `/api/notebooks/${encodeURIComponent(this.nb.info.id)}/complete`, { code, cursor_pos: toCodePoints(code, context.pos) })
    } catch (error) {
      if (!error.status) throw error
    }
    if (context.aborted) return null
    const kernel = kernelOptions(code, reply)
    if (kernel) return kernel
    const line = context.state.doc.lineAt(context.pos)
    const prefix = wordBefore(line.text.slice(0, context.pos - line.from))
    const texts = this.nb.cells.toArray().map((cell) => (cell instanceof Y.Map && cell.get('source') instanceof Y.Text ? cell.get('source').toString() : ''))
    const words = wordMatches(texts, prefix)
    if (!words.length) return null
    return { from: context.pos - prefix.length, options: words.map((label) => ({ label, type: 'text' })), validFor: /^[\p{L}\p{N}_]*$/u }
  }

  async inspect (state) {
    const code = state.doc.toString()
    const show = (text) => { this.inspector.textContent = text; this.inspector.hidden = false }
    try {
      const reply = await api('POST', `/api/notebooks/${encodeURIComponent(this.nb.info.id)}/inspect`, { code, cursor_pos: toCodePoints(code, state.selection.main.head) })
      if (reply.status === 'ok' && reply.found) show(reply.text)
      else show(reply.status === 'busy' ? 'The kernel is busy: try again when it is done.' : 'No documentation found.')
    } catch (error) {
      if (!error.status) throw error
      show(error.status === 409 ? 'No kernel runs: run a cell to see documentation.' : `No documentation: ${error.message}`)
    }
  }

  focusEditor () {
    if (this.type === 'markdown') this.editMarkdown()
    this.mount()
    this.view?.focus()
  }

  editMarkdown () {
    if (!this.nb.canEdit || this.type !== 'markdown') return
    this.editingMarkdown = true
    this.refresh()
    this.mount()
    this.view?.focus()
  }

  doneEditingMarkdown () {
    if (this.type === 'markdown' && this.editingMarkdown) {
      this.editingMarkdown = false
      this.refresh()
    }
  }

  watchOutputs () {
    if (this.youtputs) this.youtputs.unobserveDeep(this.onOutputs)
    this.youtputs = this.ymap.get('outputs')
    if (this.youtputs instanceof Y.Array) this.youtputs.observeDeep(this.onOutputs)
    this.renderOutputs()
  }

  refresh () {
    if (this.ymap.get('outputs') !== this.youtputs) this.watchOutputs()
    const type = this.type
    if (this.typeSelect) this.typeSelect.value = type
    this.el.dataset.type = type
    const showRendered = type === 'markdown' && !this.editingMarkdown
    this.host.hidden = showRendered
    this.rendered.hidden = !showRendered
    if (showRendered) this.rendered.replaceChildren(renderMarkdown(this.ytext ? this.ytext.toString() : ''))
    const state = this.ymap.get('execution_state') || 'idle'
    this.el.dataset.state = state
    const count = this.ymap.get('execution_count')
    const ymeta = this.ymap.get('metadata')
    const metadata = ymeta instanceof Y.Map ? ymeta.toJSON() : (ymeta ?? {})
    const info = metadata.executionInfo
    clearInterval(this.timer)
    if (type !== 'code') {
      this.prompt.textContent = ''
    } else if (state === 'running') {
      // Counted from the start the server stored in the cell: a reload, or someone who
      // opens the notebook mid-run, sees the same time as everyone else.
      const fallback = Date.now()
      const tick = () => {
        const ran = runningFor(metadata, this.nb.now()) ?? Date.now() - fallback
        this.prompt.textContent = `[*] ${Math.floor(ran / 1000)}s`
        this.showTiming(metadata, state)
      }
      tick()
      this.timer = setInterval(tick, 1000)
    } else if (state === 'queued') {
      this.prompt.textContent = '[…]'
    } else {
      this.prompt.textContent = `[${count ?? ' '}]`
    }
    if (type !== 'code' || state !== 'running') this.showTiming(type === 'code' ? metadata : {}, state)
    this.prompt.title = info
      ? `Last run by ${info.user?.displayName ?? '?'} on ${info.worker ?? '?'} (${info.runtime ?? ''}), ${new Date(info.timestamp).toLocaleString()}, took ${(info.elapsed / 1000).toFixed(2)} s`
      : ''
  }

  showTiming (metadata, state) {
    const text = timingText(metadata, state, this.nb.now())
    this.timing.textContent = text
    this.timing.hidden = !text
    this.timing.dataset.state = state
  }

  // The runtime's `waiting_for_input` (null when no cell waits): the person who ran the
  // cell gets the prompt, everyone else sees whose answer it waits for.
  showInputWait (waiting) {
    const mine = waiting && waiting.username === this.nb.me.username
    if (!waiting) {
      this.inputArea.replaceChildren()
      return
    }
    if (mine) {
      if (!this.inputArea.querySelector('form.input-request')) this.inputArea.replaceChildren(this.nb.inputForm(waiting))
      return
    }
    const note = `Waiting for input from ${waiting.username}` + (waiting.prompt ? `: ${waiting.prompt}` : '')
    const shown = this.inputArea.querySelector('.input-wait')
    if (shown?.textContent === note) return
    this.inputArea.replaceChildren(h('p', { class: 'input-wait', 'data-testid': 'input-wait', role: 'status' }, note))
  }

  renderOutputs () {
    const list = this.youtputs instanceof Y.Array ? this.youtputs.toJSON() : []
    this.outputs.replaceChildren(...list.map((output) => h('div', { class: 'output' }, renderOutput(output))))
    if (list.length && this.nb.canEdit) {
      this.outputs.append(h('button', { class: 'link clear', onclick: () => this.nb.clearOutputs(this) }, 'Clear output'))
    }
  }

  destroy () {
    clearInterval(this.timer)
    this.ymap.unobserve(this.onMap)
    if (this.youtputs instanceof Y.Array) this.youtputs.unobserveDeep(this.onOutputs)
    lazy.unobserve(this.host)
    this.collapse?.destroy()
    this.view?.destroy()
  }
}

// An item of `cells` the editor cannot draw (schema.js says why): a row that says so and,
// for editors, a button that deletes it. A Map is watched, so a repair shows at once.
export class UnrenderableCell {
  constructor (item, reason, notebook) {
    this.item = item
    this.reason = reason
    this.index = -1
    this.el = h('section', { class: 'cell unrenderable', tabindex: '-1', 'data-testid': 'unrenderable-cell' },
      h('div', { class: 'prompt' }, '⚠'),
      h('div', { class: 'body' },
        h('p', { class: 'reason' }, `This cell cannot be shown: ${reason}.`),
        notebook.canEdit ? h('button', { class: 'danger', onclick: () => notebook.removeUnrenderable(this) }, 'Delete') : null))
    this.onChange = () => notebook.render()
    if (item instanceof Y.Map) item.observe(this.onChange)
  }

  destroy () {
    if (this.item instanceof Y.Map) this.item.unobserve(this.onChange)
    this.el.remove()
  }
}
