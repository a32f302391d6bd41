// The side panel: comment threads, sharing (owner), version history, files.
import { api, h, toast } from './api.js'
import { FilesPanel } from './files.js'
import { renderMarkdown } from './markdown.js'
import { mentionParts } from './mentions.js'
import { VariablesPanel } from './variables.js'
import { ShareTab } from './share.js'
import { HistoryTab } from './history.js'

export class SidePanel {
  constructor (notebook) {
    this.nb = notebook
    this.tab = null
    this.threads = []
    this.el = h('aside', { class: 'panel', hidden: true, 'data-testid': 'panel' })
    this.body = h('div', { class: 'panel-body' })
    this.files = new FilesPanel(notebook)
    this.variables = notebook.canEdit ? new VariablesPanel(notebook) : null
    this.share = new ShareTab(this)
    this.history = new HistoryTab(this)
    const tabs = [['comments', 'Comments'], ['files', 'Files'], ['history', 'History']]
    if (notebook.info.role === 'owner') tabs.splice(2, 0, ['share', 'Share'])
    if (this.variables) tabs.push(['variables', 'Variables'])
    this.tabs = h('nav', { class: 'panel-tabs' },
      ...tabs.map(([key, label]) => h('button', { 'data-tab': key, onclick: () => this.show(key) }, label)),
      h('button', { class: 'close', title: 'Close', onclick: () => this.hide() }, '✕'))
    this.el.append(this.tabs, this.body)
    this.loadThreads()
  }

  show (tab) {
    this.tab = tab
    this.el.hidden = false
    for (const button of this.tabs.querySelectorAll('[data-tab]')) button.classList.toggle('active', button.dataset.tab === tab)
    this.markNews(tab, false)
    if (tab !== 'files') this.files.hide()
    this.render()
  }

  hide () { this.el.hidden = true; this.tab = null; this.files.hide() }

  render () {
    if (this.tab === 'files') this.body.replaceChildren(this.files.show())
    else if (this.tab === 'comments') this.renderComments()
    else if (this.tab === 'share') this.share.render()
    else if (this.tab === 'history') this.history.render()
    else if (this.tab === 'variables' && this.variables) this.body.replaceChildren(this.variables.show())
  }

  // A run ended: the variable inspector, when open, asks the kernel again.
  variablesChanged () {
    if (this.tab === 'variables') this.variables?.refresh()
  }

  event (message) {
    if (message.type.startsWith('thread.')) this.loadThreads()
    else if (message.type === 'members.changed' && this.tab === 'share') this.share.render()
    else if (message.type.startsWith('files.') && this.files.event(message)) this.markNews('files', true)
  }

  // A tab with changes not seen yet: its button here and the toolbar's say so.
  markNews (tab, news) {
    for (const button of document.querySelectorAll(`.panel-tabs [data-tab="${tab}"], [data-testid="open-${tab}"]`)) button.classList.toggle('news', news)
  }

  // --- comments ------------------------------------------------------------------------

  get canComment () { return this.nb.info.role !== 'viewer' }

  async loadThreads () {
    try {
      this.threads = await api('GET', `/api/notebooks/${this.nb.info.id}/threads`)
    } catch (e) { return }
    this.nb.markThreads(this.threads)
    if (this.tab === 'comments') this.renderComments()
    // A mention's link (on the list page) names its thread: open it once.
    const wanted = /^#thread=([0-9a-f]{1,32})$/.exec(location.hash)
    if (wanted && !this.openedFromLink && this.threads.some((t) => t.id === wanted[1])) {
      this.openedFromLink = true
      this.openThread(wanted[1])
    }
  }

  // Show one thread in the panel (from a click on commented text, or a mention's link).
  openThread (threadId) {
    this.focusedThread = threadId
    this.show('comments')
    const article = this.body.querySelector(`article.thread[data-thread="${CSS.escape(threadId)}"]`)
    if (!article) return
    for (const other of this.body.querySelectorAll('article.thread.focused')) other.classList.remove('focused')
    article.classList.add('focused')
    article.scrollIntoView({ block: 'nearest' })
    const thread = this.threads.find((t) => t.id === threadId)
    if (thread && thread.comments.some((c) => c.mentions.includes(this.nb.me.username))) {
      api('POST', `/api/notebooks/${this.nb.info.id}/threads/${threadId}/read`).catch(() => {})
    }
  }

  // A comment's text, rendered, with each @mention the server recognised drawn as one.
  commentBody (comment) {
    const fragment = renderMarkdown(comment.body)
    if (!comment.mentions.length) return fragment
    const walker = document.createTreeWalker(fragment, NodeFilter.SHOW_TEXT)
    const texts = []
    while (walker.nextNode()) if (!walker.currentNode.parentElement?.closest('code, pre, a')) texts.push(walker.currentNode)
    for (const node of texts) {
      const parts = mentionParts(node.data, comment.mentions)
      if (parts.length === 1 && typeof parts[0] === 'string') continue
      node.replaceWith(...parts.map((part) => typeof part === 'string'
        ? part
        : h('span', { class: 'mention', 'data-mention': part.mention, title: `${part.mention} was told about this comment` }, `@${part.mention}`)))
    }
    return fragment
  }

