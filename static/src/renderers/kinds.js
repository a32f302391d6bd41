// The output types drawn by a renderer in a chart frame, richest first, and which
// renderer bundle (static/dist/renderers/<kind>.js) draws each.
export const KINDS = {
  'application/vnd.plotly.v1+json': 'plotly',
  'application/vnd.vegalite.v6+json': 'vega', // Altair 6
  'application/vnd.vegalite.v5+json': 'vega', // Altair 5
  'application/vnd.vegalite.v4+json': 'vega',
  'application/vnd.vegalite.v3+json': 'vega',
  'application/vnd.vega.v6+json': 'vega',
  'application/vnd.vega.v5+json': 'vega',
  'application/vnd.vega.v4+json': 'vega',
  'application/geo+json': 'geojson',
}
export const CHART_MIMES = Object.keys(KINDS)
