// Where to go after signing in: a page of this site, whatever `next` says. It is parsed
// as a URL against our origin, as the browser will read it (`/\host`, `//host`, tabs and
// `javascript:` included), and only a same-origin http(s) URL is kept. The whole URL is
// returned, never its path alone: a path can itself read as another host (`/.//evil`
// resolves to the path `//evil`, which the browser would take as protocol-relative).
export function sameOriginTarget (next, origin) {
  const home = new URL('/', origin).href
  if (typeof next !== 'string' || !next) return home
  let url
  try {
    url = new URL(next, origin)
  } catch {
    return home
  }
  if (url.origin !== new URL(origin).origin || !['http:', 'https:'].includes(url.protocol)) return home
  return url.href
}
