// Markdown cells and text/markdown outputs: markdown-it, KaTeX for $...$ and $$...$$,
// and DOMPurify over the result, so no script or handler from a notebook reaches the page.
import MarkdownIt from 'markdown-it'
import katex from 'katex'
import DOMPurify from 'dompurify'

const md = new MarkdownIt({ html: true, linkify: true })

// Links may only go to the web or to anchors: no javascript:, no data: documents.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank')
    node.setAttribute('rel', 'noopener noreferrer')
  }
})

function renderMath (tex, displayMode) {
  return katex.renderToString(tex, { displayMode, throwOnError: false, trust: false, output: 'htmlAndMathml' })
}

export function renderMarkdown (source) {
  // Math is cut out before markdown runs (so `_` and `*` in TeX stay TeX) and put back
  // rendered; placeholders are plain letters markdown leaves alone.
  const math = []
  const keep = (tex, display) => {
    math.push(renderMath(tex, display))
    return `TANDEMMATH${math.length - 1}X`
  }
  let text = source.replace(/\$\$([\s\S]+?)\$\$/g, (_, tex) => keep(tex, true))
  text = text.replace(/(^|[^\\$])\$([^\s$](?:[^$\n]*?[^\s$])?)\$/g, (_, before, tex) => before + keep(tex, false))
  let html = md.render(text)
  html = html.replace(/TANDEMMATH(\d+)X/g, (_, i) => math[Number(i)])
  return sanitize(html)
}

export function sanitize (html) {
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true, svg: true, mathMl: true }, FORBID_TAGS: ['style', 'form'] })
}

export function sanitizeSvg (svg) {
  return DOMPurify.sanitize(svg, { USE_PROFILES: { svg: true, svgFilters: true } })
}

export function renderLatex (tex) {
  const inner = tex.trim().replace(/^\$\$?|\$\$?$/g, '')
  return sanitize(renderMath(inner, true))
}
