// Markdown cells, comments and text/markdown outputs: markdown-it, KaTeX for $...$ and
// $$...$$, and the page's one sanitiser over the result (sanitize.js), so no script,
// handler, overlay or page-wide style from a notebook or a comment reaches the page.
import MarkdownIt from 'markdown-it'
import katex from 'katex'
import { sanitizeHtml, sanitizeMath } from './sanitize.js'

const md = new MarkdownIt({ html: true, linkify: true })
const PLACEHOLDER = /TANDEMMATH(\d+)X/

function renderMath (tex, displayMode) {
  // maxSize (in em) caps \rule, \kern and friends: a formula stays formula-sized.
  return katex.renderToString(tex, { displayMode, throwOnError: false, trust: false, maxSize: 50, output: 'htmlAndMathml' })
}

// A DocumentFragment to put in the page (never a string to parse again).
export function renderMarkdown (source) {
  // Math is cut out before markdown runs (so `_` and `*` in TeX stay TeX) and put back
  // rendered, into text only, after the author's HTML is sanitised: placeholders are plain
  // letters markdown leaves alone (one in an attribute stays as it is).
  const math = []
  const keep = (tex, display) => {
    math.push(renderMath(tex, display))
    return `TANDEMMATH${math.length - 1}X`
  }
  let text = source.replace(/\$\$([\s\S]+?)\$\$/g, (_, tex) => keep(tex, true))
  text = text.replace(/(^|[^\\$])\$([^\s$](?:[^$\n]*?[^\s$])?)\$/g, (_, before, tex) => before + keep(tex, false))
  const fragment = sanitizeHtml(md.render(text))
  if (math.length) putMathBack(fragment, math)
  return fragment
}

function putMathBack (fragment, math) {
  const walker = fragment.ownerDocument.createTreeWalker(fragment, NodeFilter.SHOW_TEXT)
  const found = []
  while (walker.nextNode()) if (PLACEHOLDER.test(walker.currentNode.data)) found.push(walker.currentNode)
  for (const node of found) {
    // split with a group: text, index, text, index, ..., text
    const parts = node.data.split(/TANDEMMATH(\d+)X/)
    node.replaceWith(...parts.map((part, i) => i % 2 === 0 ? part : math[Number(part)] === undefined ? `TANDEMMATH${part}X` : sanitizeMath(math[Number(part)])))
  }
}

export function renderLatex (tex) {
  const inner = tex.trim().replace(/^\$\$?|\$\$?$/g, '')
  return sanitizeMath(renderMath(inner, true))
}
