// Bundle src/ into dist/ (committed; CI rebuilds and fails if it differs).
import * as esbuild from 'esbuild'

await esbuild.build({
  entryPoints: { app: 'src/main.js', frame: 'src/frame.js', 'widgets-manager': 'src/widgets-manager.js' },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  outdir: 'dist',
  assetNames: 'assets/[name]-[hash]',
  loader: { '.woff2': 'file', '.woff': 'file', '.ttf': 'file' },
  legalComments: 'none',
  logLevel: 'warning',
})