  startThread (cellId, range, quote) {
    this.show('comments')
    const body = h('textarea', { rows: 3, placeholder: 'Comment… (@name to mention)', 'aria-label': 'new comment', maxlength: 10000 })
    const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'comment-error' })
    const form = h('form', { class: 'thread new' },
      h('div', { class: 'quote' }, quote ? `“${quote}”` : 'On the whole cell'),
      body, error, h('div', { class: 'row' }, h('button', { type: 'button', onclick: () => form.remove() }, 'Cancel'), h('button', { type: 'submit', class: 'primary' }, 'Comment')))
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      error.textContent = ''
      try {
        await api('POST', `/api/notebooks/${this.nb.info.id}/threads`, { cell_id: cellId, body: body.value, ...range })
        form.remove()
        this.loadThreads()
      } catch (e) { error.textContent = e.message } // the draft stays, to be corrected
    })
    this.body.prepend(form)
    body.focus()
  }

  renderComments () {
    const open = this.threads.filter((t) => !t.resolved)
    const resolved = this.threads.filter((t) => t.resolved)
    const list = [...open, ...resolved].map((thread) => this.threadView(thread))
    const pending = this.body.querySelector('form.thread.new')
    this.body.replaceChildren(...(pending ? [pending] : []),
      list.length ? h('div', { class: 'threads' }, ...list) : h('p', { class: 'empty' }, this.canComment ? 'No comments yet. Select text in a cell and press Comment.' : 'No comments yet.'))
  }

  threadView (thread) {
    const base = `/api/notebooks/${this.nb.info.id}/threads/${thread.id}`
    const quote = thread.orphaned
      ? h('div', { class: 'quote orphaned' }, 'Cell deleted. It said: ', h('pre', {}, thread.cell_text))
      : h('button', { class: 'quote link', onclick: () => this.nb.reveal(thread.cell_id) }, thread.anchor ? `“${thread.anchor.text}”` : thread.quote ? `“${thread.quote}”` : 'Whole cell')
    const comments = thread.comments.map((c) => {
      const text = h('div', { class: 'comment-body' })
      if (c.deleted) text.append(h('em', {}, 'deleted'))
      else text.replaceChildren(this.commentBody(c))
      const mine = c.author === this.nb.me.username && !c.deleted
      return h('div', { class: 'comment' },
        h('div', { class: 'meta' }, h('strong', {}, c.author), ' · ', new Date(c.created_at).toLocaleString(), c.edited_at && !c.deleted ? ' (edited)' : '',
          mine ? h('button', { class: 'link', onclick: async () => { const body = prompt('Edit comment', c.body); if (body) { try { await api('PATCH', `${base}/comments/${c.id}`, { body }); this.loadThreads() } catch (e) { toast(e.message, 'error') } } } }, 'edit') : null,
          mine ? h('button', { class: 'link', onclick: async () => { if (confirm('Delete this comment?')) { await api('DELETE', `${base}/comments/${c.id}`); this.loadThreads() } } }, 'delete') : null),
        text)
    })
    const el = h('article', { class: `thread ${thread.resolved ? 'resolved' : ''} ${thread.id === this.focusedThread ? 'focused' : ''}`, 'data-thread': thread.id }, quote, ...comments)
    if (this.canComment) {
      // A draft survives the panel being drawn again (someone else's comment arriving).
      this.drafts ??= new Map()
      const reply = h('input', { placeholder: 'Reply…', 'aria-label': 'reply', maxlength: 10000, value: this.drafts.get(thread.id) || '' })
      reply.addEventListener('input', () => this.drafts.set(thread.id, reply.value))
      const error = h('p', { class: 'error', role: 'alert', 'data-testid': 'reply-error' })
      const form = h('form', { class: 'row' }, reply, h('button', { type: 'submit' }, 'Reply'),
        h('button', { type: 'button', onclick: async () => { await api('POST', `${base}/${thread.resolved ? 'reopen' : 'resolve'}`); this.loadThreads() } }, thread.resolved ? 'Reopen' : 'Resolve'))
      form.addEventListener('submit', async (event) => {
        event.preventDefault()
        if (!reply.value.trim()) return
        error.textContent = ''
        try {
          await api('POST', `${base}/comments`, { body: reply.value })
          this.drafts.delete(thread.id)
          this.loadThreads()
        } catch (e) { error.textContent = e.message }
      })
      el.append(form, error)
    }
    return el
  }
}
