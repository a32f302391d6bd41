// REST calls with the session cookie; errors carry the server's reason.
export class ApiError extends Error {
  constructor (status, detail) {
    super(typeof detail === 'string' ? detail : JSON.stringify(detail))
    this.status = status
  }
}

export async function api (method, path, body) {
  const init = { method, credentials: 'same-origin', headers: {} }
  if (body instanceof FormData) {
    init.body = body
  } else if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  const response = await fetch(path, init)
  if (response.status === 401 && !location.pathname.startsWith('/login') && !location.pathname.startsWith('/links/')) {
    location.href = '/login?next=' + encodeURIComponent(location.pathname)
    throw new ApiError(401, 'not signed in')
  }
  const text = await response.text()
  const data = text ? JSON.parse(text) : null
  if (!response.ok) throw new ApiError(response.status, data && data.detail ? data.detail : response.statusText)
  return data
}

// Build DOM without ever parsing strings as HTML: every text goes in as text.
export function h (tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value)
    else if (key === 'class') el.className = value
    else el.setAttribute(key, value === true ? '' : value)
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue
    el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return el
}

export function toast (message, kind = 'info') {
  const box = document.getElementById('toasts') || document.body.appendChild(h('div', { id: 'toasts' }))
  const item = h('div', { class: `toast ${kind}`, role: 'status' }, message)
  box.append(item)
  setTimeout(() => item.remove(), 6000)
}
