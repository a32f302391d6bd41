// Vega and Vega-Lite (Altair's charts) through vega-embed, with vega's expression
// interpreter instead of generated code (no eval: the frame's policy forbids it) and no
// actions menu (its links lead to the web, which the frame cannot reach anyway).
import vegaEmbed from 'vega-embed'
import { expressionInterpreter } from 'vega-interpreter'

self.tandemRenderers = self.tandemRenderers || {}
self.tandemRenderers.vega = async (element, spec, { mime, theme }) => {
  const mode = mime.includes('vegalite') ? 'vega-lite' : 'vega'
  await vegaEmbed(element, spec, {
    mode,
    actions: false,
    ast: true,
    expr: expressionInterpreter,
    renderer: 'svg',
    ...(theme === 'dark' ? { theme: 'dark' } : {}),
  })
}
