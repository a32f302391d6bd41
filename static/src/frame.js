// The document inside a sandboxed output iframe (opaque origin, no access to the page):
// it receives one output's HTML from the page, shows it, and reports its height.
// JupyterLab's look for tables (a pandas DataFrame) and the page's font, under every rule
// of the output's own: :where() weighs nothing, so any selector of the output wins.
const LOOK = '<style>:where(body){font:13px/1.4 system-ui,sans-serif;margin:0}:where(table){border-collapse:collapse;border:none;font-size:12px}:where(th,td){padding:.25em .6em;text-align:right;vertical-align:middle;border:none}:where(thead){border-bottom:1px solid #bdbdbd}:where(thead th){font-weight:600}:where(tbody tr:nth-child(odd)){background:#f5f5f5}:where(tbody tr:hover){background:#e3f2fd}</style>'
window.addEventListener('message', (event) => {
  const data = event.data
  if (event.source !== window.parent || !data || typeof data.tandemFrame !== 'number') return
  const report = `<script>(() => { const send = () => parent.postMessage({ tandemFrame: ${data.tandemFrame}, height: document.documentElement.scrollHeight }, '*'); new ResizeObserver(send).observe(document.documentElement); send() })()</script>`
  document.open()
  document.write(String(data.html) + LOOK + report)
  document.close()
}, { once: true })
