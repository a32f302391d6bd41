// Bundle src/ into dist/ (committed; CI rebuilds and fails if it differs).
import * as esbuild from 'esbuild'

const common = {
  bundle: true,
  minify: true,
  target: ['es2022'],
  outdir: 'dist',
  legalComments: 'none',
  logLevel: 'warning',
}

await esbuild.build({
  ...common,
  entryPoints: { app: 'src/main.js', frame: 'src/frame.js', 'widgets-manager': 'src/widgets-manager.js' },
  format: 'esm',
  assetNames: 'assets/[name]-[hash]',
  loader: { '.woff2': 'file', '.woff': 'file', '.ttf': 'file' },
})

// Chart renderers: big (Plotly alone is ~5 MB), so never in the editor's bundle. Each is
// a classic script that the chart frame (an opaque origin, where module scripts would
// need CORS) loads only when an output of its type is shown.
await esbuild.build({
  ...common,
  entryPoints: {
    'chart-frame': 'src/renderers/frame.js',
    'renderers/plotly': 'src/renderers/plotly.js',
    'renderers/vega': 'src/renderers/vega.js',
    'renderers/geojson': 'src/renderers/geojson.js',
  },
  format: 'iife',
})
