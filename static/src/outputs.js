// Cell outputs, rendered so that nothing a kernel sends runs with the page's origin:
// text goes in as text, ANSI colours through ansi_up (which escapes), SVG and markdown
// through the page's sanitiser (sanitize.js), and HTML / JavaScript only inside a sandboxed iframe without
// allow-same-origin (served by /frame, which has its own policy).
import { AnsiUp } from 'ansi_up'
import { foldConsole } from './ansi.js'
import { h } from './api.js'
import { renderLatex, renderMarkdown } from './markdown.js'
import { sanitizeSvg } from './sanitize.js'
import { CHART_MIMES } from './renderers/kinds.js'
import { outputProblem } from './schema.js'

const ansi = new AnsiUp()
ansi.use_classes = true
const COLLAPSE_LINES = 200

function text (value) {
  return Array.isArray(value) ? value.join('') : String(value ?? '')
}

function ansiBlock (value, cls) {
  const pre = h('pre', { class: cls })
  pre.innerHTML = ansi.ansi_to_html(value) // ansi_up escapes <, >, & and quotes
  return collapsible(pre, value)
}

// A long block is shown collapsed, in full, or scrolled in a box of its own (JupyterLab's
// "Enable scrolling for outputs", per output). Outputs are drawn again whenever their cell
// changes (a stream grows), so the choice, and where a scrolled box was, is kept by the
// block's first characters, which a growing stream does not change.
const views = new Map()
const VIEWS_KEPT = 200

function collapsible (pre, value) {
  const lines = value.split('\n').length
  if (lines <= COLLAPSE_LINES) return pre
  const key = `${pre.className}\n${value.slice(0, 500)}`
  const view = views.get(key) || { mode: 'collapsed', top: 0, bottom: true }
  const more = h('button', { class: 'link show-more', 'data-testid': 'show-more' })
  const scroll = h('button', { class: 'link scroll-toggle', 'data-testid': 'scroll-toggle' })
  const show = (mode) => {
    view.mode = mode
    views.delete(key)
    views.set(key, view)
    if (views.size > VIEWS_KEPT) views.delete(views.keys().next().value)
    pre.classList.toggle('collapsed', mode === 'collapsed')
    pre.classList.toggle('scrolled', mode === 'scrolled')
    more.textContent = mode === 'full' ? 'Show less' : `Show all ${lines} lines`
    scroll.textContent = mode === 'scrolled' ? 'Full height' : 'Scroll'
  }
  more.addEventListener('click', () => show(view.mode === 'full' ? 'collapsed' : 'full'))
  scroll.addEventListener('click', () => show(view.mode === 'scrolled' ? 'full' : 'scrolled'))
  pre.addEventListener('scroll', () => {
    if (view.mode !== 'scrolled') return
    view.top = pre.scrollTop
    view.bottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4
  })
  // A scrolled box follows a stream at its end, and stays where it was read otherwise.
  // (The cell puts the block in the page right after drawing it.)
  requestAnimationFrame(() => {
    if (view.mode === 'scrolled') pre.scrollTop = view.bottom ? pre.scrollHeight : view.top
  })
  show(view.mode)
  return h('div', { class: 'long-output' }, pre, h('div', { class: 'output-views' }, more, scroll))
}

let frames = 0
window.addEventListener('message', (event) => {
  const data = event.data
  if (!data || typeof data.tandemFrame !== 'number') return
  const frame = document.querySelector(`iframe[data-frame="${data.tandemFrame}"]`)
  if (frame && event.source === frame.contentWindow) frame.style.height = Math.min(Math.max(data.height, 20), 2000) + 'px'
})

// The frame gets its HTML on every load, not only the first: a browser reloads an iframe
// whenever it is taken out of the page and put back (a cell list drawn again after a cell
// is added, deleted or moved), and a frame fed once then stayed an empty box. A load that
// the written document itself causes is answered too, and ignored there (frame.js takes
// one message only).
function sandboxed (html) {
  return framed('/frame', { html, theme: document.documentElement.dataset.theme })
}

