// The one sanitiser for what people and kernels put on the page outside a sandboxed frame:
// markdown cells, comments, and markdown, LaTeX and SVG outputs. DOMPurify takes out
// scripts, handlers and javascript: URLs; the hooks here keep the look but not the danger:
// - inline styles go through content-policy.js (no position, z-index, transform, url(),
//   negative margins), parsed by the browser's own CSS parser, so what is checked is
//   what the browser would apply;
// - the author's classes are renamed (`user-…`) and ids prefixed (`user-content-…`), so
//   none is the page's own (`#toasts`, `.bar`) and none clobbers a global;
// - nothing opens in the top layer (popover, invoker commands, dialog), above any CSS;
// - no style sheet (it would restyle the whole page) and no form;
// - links open in a new tab with rel="noopener noreferrer".
// The result is a DOM fragment, never a string parsed again. The boxes it goes into keep
// it in them too (app.css: `contain: paint` on `.rendered`, `.output`, `.comment-body`).
import DOMPurify from 'dompurify'
import { keepDeclaration, userClasses } from './content-policy.js'

const SVG_NS = 'http://www.w3.org/2000/svg'
const TOP_LAYER_ATTRS = ['popover', 'popovertarget', 'popovertargetaction', 'command', 'commandfor', 'interestfor']
const CONFIG = {
  FORBID_TAGS: ['style', 'form', 'dialog'],
  FORBID_ATTR: TOP_LAYER_ATTRS,
  SANITIZE_NAMED_PROPS: true,
  RETURN_DOM_FRAGMENT: true
}
const HTML = { ...CONFIG, USE_PROFILES: { html: true, svg: true, mathMl: true } }
const SVG = { ...CONFIG, USE_PROFILES: { svg: true, svgFilters: true } }

let probe = null

// The declarations of a style attribute that the policy keeps, as the browser parses them
// (shorthands come out as longhands: `inset: 0` is top, right, bottom and left).
export function cleanStyle (text, context) {
  probe ??= document.createElement('span')
  probe.style.cssText = text
  const kept = []
  for (const property of probe.style) {
    const value = probe.style.getPropertyValue(property)
    if (keepDeclaration(property, value, context)) kept.push(`${property}: ${value}`)
  }
  probe.style.cssText = ''
  return kept.join('; ')
}

// `math`: KaTeX's own output, whose classes are KaTeX's and whose offsets lay out formulas.
function purifier (source) {
  const purify = DOMPurify(window)
  purify.addHook('uponSanitizeAttribute', (node, data) => {
    if (data.attrName === 'style') {
      data.attrValue = cleanStyle(data.attrValue, source === 'math' ? 'math' : node.namespaceURI === SVG_NS ? 'svg' : 'html')
    } else if (data.attrName === 'class' && source === 'user') {
      data.attrValue = userClasses(data.attrValue)
    } else {
      return
    }
    if (!data.attrValue) data.keepAttr = false
  })
  purify.addHook('afterSanitizeAttributes', (node) => {
    const link = node.localName === 'a' || node.localName === 'area'
    if (link && (node.hasAttribute('href') || node.hasAttribute('xlink:href'))) {
      node.setAttribute('target', '_blank')
      node.setAttribute('rel', 'noopener noreferrer')
    }
  })
  return purify
}

const user = purifier('user')
const math = purifier('math')

export const sanitizeHtml = (html) => user.sanitize(html, HTML)
export const sanitizeSvg = (svg) => user.sanitize(svg, SVG)
export const sanitizeMath = (html) => math.sanitize(html, HTML)
