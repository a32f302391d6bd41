// What user content (markdown, comments, markdown / LaTeX / SVG outputs) may keep of its
// inline styles and classes: what changes the look of its own text and boxes, never what
// takes it out of its box (position, z-index, transforms, negative margins), loads
// something (url()) or borrows the page's own classes. Pure: sanitize.js has the browser's
// CSS parser split a style attribute into longhand declarations and asks this about each.

const SIDES = ['top', 'right', 'bottom', 'left']
const CORNERS = ['top-left', 'top-right', 'bottom-right', 'bottom-left']

const TEXT = [
  'color', 'background-color', 'opacity',
  'font-family', 'font-size', 'font-style', 'font-weight', 'font-stretch',
  'font-variant', 'font-variant-caps', 'font-variant-ligatures', 'font-variant-numeric',
  'line-height', 'letter-spacing', 'word-spacing',
  'text-align', 'text-indent', 'text-transform', 'vertical-align',
  'text-decoration', 'text-decoration-line', 'text-decoration-style',
  'text-decoration-color', 'text-decoration-thickness',
  'white-space', 'white-space-collapse', 'text-wrap', 'text-wrap-mode', 'word-break',
  'overflow-wrap', 'list-style-type'
]

const BOX = [
  'width', 'height', 'min-width', 'max-width', 'min-height', 'max-height',
  'border-collapse', 'border-spacing',
  ...SIDES.flatMap((side) => [`border-${side}-width`, `border-${side}-style`, `border-${side}-color`, `padding-${side}`, `margin-${side}`]),
  ...CORNERS.map((corner) => `border-${corner}-radius`)
]

// SVG's presentation properties (matplotlib writes its fills and strokes as styles).
const SVG = [
  'fill', 'fill-opacity', 'fill-rule', 'stroke', 'stroke-width', 'stroke-opacity',
  'stroke-linecap', 'stroke-linejoin', 'stroke-miterlimit', 'stroke-dasharray',
  'stroke-dashoffset', 'text-anchor', 'dominant-baseline', 'alignment-baseline',
  'baseline-shift', 'clip-rule', 'shape-rendering', 'stop-color', 'stop-opacity',
  'paint-order', 'vector-effect'
]

// KaTeX lays out math with offsets (top, negative margins, `position: relative`); its
// output is ours, not the author's (no \htmlStyle: trust is off, sizes are capped).
const MATH = ['top', 'bottom', 'left', 'position']

const ALLOWED = {
  html: new Set([...TEXT, ...BOX]),
  svg: new Set([...TEXT, ...BOX, ...SVG]),
  math: new Set([...TEXT, ...BOX, ...SVG, ...MATH])
}

// Anything that loads, computes, refers to or escapes: url(), image-set(), var(), env(),
// attr(), calc() and friends (they can hide a negative), escapes and comments.
const DANGEROUS_VALUE = /(?:url|src|image|image-set|cross-fade|element|paint|expression|var|env|attr|calc|min|max|clamp)\s*\(|[\\<>@]|\/\*/i
// A negative number: a margin that pulls the box over its neighbours.
const NEGATIVE = /(^|[\s(,])-[\d.]/
const VALUE = /^[\w\s#%.,'"()+-]*$/

export function keepDeclaration (property, value, context = 'html') {
  const allowed = ALLOWED[context]
  property = String(property).toLowerCase()
  value = String(value).trim()
  if (!allowed || !allowed.has(property) || !value) return false
  if (!VALUE.test(value) || DANGEROUS_VALUE.test(value)) return false
  if (context === 'math') return property !== 'position' || value === 'relative'
  return !NEGATIVE.test(value)
}

// The author's classes, renamed so none is one of the page's own (`toast`, `panel`, `bar`
// would otherwise bring the page's fixed and sticky positioning); markdown-it's
// `language-*` on code blocks stays as it is.
export function userClasses (value) {
  return String(value).split(/\s+/).filter(Boolean)
    .map((name) => name.startsWith('language-') ? name : `user-${name}`)
    .join(' ')
}
