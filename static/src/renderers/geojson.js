// GeoJSON (`application/geo+json`) drawn as SVG: no map tiles (the frame reaches no
// network), longitude and latitude on a plane scaled by the cosine of the middle latitude
// (planar, so a polygon's winding order cannot turn it inside out), with each feature's
// properties on hover, wheel to zoom and drag to pan.
import { geoPath, geoTransform } from 'd3-geo'

const SVG = 'http://www.w3.org/2000/svg'
const WIDTH = 640
const HEIGHT = 400

function planar (data) {
  const [[, south], [, north]] = geoPath(geoTransform({ point (x, y) { this.stream.point(x, y) } })).bounds(data)
  const k = Math.cos(((south + north) / 2) * Math.PI / 180) || 1
  const flat = geoPath(geoTransform({ point (x, y) { this.stream.point(x * k, -y) } }))
  const [[x0, y0], [x1, y1]] = flat.bounds(data)
  const scale = Math.min((WIDTH - 20) / ((x1 - x0) || 1), (HEIGHT - 20) / ((y1 - y0) || 1))
  const dx = (WIDTH - scale * (x1 + x0)) / 2
  const dy = (HEIGHT - scale * (y1 + y0)) / 2
  return geoTransform({ point (x, y) { this.stream.point(x * k * scale + dx, -y * scale + dy) } })
}

function features (data) {
  if (data.type === 'FeatureCollection') return data.features || []
  if (data.type === 'Feature') return [data]
  return [{ type: 'Feature', properties: {}, geometry: data }]
}

function describe (feature) {
  const properties = feature.properties || {}
  const lines = Object.entries(properties).slice(0, 12).map(([key, value]) => `${key}: ${typeof value === 'object' ? JSON.stringify(value) : value}`)
  return lines.join('\n') || feature.geometry?.type || 'feature'
}

function zoomable (svg, layer) {
  let view = { x: 0, y: 0, k: 1 }
  const apply = () => layer.setAttribute('transform', `translate(${view.x} ${view.y}) scale(${view.k})`)
  const point = (event) => {
    const box = svg.getBoundingClientRect()
    return [(event.clientX - box.left) * WIDTH / box.width, (event.clientY - box.top) * HEIGHT / box.height]
  }
  svg.addEventListener('wheel', (event) => {
    event.preventDefault()
    const [px, py] = point(event)
    const k = Math.min(64, Math.max(1, view.k * Math.exp(-event.deltaY / 300)))
    view = { k, x: px - (px - view.x) * k / view.k, y: py - (py - view.y) * k / view.k }
    apply()
  }, { passive: false })
  let drag = null
  svg.addEventListener('pointerdown', (event) => { drag = { from: point(event), view }; svg.setPointerCapture(event.pointerId) })
  svg.addEventListener('pointermove', (event) => {
    if (!drag) return
    const [px, py] = point(event)
    view = { ...drag.view, x: drag.view.x + px - drag.from[0], y: drag.view.y + py - drag.from[1] }
    apply()
  })
  svg.addEventListener('pointerup', () => { drag = null })
  svg.addEventListener('dblclick', () => { view = { x: 0, y: 0, k: 1 }; apply() })
}

self.tandemRenderers = self.tandemRenderers || {}
self.tandemRenderers.geojson = (element, data, { theme }) => {
  if (!data || typeof data !== 'object') throw new Error('not a GeoJSON object')
  const path = geoPath(planar(data)).pointRadius(4)
  const svg = document.createElementNS(SVG, 'svg')
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`)
  svg.setAttribute('class', `geojson ${theme}`)
  svg.style.cssText = 'width:100%;max-width:640px;height:auto;cursor:grab;touch-action:none;display:block'
  const layer = document.createElementNS(SVG, 'g')
  const tip = document.createElement('div')
  tip.className = 'tooltip'
  tip.style.cssText = 'position:fixed;display:none;pointer-events:none;background:#fff;border:1px solid #999;padding:2px 6px;font:12px system-ui,sans-serif;white-space:pre'
  for (const feature of features(data)) {
    const d = path(feature)
    if (!d) continue
    const shape = document.createElementNS(SVG, 'path')
    const type = feature.geometry?.type || ''
    const filled = /Polygon/.test(type) || /Point/.test(type)
    shape.setAttribute('d', d)
    shape.setAttribute('class', 'feature')
    shape.setAttribute('fill', filled ? '#4c78a8' : 'none')
    shape.setAttribute('fill-opacity', '0.6')
    shape.setAttribute('stroke', '#2c4f73')
    shape.setAttribute('vector-effect', 'non-scaling-stroke')
    const text = describe(feature)
    shape.addEventListener('pointerenter', () => { tip.textContent = text; tip.style.display = 'block'; shape.setAttribute('fill-opacity', '0.9') })
    shape.addEventListener('pointermove', (event) => { tip.style.left = event.clientX + 12 + 'px'; tip.style.top = event.clientY + 12 + 'px' })
    shape.addEventListener('pointerleave', () => { tip.style.display = 'none'; shape.setAttribute('fill-opacity', '0.6') })
    layer.append(shape)
  }
  svg.append(layer)
  zoomable(svg, layer)
  element.replaceChildren(svg, tip)
}
