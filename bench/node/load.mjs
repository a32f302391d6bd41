// N stock Yjs clients (yjs + y-websocket) type into one notebook cell at R edits/s each.
// The clients are spread over worker threads (the load generator must not be the
// bottleneck); every send and every receive is logged with performance.timeOrigin +
// performance.now(), one clock for all threads, and joined at the end: an edit's fan-out
// latency is the time from making it to each other client having applied it.
//
//   node load.mjs '{"server": "ws://127.0.0.1:8000/api/notebooks", "room": "ID/sync",
//                   "token": "...", "clients": 20, "rate": 5, "seconds": 10, "seed": 1,
//                   "threads": 2, "relay": false}'
// Prints one JSON object with the measurements.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { createHash } from 'node:crypto'

const clock = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const waitUntil = async (check, ms) => {
  const deadline = clock() + ms
  while (!check()) {
    if (clock() > deadline) return false
    await sleep(5)
  }
  return true
}
const seeded = (s) => () => {
  s = (s + 0x6d2b79f5) >>> 0
  let t = s
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const connect = (o) => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(o.server, o.room, doc, {
    WebSocketPolyfill: WebSocket,
    params: o.token ? { token: o.token } : {},
    disableBc: true
  })
  return { doc, provider }
}
const textOf = (doc) => {
  const cells = doc.getArray('cells')
  return cells.length ? cells.get(0).get('source') : null
}

