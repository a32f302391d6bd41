import { api, h, toast } from './api.js'
import { forgetEverything } from './offline.js'

export async function listPage (root) {
  const me = await api('GET', '/api/me')
  const rows = h('tbody')
  const table = h('table', { class: 'notebooks' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Title'), h('th', {}, 'Owner'), h('th', {}, 'Your role'), h('th', {}, 'Updated'), h('th', {}))),
    rows)
  const fileInput = h('input', { type: 'file', accept: '.ipynb,application/json', hidden: true })
  const drop = h('div', { class: 'drop', 'data-testid': 'drop' }, 'Drop an .ipynb here to import it')

  async function refresh () {
    const notebooks = await api('GET', '/api/notebooks')
    rows.replaceChildren(...notebooks.map(row))
    if (!notebooks.length) rows.append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No notebooks yet.')))
  }

  function row (nb) {
    const open = h('a', { href: `/n/${encodeURIComponent(nb.id)}`, class: 'title' }, nb.title)
    const actions = h('td', { class: 'actions' },
      h('a', { href: `/api/notebooks/${encodeURIComponent(nb.id)}/export`, download: '' }, 'Download'))
    if (nb.role === 'owner' || nb.role === 'editor') {
      actions.append(h('button', {
        onclick: async () => {
          const title = prompt('New title', nb.title)
          if (!title) return
          try { await api('PATCH', `/api/notebooks/${nb.id}`, { title }); refresh() } catch (e) { toast(e.message, 'error') }
        }
      }, 'Rename'))
    }
    if (nb.role === 'owner') {
      actions.append(h('button', {
        class: 'danger',
        onclick: async () => {
          if (!confirm(`Delete "${nb.title}"? This cannot be undone.`)) return
          try { await api('DELETE', `/api/notebooks/${nb.id}`); refresh() } catch (e) { toast(e.message, 'error') }
        }
      }, 'Delete'))
    }
    return h('tr', {}, h('td', {}, open), h('td', {}, nb.owner), h('td', {}, nb.role),
      h('td', {}, new Date(nb.updated_at).toLocaleString()), actions)
  }

  async function upload (file) {
    const form = new FormData()
    form.append('file', file)
    try {
      const nb = await api('POST', '/api/notebooks', form)
      location.href = `/n/${nb.id}`
    } catch (e) {
      toast(`Import failed: ${e.message}`, 'error')
    }
  }
  fileInput.addEventListener('change', () => fileInput.files[0] && upload(fileInput.files[0]))
  for (const target of [drop, document.body]) {
    target.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over') })
    target.addEventListener('dragleave', () => drop.classList.remove('over'))
    target.addEventListener('drop', (e) => {
      e.preventDefault()
      drop.classList.remove('over')
      const file = e.dataTransfer.files[0]
      if (file) upload(file)
    })
  }

  const header = h('header', { class: 'bar' },
    h('h1', {}, 'Tandem'),
    h('span', { class: 'spacer' }),
    h('span', { class: 'who' }, me.username),
    me.is_admin ? h('a', { href: '/admin', 'data-testid': 'admin-link' }, 'Admin') : null,
    me.is_guest ? null : h('a', { href: '/account', 'data-testid': 'account-link' }, 'Account'),
    h('button', { onclick: async () => { await api('POST', '/api/auth/logout'); await forgetEverything(me.id); location.href = '/login' } }, 'Sign out'))
  const tools = h('div', { class: 'tools' },
    me.is_guest ? null : h('button', {
      class: 'primary',
      onclick: async () => {
        const title = prompt('Title of the new notebook', 'Untitled')
        if (!title) return
        try { const nb = await api('POST', '/api/notebooks', { title }); location.href = `/n/${nb.id}` } catch (e) { toast(e.message, 'error') }
      }
    }, 'New notebook'),
    me.is_guest ? null : h('button', { onclick: () => fileInput.click() }, 'Import .ipynb'),
    fileInput)
  const mentions = h('section', { class: 'mentions', 'data-testid': 'mentions' })
  root.replaceChildren(header, h('main', { class: 'list' }, tools, me.is_guest ? null : drop, mentions, table))
  await Promise.all([refresh(), showMentions(mentions)])
}

// Comments that mention you, unread first; opening one marks it read.
async function showMentions (box) {
  const mentions = await api('GET', '/api/me/mentions')
  if (!mentions.length) return
  box.replaceChildren(h('h2', {}, 'Mentions'), h('ul', { class: 'plain' }, ...mentions.map((m) => h('li', { class: m.unread ? 'unread' : '' },
    h('a', {
      href: `/n/${encodeURIComponent(m.notebook_id)}#thread=${encodeURIComponent(m.thread_id)}`,
      onclick: () => { api('POST', `/api/notebooks/${m.notebook_id}/threads/${m.thread_id}/read`).catch(() => {}) }
    }, `${m.author}: ${m.excerpt}`),
    h('span', { class: 'muted' }, (m.unread ? 'new · ' : '') + new Date(m.created_at).toLocaleString())))))
}
