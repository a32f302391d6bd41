// /admin: accounts and invite links, for admins (the server refuses everyone else, page and
// API alike). Passwords and invite links the server makes are shown once.
import { api, h, toast } from './api.js'

const ROLES = ['viewer', 'commenter', 'editor']

export async function adminPage (root) {
  const me = await api('GET', '/api/me')
  const users = h('tbody', { 'data-testid': 'users' })
  const invites = h('ul', { class: 'plain', 'data-testid': 'invites' })
  const events = h('ul', { class: 'plain audit', 'data-testid': 'account-audit' })
  const shown = h('div', { class: 'shown-once', 'data-testid': 'shown-once', role: 'status' })

  // A secret the server made, shown here once with a button that copies it.
  const showOnce = (text, value) => shown.replaceChildren(h('p', {}, text),
    h('input', { readonly: true, value, 'aria-label': 'shown once', 'data-testid': 'secret' }),
    h('button', { type: 'button', onclick: () => navigator.clipboard?.writeText(value).then(() => toast('Copied')) }, 'Copy'))

  async function refresh () {
    const [people, links, audit] = await Promise.all([api('GET', '/api/admin/users'), api('GET', '/api/admin/invites'), api('GET', '/api/admin/audit')])
    users.replaceChildren(...people.map(userRow))
    invites.replaceChildren(...links.map(inviteRow))
    events.replaceChildren(...audit.slice(0, 50).map((e) => h('li', {},
      h('span', {}, `${e.actor} · ${e.action}${e.target ? ' · ' + e.target : ''}`),
      h('span', { class: 'muted' }, new Date(e.created_at).toLocaleString()))))
  }

  function userRow (user) {
    const kind = user.is_guest ? 'guest' : user.is_admin ? 'admin' : 'user'
    const reset = h('button', {
      onclick: async () => {
        const chosen = prompt(`New password for ${user.username} (leave empty to make one)`, '')
        if (chosen === null) return
        try {
          const done = await api('POST', `/api/admin/users/${encodeURIComponent(user.username)}/password`, chosen ? { password: chosen } : {})
          const ended = `${done.sessions_revoked} browser session${done.sessions_revoked === 1 ? '' : 's'} of ${user.username} signed out (API tokens are kept).`
          if (done.password) showOnce(`New password for ${user.username}, shown once. ${ended}`, done.password)
          else shown.replaceChildren(h('p', {}, `Password changed. ${ended}`))
          refresh()
        } catch (e) { toast(e.message, 'error') }
      }
    }, 'Reset password')
    const toggle = user.id === me.id ? null : h('button', {
      class: user.disabled ? '' : 'danger',
      onclick: async () => {
        if (!user.disabled && !confirm(`Disable ${user.username}? Their sessions end and their tokens stop working.`)) return
        try { await api('PATCH', `/api/admin/users/${encodeURIComponent(user.username)}`, { disabled: !user.disabled }); refresh() } catch (e) { toast(e.message, 'error') }
      }
    }, user.disabled ? 'Enable' : 'Disable')
    return h('tr', { 'data-user': user.username, class: user.disabled ? 'disabled' : '' },
      h('td', {}, user.username), h('td', {}, kind), h('td', {}, user.disabled ? 'disabled' : 'active'),
      h('td', { class: 'actions' }, user.is_guest ? null : reset, toggle))
  }

  function inviteRow (invite) {
    const what = [invite.label || 'invite', invite.notebook_id ? `${invite.role} on ${invite.notebook_id}` : null,
      invite.used_by ? `used by ${invite.used_by}` : invite.active ? `until ${new Date(invite.expires_at).toLocaleString()}` : 'ended'].filter(Boolean).join(' · ')
    return h('li', { class: invite.active ? '' : 'inactive' }, h('span', {}, what),
      invite.active ? h('button', { class: 'link danger', onclick: async () => { await api('DELETE', `/api/admin/invites/${invite.id}`); refresh() } }, 'revoke') : null)
  }

  // New user: with a password chosen here, or one the server makes.
  const name = h('input', { placeholder: 'username', 'aria-label': 'new username', maxlength: 64, required: true })
  const password = h('input', { type: 'password', placeholder: 'password (empty: make one)', 'aria-label': 'new user password', autocomplete: 'new-password', maxlength: 1024 })
  const admin = h('input', { type: 'checkbox', 'aria-label': 'admin' })
  const create = h('form', { class: 'row wrap' }, name, password, h('label', {}, admin, ' admin'), h('button', { type: 'submit', class: 'primary' }, 'Create user'))
  create.addEventListener('submit', async (event) => {
    event.preventDefault()
    try {
      const made = await api('POST', '/api/admin/users', { username: name.value, password: password.value || undefined, is_admin: admin.checked })
      if (made.password) showOnce(`Password for ${made.user.username}, shown once:`, made.password)
      else shown.replaceChildren(h('p', {}, `Created ${made.user.username}.`))
      create.reset()
      refresh()
    } catch (e) { toast(e.message, 'error') }
  })

  // New invite: a one-time link, optionally into one of the admin's notebooks.
  const mine = (await api('GET', '/api/notebooks')).filter((nb) => nb.role === 'owner')
  const label = h('input', { placeholder: 'label (optional)', 'aria-label': 'invite label', maxlength: 100 })
  const days = h('input', { type: 'number', min: 1, max: 90, value: 7, 'aria-label': 'invite days', style: 'width:5em' })
  const notebook = h('select', { 'aria-label': 'invite notebook' }, h('option', { value: '' }, 'no notebook'), ...mine.map((nb) => h('option', { value: nb.id }, nb.title)))
  const role = h('select', { 'aria-label': 'invite role' }, ...ROLES.map((r) => h('option', { value: r, selected: r === 'editor' }, r)))
  // A role means something only with a notebook to join.
  const syncRole = () => { role.disabled = !notebook.value }
  notebook.addEventListener('change', syncRole)
  syncRole()
  const invite = h('form', { class: 'row wrap' }, label, notebook, role, days, h('span', { class: 'muted' }, 'days'), h('button', { type: 'submit', class: 'primary' }, 'Create invite link'))
  invite.addEventListener('submit', async (event) => {
    event.preventDefault()
    try {
      const made = await api('POST', '/api/admin/invites', { label: label.value, days: Number(days.value) || 7, notebook_id: notebook.value || undefined, role: notebook.value ? role.value : undefined })
      showOnce('Invite link, shown once (it works once):', `${location.origin}/invite/${made.token}`)
      invite.reset()
      syncRole()
      refresh()
    } catch (e) { toast(e.message, 'error') }
  })

  root.replaceChildren(
    h('header', { class: 'bar' }, h('a', { class: 'home', href: '/' }, 'Tandem'), h('h1', {}, 'Admin'), h('span', { class: 'spacer' }), h('span', { class: 'who' }, me.username)),
    h('main', { class: 'list admin' },
      shown,
      h('h2', {}, 'People'), create,
      h('table', { class: 'notebooks' }, h('thead', {}, h('tr', {}, h('th', {}, 'Username'), h('th', {}, 'Kind'), h('th', {}, 'State'), h('th', {}))), users),
      h('h2', {}, 'Invite links'), invite, invites,
      h('h2', {}, 'Account changes'), events))
  await refresh()
}
