// A stock Yjs client (yjs + y-websocket, as a browser would run them) driven by a test over
// stdin/stdout, one JSON object per line.
//
//   node client.mjs '{"server": "ws://127.0.0.1:8000/api/notebooks", "notebook": "ID",
//                     "token": "...", "seed": 1}'
//
// Commands (stdin): {"cmd": "edit", "n": 5} | {"cmd": "disconnect"} | {"cmd": "connect"}
//   | {"cmd": "state"} | {"cmd": "awareness", "state": {...}} | {"cmd": "peers"} | {"cmd": "exit"}
// Events (stdout): {"event": "synced"} | {"event": "state", ...} | {"event": "denied", ...}
//   | {"event": "status", "status": ...} | {"event": "peers", ...} | {"event": "done"}
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'

const options = JSON.parse(process.argv[2])
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n')

// mulberry32: a small seeded generator, so a failing run can be replayed.
let seed = options.seed >>> 0
const random = () => {
  seed = (seed + 0x6d2b79f5) >>> 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const pick = (n) => Math.floor(random() * n)

const doc = new Y.Doc()
const cells = doc.getArray('cells')
const provider = new WebsocketProvider(options.server, `${options.notebook}/sync`, doc, {
  WebSocketPolyfill: WebSocket,
  params: { token: options.token },
  disableBc: true,
  maxBackoffTime: 500
})
provider.on('sync', (synced) => { if (synced) emit({ event: 'synced' }) })
provider.on('status', ({ status }) => emit({ event: 'status', status }))
provider.on('connection-close', (event) => {
  if (event) emit({ event: 'closed', code: event.code, reason: String(event.reason || '') })
})
// y-websocket reports a refused write (y-protocols auth message) with console.warn.
const originalWarn = console.warn
console.warn = (...args) => {
  const text = args.join(' ')
  if (text.includes('Permission denied')) emit({ event: 'denied', reason: text })
  else originalWarn(...args)
}

const randomText = () => {
  const words = ['x', 'import numpy as np', '\n', 'print(1)', 'é', '😀', 'def f():', '  return 2']
  return words[pick(words.length)]
}

const newCell = (source) => {
  const cell = new Y.Map()
  cell.set('id', `node-${options.seed}-${Math.floor(random() * 1e9).toString(36)}`)
  const cellType = random() < 0.7 ? 'code' : 'markdown'
  cell.set('cell_type', cellType)
  cell.set('source', new Y.Text(source))
  cell.set('metadata', new Y.Map())
  if (cellType === 'code') {
    cell.set('outputs', new Y.Array())
    cell.set('execution_count', null)
  }
  return cell
}

const edit = () => {
  const roll = random()
  if (cells.length === 0 || roll < 0.08) {
    cells.insert(pick(cells.length + 1), [newCell(randomText())])
    return
  }
  const index = pick(cells.length)
  const cell = cells.get(index)
  if (roll < 0.12 && cells.length > 2) {
    cells.delete(index, 1)
  } else if (roll < 0.15 && cells.length > 1) {
    // A move, as Yjs 13 clients do it: delete and insert a copy elsewhere.
    const copy = newCell(cell.get('source').toString())
    copy.set('id', cell.get('id'))
    doc.transact(() => {
      cells.delete(index, 1)
      cells.insert(pick(cells.length + 1), [copy])
    })
  } else if (roll < 0.2) {
    cell.get('metadata').set(`tag${pick(3)}`, `v${pick(100)}`)
  } else {
    const source = cell.get('source')
    // Like an editor, never split a surrogate pair (an emoji is two UTF-16 units): Yjs
    // would store half an emoji, which other implementations cannot represent.
    const text = source.toString()
    const inPair = (i) => i > 0 && i < text.length && /[\udc00-\udfff]/.test(text[i])
    if (random() < 0.7 || source.length === 0) {
      let at = pick(source.length + 1)
      if (inPair(at)) at -= 1
      source.insert(at, randomText())
    } else {
      let at = pick(source.length)
      let end = Math.min(at + 1 + pick(5), text.length)
      if (inPair(at)) at -= 1
      if (inPair(end)) end += 1
      source.delete(at, end - at)
    }
  }
}

const stateVector = () => Buffer.from(Y.encodeStateVector(doc)).toString('base64')

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', (line) => {
  const command = JSON.parse(line)
  switch (command.cmd) {
    case 'edit':
      for (let i = 0; i < (command.n || 1); i++) edit()
      emit({ event: 'edited' })
      break
    case 'insert_text': {
      const cell = cells.get(command.cell)
      cell.get('source').insert(command.index ?? 0, command.text)
      emit({ event: 'edited' })
      break
    }
    case 'disconnect':
      provider.disconnect()
      emit({ event: 'disconnected' })
      break
    case 'connect':
      provider.connect()
      break
    case 'state':
      emit({ event: 'state', cells: cells.toJSON(), sv: stateVector(), synced: provider.synced })
      break
    case 'awareness':
      provider.awareness.setLocalState(command.state)
      emit({ event: 'awareness-set' })
      break
    case 'peers': {
      const peers = {}
      provider.awareness.getStates().forEach((state, clientId) => { peers[clientId] = state })
      emit({ event: 'peers', peers, self: doc.clientID })
      break
    }
    case 'exit':
      provider.destroy()
      emit({ event: 'done' })
      setTimeout(() => process.exit(0), 50)
      break
  }
})
