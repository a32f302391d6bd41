// Plotly figures (`application/vnd.plotly.v1+json`, what `fig.show()` sends from a
// kernel): plotly.js's strict bundle, which needs no eval, so the frame's policy holds.
import Plotly from 'plotly.js-strict-dist-min'

const DARK = { paper_bgcolor: '#1e1e1e', plot_bgcolor: '#1e1e1e', font: { color: '#e0e0e0' } }

self.tandemRenderers = self.tandemRenderers || {}
self.tandemRenderers.plotly = async (element, figure, { theme }) => {
  const layout = { ...(figure.layout || {}), autosize: true }
  if (theme === 'dark') Object.assign(layout, DARK) // a hook, not a theme
  const config = {
    ...(figure.config || {}),
    responsive: true,
    displaylogo: false,
    showLink: false,
    showEditInChartStudio: false,
    showSendToCloud: false,
    // Downloads are not allowed out of the sandbox: no button that cannot work.
    modeBarButtonsToRemove: ['toImage', 'sendDataToCloud'],
  }
  await Plotly.newPlot(element, figure.data || [], layout, config)
  if (figure.frames) await Plotly.addFrames(element, figure.frames)
}
