// The document inside a sandboxed output iframe (opaque origin, no access to the page):
// it receives one output's HTML from the page, shows it, and reports its height.
window.addEventListener('message', (event) => {
  const data = event.data
  if (event.source !== window.parent || !data || typeof data.tandemFrame !== 'number') return
  const report = `<script>(() => { const send = () => parent.postMessage({ tandemFrame: ${data.tandemFrame}, height: document.documentElement.scrollHeight }, '*'); new ResizeObserver(send).observe(document.documentElement); send() })()</script>`
  document.open()
  document.write(String(data.html) + report)
  document.close()
}, { once: true })
