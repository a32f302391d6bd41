// The document inside a sandboxed output iframe (opaque origin, no access to the page):
// it receives one output's HTML from the page, shows it, and reports its height.
// JupyterLab's look for tables (a pandas DataFrame) and the page's font, under every rule
// of the output's own: :where() weighs nothing, so any selector of the output wins.
const LOOK = '<style>:where(body){font:13px/1.4 system-ui,sans-serif;margin:0}:where(table){border-collapse:collapse;border:none;font-size:12px}:where(th,td){padding:.25em .6em;text-align:right;vertical-align:middle;border:none}:where(thead){border-bottom:1px solid #bdbdbd}:where(thead th){font-weight:600}:where(tbody tr:nth-child(odd)){background:#f5f5f5}:where(tbody tr:hover){background:#e3f2fd}</style>'
// The page's dark theme, when it is in force: light text on the cell's own background (the
// frame stays transparent: both documents say the same colour-scheme), darker stripes.
const DARK = '<style>:where(html[data-tandem-theme=dark]){color-scheme:dark;color:#e4e7ec}:where(html[data-tandem-theme=dark] thead){border-bottom-color:#475467}:where(html[data-tandem-theme=dark] tbody tr:nth-child(odd)){background:#262b36}:where(html[data-tandem-theme=dark] tbody tr:hover){background:#1e3a5f}:where(html[data-tandem-theme=dark] a){color:#84adff}</style>'
window.addEventListener('message', (event) => {
  const data = event.data
  if (event.source !== window.parent || !data || typeof data.tandemFrame !== 'number') return
  const theme = data.theme === 'dark' ? 'dark' : 'light'
  // The page tells a change of theme later, by the same kind of message.
  const report = `<script>(() => { const send = () => parent.postMessage({ tandemFrame: ${data.tandemFrame}, height: document.documentElement.scrollHeight }, '*'); new ResizeObserver(send).observe(document.documentElement); send(); const theme = (t) => { document.documentElement.dataset.tandemTheme = t === 'dark' ? 'dark' : 'light' }; theme('${theme}'); addEventListener('message', (e) => { if (e.source === parent && e.data && typeof e.data.tandemTheme === 'string') theme(e.data.tandemTheme) }) })()</script>`
  document.open()
  document.write(String(data.html) + LOOK + DARK + report)
  document.close()
}, { once: true })
