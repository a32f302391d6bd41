/* eslint-disable no-control-regex -- a terminal's escape sequences are made of control characters */
// A stream's text as a terminal shows it: `\r`, `\b`, erase-line (ESC[K), cursor moves
// (ESC[A/B/C/D/E/F/G), erase below (ESC[J), colours kept per character and written back
// per line. The server folds streams as they arrive (server/gateway/console.py, the same
// rules); this folds what documents stored before it still hold. Pure: no DOM.

const TOKEN = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()#][0-9A-Za-z]|\x1b[@-Z\\^_]|[\r\n\b\x1b]|[^\r\n\b\x1b]+/g
const CSI = /^\x1b\[([0-?]*)[ -/]*([@-~])$/
const CONTROL = /[\r\b\x1b]/
const RESET = '\x1b[0m'
const MAX_PEN = 8
const MAX_MOVE = 1000
const WINDOW = 64 // lines the cursor can go back up into, as server/gateway/console.py

class Line {
  constructor () { this.text = ''; this.runs = [] } // runs: [start, pen]

  styleAt (column) {
    let style = ''
    for (const [start, pen] of this.runs) { if (start > column) break; style = pen }
    return style
  }

  write (column, chars, pen) {
    if (column >= this.text.length) { // appending: no pass over the runs, however many
      this.append(' '.repeat(column - this.text.length), '')
      this.append(chars, pen)
      return
    }
    const end = column + chars.length
    const after = this.styleAt(end)
    this.text = this.text.slice(0, column) + chars + this.text.slice(end)
    this.runs = this.normal([...this.runs.filter(r => r[0] < column), [column, pen], [end, after], ...this.runs.filter(r => r[0] > end)])
  }

  append (chars, pen) {
    if (!chars) return
    if ((this.runs.length ? this.runs[this.runs.length - 1][1] : '') !== pen) this.runs.push([this.text.length, pen])
    this.text += chars
  }

  erase (start, end) {
    end = Math.min(end, this.text.length)
    if (start >= end) return
    if (end === this.text.length) {
      this.text = this.text.slice(0, start)
      this.runs = this.normal(this.runs)
    } else {
      this.write(start, ' '.repeat(end - start), '')
    }
  }

  normal (runs) {
    const kept = []
    for (const [start, pen] of runs) {
      if (start >= this.text.length) continue
      if (kept.length && kept[kept.length - 1][0] === start) kept.pop()
      if ((kept.length ? kept[kept.length - 1][1] : '') !== pen) kept.push([start, pen])
    }
    return kept
  }

  render () {
    if (!this.runs.length) return this.text
    let out = ''
    let position = 0
    let current = ''
    for (const [start, pen] of this.runs) {
      out += this.text.slice(position, start) + (current ? RESET + pen : pen)
      position = start
      current = pen
    }
    return out + this.text.slice(position) + (current ? RESET : '')
  }
}

class Console {
  constructor () { this.lines = [new Line()]; this.scrolled = []; this.row = 0; this.column = 0; this.pen = '' }

  feed (chunk) {
    for (const [piece] of chunk.matchAll(TOKEN)) this.piece(piece)
  }

  piece (piece) {
    if (piece === '\n') { this.down(1, true); this.column = 0 } else if (piece === '\r') this.column = 0
    else if (piece === '\b') this.column = Math.max(0, this.column - 1)
    else if (piece[0] !== '\x1b') {
      this.lines[this.row].write(this.column, piece, this.pen)
      this.column += piece.length
    } else {
      const csi = CSI.exec(piece)
      if (csi) this.csi(csi[1], csi[2])
    }
  }

  csi (params, final) {
    if (final === 'm') return this.sgr(params)
    if (params.startsWith('?')) return
    const first = params.split(';')[0].slice(0, 6) // a terminal is not a million columns wide
    const count = /^\d+$/.test(first) ? parseInt(first, 10) : 0
    const step = Math.max(count, 1)
    const line = this.lines[this.row]
    const right = Math.max(line.text.length, this.column) + MAX_MOVE // no line of spaces bigger than what was printed
    if (final === 'A') this.row = Math.max(0, this.row - step)
    else if (final === 'B') this.down(step, false)
    else if (final === 'C') this.column = Math.min(this.column + step, right)
    else if (final === 'D') this.column = Math.max(0, this.column - step)
    else if (final === 'G') this.column = Math.min(step - 1, right)
    else if (final === 'E') { this.down(step, false); this.column = 0 } else if (final === 'F') { this.row = Math.max(0, this.row - step); this.column = 0 } else if (final === 'K') {
      if (count === 0) line.erase(this.column, line.text.length)
      else if (count === 1) line.erase(0, this.column + 1)
      else if (count === 2) line.erase(0, line.text.length)
    } else if (final === 'J' && count === 0) {
      line.erase(this.column, line.text.length)
      this.lines.length = this.row + 1
    }
  }

  sgr (params) {
    let parts = params.split(';')
    if (parts[0] === '' || parts[0] === '0') {
      this.pen = ''
      parts = parts.slice(1)
      if (!parts.length) return
    }
    const sequence = `\x1b[${parts.join(';')}m`
    const pens = (this.pen.match(/\x1b\[[^m]*m/g) || []).filter(s => s !== sequence)
    this.pen = [...pens, sequence].slice(-MAX_PEN).join('')
  }

  down (step, newLines) {
    const target = this.row + step
    if (newLines) while (this.lines.length <= target) this.lines.push(new Line())
    this.row = Math.min(target, this.lines.length - 1)
    // As on the server, only the last WINDOW lines stay editable (cursor up stops there);
    // the others are kept as text.
    if (this.lines.length > 2 * WINDOW) {
      const count = this.lines.length - WINDOW
      for (const line of this.lines.splice(0, count)) this.scrolled.push(line.render())
      this.row = Math.max(0, this.row - count)
    }
  }

  render () { return [...this.scrolled, ...this.lines.map(line => line.render())].join('\n') }
}

// What a terminal shows after printing `text`; text without control characters as it is.
export function foldConsole (text) {
  if (!CONTROL.test(text)) return text
  const console = new Console()
  console.feed(text)
  return console.render()
}
