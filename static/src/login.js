import { api, h } from './api.js'
import { sameOriginTarget } from './redirect.js'

export function loginPage (root) {
  const error = h('p', { class: 'error', role: 'alert' })
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autofocus: true })
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })
  // "Sign in with ..." for single sign-on, from the server's settings (none by default).
  const providers = h('div', { class: 'providers', 'data-testid': 'login-providers' })
  const form = h('form', { class: 'card login' },
    h('h1', {}, 'Tandem'),
    h('label', {}, 'Username', username),
    h('label', {}, 'Password', password),
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    error,
    providers)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    error.textContent = ''
    try {
      await api('POST', '/api/auth/login', { username: username.value, password: password.value })
      location.href = sameOriginTarget(new URLSearchParams(location.search).get('next'), location.origin)
    } catch (e) {
      error.textContent = e.message
    }
  })
  api('GET', '/api/auth/providers').then((list) => {
    providers.replaceChildren(...list.map((p) => h('a', { class: 'provider', href: p.url }, `Sign in with ${p.name}`)))
  }).catch(() => {})
  root.replaceChildren(form)
}