if (!isMainThread) {
  // A worker: its share of the clients, driven by messages from the main thread.
  const o = workerData
  const random = seeded(o.seed)
  const sends = [] // [key, time]
  // Receives are many (every edit times every other client): kept in typed columns so the
  // log itself does not make the garbage collector the bottleneck.
  const capacity = Math.ceil(o.count * o.clients * o.rate * ((o.seconds || 10) + 5) * 1.2) + 1024
  const receivedClient = new Float64Array(capacity)
  const receivedClock = new Float64Array(capacity)
  const receivedAt = new Float64Array(capacity)
  let received = 0
  let logging = false // sends, during the measured window
  let receiving = false // receives, from the measured window on (late arrivals count too)
  const clients = Array.from({ length: o.count }, () => {
    const client = connect(o)
    client.doc.on('update', (update, origin) => {
      if (origin === 'local' || !receiving) return
      const t = clock()
      // A server may merge a client's consecutive edits into one update: count each clock.
      const meta = Y.parseUpdateMeta(update)
      meta.from.forEach((first, id) => {
        if (id === client.doc.clientID) return
        const last = meta.to.get(id)
        for (let k = first; k < last && received < capacity; k++) {
          receivedClient[received] = id
          receivedClock[received] = k
          receivedAt[received++] = t
        }
      })
    })
    return client
  })
  const ready = (c) => (o.relay ? c.provider.wsconnected : c.provider.synced)
  const edit = (client) => {
    const source = textOf(client.doc)
    if (source === null) return // never synced (a server that left it hanging)
    const key = `${client.doc.clientID}:${Y.getState(client.doc.store, client.doc.clientID)}`
    if (logging) sends.push([key, clock()])
    client.doc.transact(() => source.insert(Math.floor(random() * (source.length + 1)), 'x'), 'local')
  }
  // Each client edits on its own schedule: one edit per period, at a random phase with a
  // little jitter, so the offered load is exactly `rate` edits/s per client.
  const type = async (seconds, rate) => {
    const period = 1000 / rate
    const start = clock()
    const end = start + seconds * 1000
    await Promise.all(clients.map(async (client) => {
      const phase = random() * period
      for (let k = 0; ; k++) {
        const due = start + phase + k * period + (random() - 0.5) * 0.2 * period
        if (due >= end) break
        const wait = due - clock()
        if (wait > 0) await sleep(wait)
        edit(client)
      }
    }))
  }
  let edits = 0
  parentPort.on('message', async (m) => {
    if (m.cmd === 'join') {
      const joined = await waitUntil(() => clients.every(ready), 20000)
      parentPort.postMessage({ joined: clients.filter(ready).length, all: joined })
    } else if (m.cmd === 'seed-cell') {
      const cells = clients[0].doc.getArray('cells')
      if (cells.length === 0) {
        const cell = new Y.Map()
        cell.set('id', 'bench')
        cell.set('cell_type', 'code')
        cell.set('source', new Y.Text(''))
        cell.set('metadata', new Y.Map())
        cell.set('outputs', new Y.Array())
        cells.insert(0, [cell])
      }
      parentPort.postMessage({})
    } else if (m.cmd === 'has-cell') {
      parentPort.postMessage({ ok: await waitUntil(() => clients.every((c) => textOf(c.doc) !== null), 10000) })
    } else if (m.cmd === 'type') {
      logging = m.log
      receiving = receiving || m.log
      const before = sends.length
      await type(m.seconds, m.rate)
      logging = false
      edits += m.log ? sends.length - before : 0
      parentPort.postMessage({})
    } else if (m.cmd === 'lengths') {
      parentPort.postMessage({ lengths: clients.map((c) => textOf(c.doc)?.length ?? -1) })
    } else if (m.cmd === 'report') {
      const hashes = clients.map((c) => createHash('sha1').update(String(textOf(c.doc) ?? '')).digest('hex'))
      const receives = []
      for (let i = 0; i < received; i++) receives.push([`${receivedClient[i]}:${receivedClock[i]}`, receivedAt[i]])
      parentPort.postMessage({ sends, receives, hashes })
      for (const c of clients) c.provider.destroy()
    }
  })
} else {
  const o = JSON.parse(process.argv[2])
  const threads = Math.max(1, Math.min(o.threads || 2, o.clients))
  const workers = Array.from({ length: threads }, (_, i) => {
    const count = Math.floor(o.clients / threads) + (i < o.clients % threads ? 1 : 0)
    return new Worker(new URL(import.meta.url), { workerData: { ...o, count, seed: (o.seed || 1) * 1000 + i } })
  })
  const ask = (worker, message) => new Promise((resolve) => {
    worker.once('message', resolve)
    worker.postMessage(message)
  })
  const all = (message) => Promise.all(workers.map((w) => ask(w, message)))

  const joinStart = clock()
  const joins = await all({ cmd: 'join' })
  const joinMs = clock() - joinStart
  await ask(workers[0], { cmd: 'seed-cell' })
  await all({ cmd: 'has-cell' })
  await all({ cmd: 'type', seconds: o.warmup ?? 2, rate: o.rate, log: false })
  const warmLength = Math.max(...(await all({ cmd: 'lengths' })).flatMap((r) => r.lengths))
  const started = clock()
  await all({ cmd: 'type', seconds: o.seconds, rate: o.rate, log: true })
  const loadEnd = clock()
  // Drain: until every client holds every edit (a growing backlog shows up here).
  let drained = false
  let drainMs = 0
  const drainStart = clock()
  let target = null
  while (clock() - drainStart < 30000) {
    const lengths = (await all({ cmd: 'lengths' })).flatMap((r) => r.lengths)
    target = Math.max(...lengths)
    if (lengths.every((l) => l === target)) { drained = true; break }
    await sleep(10)
  }
  drainMs = clock() - drainStart
  const reports = await all({ cmd: 'report' })
  for (const w of workers) w.terminate()

  const sentAt = new Map()
  for (const r of reports) for (const [key, t] of r.sends) sentAt.set(key, t)
  const latencies = []
  const lastArrival = new Map()
  let deliveredDuringLoad = 0
  for (const r of reports) {
    for (const [key, t] of r.receives) {
      const start = sentAt.get(key)
      if (start === undefined) continue
      latencies.push(t - start)
      if (t >= started && t <= started + o.seconds * 1000) deliveredDuringLoad++
      lastArrival.set(key, Math.max(lastArrival.get(key) ?? 0, t - start))
    }
  }
  const percentile = (values, p) => {
    if (values.length === 0) return null
    const sorted = Float64Array.from(values).sort()
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
  }
  const hashes = reports.flatMap((r) => r.hashes)
  let lateJoinerAgrees = null
  if (!o.relay) {
    const late = connect(o)
    await waitUntil(() => late.provider.synced && textOf(late.doc) !== null, 20000)
    const text = textOf(late.doc)
    lateJoinerAgrees = text !== null && createHash('sha1').update(text.toString()).digest('hex') === hashes[0]
    late.provider.destroy()
  }
  const allOthers = [...lastArrival.values()]
  console.log(JSON.stringify({
    clients: o.clients,
    rate: o.rate,
    threads,
    joined: joins.reduce((n, j) => n + j.joined, 0),
    allJoined: joins.every((j) => j.all),
    joinMs,
    edits: sentAt.size,
    expectedDeliveries: sentAt.size * (o.clients - 1),
    deliveries: latencies.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    allOthersP50: percentile(allOthers, 50),
    allOthersP99: percentile(allOthers, 99),
    // Steady state: updates applied by clients inside the typing window, per second.
    deliveredPerSecond: deliveredDuringLoad / o.seconds,
    editsPerSecond: sentAt.size / o.seconds,
    drained,
    drainMs,
    converged: hashes.every((h) => h === hashes[0]),
    lateJoinerAgrees,
    length: target,
    warmLength
  }))
  setTimeout(() => process.exit(0), 100)
}
