// Open rooms with stock clients and report how long each took to sync; then hold the
// connections until stdin says "exit" (so the server's memory can be measured meanwhile).
//
//   node open.mjs '{"server": "ws://...", "token": "...", "rooms": ["ID/sync", ...],
//                   "perRoom": 2, "concurrency": 50, "closeEach": false, "pauseMs": 0}'
// With closeEach, each client disconnects once synced and the next open waits pauseMs
// (long enough for the server to unload the room, to measure cold opens).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import readline from 'node:readline'

const o = JSON.parse(process.argv[2])
const providers = []

const open = (room) => new Promise((resolve) => {
  const doc = new Y.Doc()
  const started = performance.now()
  const provider = new WebsocketProvider(o.server, room, doc, {
    WebSocketPolyfill: WebSocket,
    params: { token: o.token },
    disableBc: true
  })
  providers.push(provider)
  provider.once('sync', () => {
    const result = { ms: performance.now() - started, cells: doc.getArray('cells').length }
    if (o.closeEach) provider.destroy()
    resolve(result)
  })
})

const jobs = []
for (const room of o.rooms) for (let i = 0; i < (o.perRoom || 1); i++) jobs.push(room)
const results = []
const concurrency = o.concurrency || 1
let next = 0
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < jobs.length) {
    const room = jobs[next++]
    results.push(await open(room))
    if (o.pauseMs) await new Promise((resolve) => setTimeout(resolve, o.pauseMs))
  }
}))
console.log(JSON.stringify({ event: 'synced', opens: results }))

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', () => {
  for (const provider of providers) provider.destroy()
  setTimeout(() => process.exit(0), 100)
})
