// Vega and Vega-Lite (Altair's charts) through vega-embed, with vega's expression
// interpreter instead of generated code (no eval: the frame's policy forbids it) and no
// actions menu (its links lead to the web, which the frame cannot reach anyway).
import vegaEmbed from 'vega-embed'
import { expressionInterpreter } from 'vega-interpreter'

// vega-embed lets a spec's `usermeta.embedOptions` override the options given here; of
// those only the look is kept (a spec cannot turn generated code, a loader or actions on).
const LOOK = ['theme', 'padding', 'config', 'scaleFactor', 'width', 'height', 'renderer']

function withLookOnly (spec) {
  const asked = spec?.usermeta?.embedOptions
  if (!asked || typeof asked !== 'object') return spec
  const kept = Object.fromEntries(LOOK.filter((key) => key in asked).map((key) => [key, asked[key]]))
  return { ...spec, usermeta: { ...spec.usermeta, embedOptions: kept } }
}

self.tandemRenderers = self.tandemRenderers || {}
self.tandemRenderers.vega = async (element, spec, { mime, theme }) => {
  const mode = mime.includes('vegalite') ? 'vega-lite' : 'vega'
  await vegaEmbed(element, withLookOnly(spec), {
    mode,
    actions: false,
    ast: true,
    expr: expressionInterpreter,
    renderer: 'svg',
    ...(theme === 'dark' ? { theme: 'dark' } : {}),
  })
}
