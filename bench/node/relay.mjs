// A bare byte relay: every frame goes to the other sockets on the same path. No CRDT, no
// storage: the floor any y-websocket server can be compared with.
import { WebSocketServer } from 'ws'

const port = Number(process.env.PORT || 1235)
const rooms = new Map()
const wss = new WebSocketServer({ host: '127.0.0.1', port })
wss.on('connection', (ws, request) => {
  const room = request.url.split('?')[0]
  if (!rooms.has(room)) rooms.set(room, new Set())
  const peers = rooms.get(room)
  peers.add(ws)
  ws.on('message', (data, isBinary) => {
    for (const peer of peers) if (peer !== ws && peer.readyState === 1) peer.send(data, { binary: isBinary })
  })
  ws.on('close', () => peers.delete(ws))
})
wss.on('listening', () => console.log(`relay on ${port}`))
