"""What the editor's cell tools cost on a big notebook, in Node (the same modules the page
runs): finding a word in every cell (what each keystroke in the find bar does), planning
a Replace all, and reading the headings and collapsed sections (what the contents panel
does after an edit). The notebook: `--cells` cells of 40 lines each, one in five markdown.

    python bench/find.py [--cells 500] [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "static"

SCRIPT = """
import * as find from './src/find.js'
import * as outline from './src/outline.js'
const { cells: count, rounds } = JSON.parse(process.argv[1])
const prose = 'Some words about alpha and beta.\\n'.repeat(39)
const cells = Array.from({ length: count }, (_, i) => i % 5 === 0
  ? { id: `c${i}`, cell_type: 'markdown', source: `# Part ${i}\\n${prose}`, collapsed: !(i % 10) }
  : { id: `c${i}`, cell_type: 'code', source: `value_${i} = compute(alpha, ${i})\\n`.repeat(40) })
const each = (fn) => () => cells.reduce((n, c) => n + fn(c.source).length, 0)
const chars = cells.reduce((n, c) => n + c.source.length, 0)
function time (name, fn) {
  fn()
  const start = performance.now()
  let result
  for (let r = 0; r < rounds; r++) result = fn()
  return { name, ms: (performance.now() - start) / rounds, result }
}
const re = find.compile('alpha', {})
const word = find.compile('alpha', { wholeWord: true, caseSensitive: true })
const rows = [
  time('find "alpha" in every cell', each((text) => find.findMatches(text, re))),
  time('  whole word, match case', each((text) => find.findMatches(text, word))),
  time('plan Replace all', each((text) => find.replaceAllEdits(text, re, 'omega'))),
  time('headings (contents)', () => outline.headings(cells).length),
  time('collapsed sections', () => outline.hiddenBySections(cells).length)
]
process.stdout.write(JSON.stringify({ chars, rows }))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    done = subprocess.run(
        ["node", "--input-type=module", "-e", SCRIPT, json.dumps(vars(args))],
        cwd=STATIC,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout)
    print(f"{args.cells} cells, {report['chars'] / 1e6:.1f} M characters, {args.rounds} rounds")
    print(f"{'operation':<30} {'ms':>8} {'result':>8}")
    for row in report["rows"]:
        print(f"{row['name']:<30} {row['ms']:>8.2f} {row['result']:>8}")


if __name__ == "__main__":
    main()
