// /account: change one's own password. /invite/TOKEN: make an account from an invite link.
import { api, h } from './api.js'

const field = (label, input) => h('label', {}, label, input)

export async function accountPage (root) {
  const me = await api('GET', '/api/me')
  const current = h('input', { type: 'password', autocomplete: 'current-password', required: true, 'aria-label': 'current password' })
  const fresh = h('input', { type: 'password', autocomplete: 'new-password', required: true, maxlength: 1024, 'aria-label': 'new password' })
  const again = h('input', { type: 'password', autocomplete: 'new-password', required: true, maxlength: 1024, 'aria-label': 'new password again' })
  const message = h('p', { role: 'status', 'data-testid': 'account-message' })
  const form = h('form', { class: 'card login' },
    h('h1', {}, 'Your account'),
    h('p', { class: 'muted' }, `Signed in as ${me.username}`),
    field('Current password', current), field('New password', fresh), field('New password again', again),
    h('button', { type: 'submit', class: 'primary' }, 'Change password'),
    message,
    h('a', { href: '/' }, 'Back to notebooks'))
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    message.className = ''
    if (fresh.value !== again.value) {
      message.className = 'error'
      message.textContent = 'The new passwords differ.'
      return
    }
    try {
      await api('POST', '/api/me/password', { current_password: current.value, new_password: fresh.value })
      form.reset()
      message.textContent = 'Password changed. Your other sessions were signed out; this one stays.'
    } catch (e) {
      message.className = 'error'
      message.textContent = e.message
    }
  })
  root.replaceChildren(form)
}

export async function invitePage (root, token) {
  let info
  try {
    info = await api('POST', '/api/invites/inspect', { token })
  } catch (e) {
    root.replaceChildren(h('div', { class: 'card login' }, h('h1', {}, 'Invite'), h('p', { class: 'error', role: 'alert' }, e.message), h('a', { href: '/login' }, 'Sign in')))
    return
  }
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, maxlength: 64, autofocus: true })
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, maxlength: 1024 })
  const error = h('p', { class: 'error', role: 'alert' })
  const form = h('form', { class: 'card login' },
    h('h1', {}, 'Join Tandem'),
    h('p', {}, info.notebook_title ? `You are invited to “${info.notebook_title}” as ${info.role}.` : 'You are invited to make an account.'),
    h('p', { class: 'muted' }, `This link works once, until ${new Date(info.expires_at).toLocaleString()}.`),
    field('Choose a username', username), field('Choose a password', password),
    h('button', { type: 'submit', class: 'primary' }, 'Create account'),
    error)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    error.textContent = ''
    try {
      const done = await api('POST', '/api/invites/accept', { token, username: username.value, password: password.value })
      location.replace(done.notebook_id ? `/n/${done.notebook_id}` : '/')
    } catch (e) {
      error.textContent = e.message
    }
  })
  root.replaceChildren(form)
}
