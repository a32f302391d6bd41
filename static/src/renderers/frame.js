// The document of a chart frame (/frame/chart): a sandboxed iframe with an opaque origin
// and a policy that lets only this server's scripts run (no inline script, no eval, no
// network), so a hostile Plotly or Vega spec can neither reach the page nor run its own
// code here. It takes one output from the page, loads the renderer for its type on
// demand (static/dist/renderers/*.js), draws it, and reports its height.
import { KINDS } from './kinds.js'

function load (kind) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script')
    script.src = `/static/renderers/${kind}.js`
    script.onload = resolve
    script.onerror = () => reject(new Error(`the ${kind} renderer did not load`))
    document.head.append(script)
  })
}

function reportHeight (id) {
  const send = () => parent.postMessage({ tandemFrame: id, height: document.documentElement.scrollHeight }, '*')
  new ResizeObserver(send).observe(document.documentElement)
  send()
}

window.addEventListener('message', async (event) => {
  const data = event.data
  if (event.source !== window.parent || !data || typeof data.tandemFrame !== 'number') return
  const element = document.getElementById('output')
  const kind = KINDS[data.mime]
  reportHeight(data.tandemFrame)
  try {
    if (!kind) throw new Error(`no renderer for ${data.mime}`)
    await load(kind)
    await self.tandemRenderers[kind](element, data.value, { mime: data.mime, theme: data.theme === 'dark' ? 'dark' : 'light' })
  } catch (error) {
    element.replaceChildren()
    element.className = 'failed'
    element.textContent = `This output could not be drawn: ${error.message}`
  }
})