// Plotly, Vega and GeoJSON outputs are drawn in a frame of their own (/frame/chart):
// sandboxed like the HTML frame, and besides allowed no script but our renderers. The
// theme is a hook for a dark editor; the renderers only pass it on.
function chart (mime, value) {
  const theme = document.documentElement.dataset.theme === 'dark' ? 'dark' : 'light'
  const frame = framed('/frame/chart', { mime, value, theme })
  frame.classList.add('chart-frame')
  frame.dataset.mime = mime
  return frame
}

function framed (src, message) {
  const id = ++frames
  const frame = h('iframe', { class: 'output-frame', sandbox: 'allow-scripts', src, 'data-frame': id, title: 'output' })
  frame.addEventListener('load', () => frame.contentWindow?.postMessage({ tandemFrame: id, ...message }, '*'))
  return frame
}

// Widget views (ipywidgets) are drawn by widgets.js once a notebook sets it up; without it,
// their text/plain stands in.
let widgetRenderer = null
export function setWidgetRenderer (render) { widgetRenderer = render }
const WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'

const ORDER = [...CHART_MIMES, 'application/javascript', 'text/html', 'text/markdown', 'text/latex', 'image/svg+xml', 'image/png', 'image/jpeg', 'application/json', 'text/plain']

function richest (data) {
  for (const mime of ORDER) if (data[mime] !== undefined) return mime
  return null
}

function renderData (data) {
  if (data[WIDGET_VIEW] && widgetRenderer) return widgetRenderer(data)
  const mime = richest(data)
  const value = data[mime]
  if (CHART_MIMES.includes(mime)) return chart(mime, value)
  switch (mime) {
    case 'application/javascript':
      // As in Jupyter, the script gets `element`, the node its output may fill.
      return sandboxed(`<body><div id="output"></div><script>const element = document.getElementById('output');\n${text(value).replace(/<\/script/gi, '<\\/script')}</script></body>`)
    case 'text/html':
      return sandboxed(text(value))
    case 'text/markdown': {
      const div = h('div', { class: 'markdown' })
      div.replaceChildren(renderMarkdown(text(value)))
      return div
    }
    case 'text/latex': {
      const div = h('div', { class: 'latex' })
      div.replaceChildren(renderLatex(text(value)))
      return div
    }
    case 'image/svg+xml': {
      const div = h('div', { class: 'svg' })
      div.replaceChildren(sanitizeSvg(text(value)))
      return div
    }
    case 'image/png':
    case 'image/jpeg':
      return h('img', { src: `data:${mime};base64,${text(value).replace(/\s/g, '')}`, alt: 'output image' })
    case 'application/json':
      return h('pre', { class: 'json' }, JSON.stringify(value, null, 2))
    case 'text/plain':
      return ansiBlock(text(value), 'plain')
    default:
      return h('pre', { class: 'plain' }, `[${Object.keys(data).join(', ')}]`)
  }
}

// An output that breaks the schema (a document from before the server guarded it) is a
// note in its cell, not a broken cell.
export function renderOutput (output) {
  const problem = outputProblem(output)
  if (problem) return unrenderable(problem)
  try {
    return renderValid(output)
  } catch (error) {
    return unrenderable(`it could not be drawn (${error.message})`)
  }
}

function unrenderable (reason) {
  return h('p', { class: 'unrenderable-output', 'data-testid': 'unrenderable-output' }, `Unrenderable output: ${reason}.`)
}

function renderValid (output) {
  switch (output.output_type) {
    case 'stream':
      return ansiBlock(foldConsole(text(output.text)), `stream ${output.name === 'stderr' ? 'stderr' : 'stdout'}`)
    case 'error':
      return ansiBlock((output.traceback || []).join('\n') || `${output.ename}: ${output.evalue}`, 'error')
    case 'display_data':
    case 'execute_result': {
      const node = renderData(output.data || {})
      if (output.metadata && output.metadata.tandem_truncated) node.classList.add('truncated')
      return node
    }
    default:
      return h('pre', { class: 'plain' }, `[${output.output_type}]`)
  }
}
