import { api, ApiError, h } from './api.js'

// /links/TOKEN: open a share link, as yourself or, where allowed, as a named guest.
export async function linkPage (root, token) {
  const open = async (body) => {
    const result = await api('POST', '/api/links/redeem', body)
    location.replace(`/n/${result.notebook_id}`)
  }
  try {
    await open({ token })
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e
    const name = h('input', { name: 'guest_name', maxlength: 40, required: true, autofocus: true })
    const error = h('p', { class: 'error', role: 'alert' })
    const form = h('form', { class: 'card login' },
      h('h1', {}, 'Join as a guest'), h('label', {}, 'Your name', name),
      h('button', { type: 'submit', class: 'primary' }, 'Join'),
      h('a', { href: `/login?next=${encodeURIComponent(location.pathname)}` }, 'or sign in'), error)
    form.addEventListener('submit', async (event) => {
      event.preventDefault()
      try { await open({ token, guest_name: name.value }) } catch (err) { error.textContent = err.message }
    })
    root.replaceChildren(form)
  }
}
