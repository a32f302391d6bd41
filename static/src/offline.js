// No lost work: the notebook is also kept in this browser (IndexedDB, one store per person
// and notebook), so what is typed offline survives closing the tab and merges when the
// page opens again; and the page knows which edits the server has not confirmed yet, to
// warn before leaving.
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { IndexeddbPersistence } from 'y-indexeddb'

const PREFIX = 'tandem:'
const SYNC = 0
const STEP1 = 0
const UPDATE = 2

export function storeName (userId, notebookId) {
  return `${PREFIX}${userId}:${notebookId}`
}

export function keepLocally (userId, notebookId, doc) {
  return new IndexeddbPersistence(storeName(userId, notebookId), doc)
}

// A notebook deleted, or no longer ours to open: nothing of it stays in the browser to come
// back later (the server would refuse it anyway).
export function forgetLocally (userId, notebookId) {
  indexedDB.deleteDatabase(storeName(userId, notebookId))
}

// Signing out leaves nothing of that person's notebooks in the browser.
export async function forgetEverything (userId) {
  const mine = `${PREFIX}${userId}:`
  const databases = await indexedDB.databases?.() ?? []
  await Promise.all(databases.filter((db) => db.name?.startsWith(mine)).map((db) => new Promise((resolve) => {
    const request = indexedDB.deleteDatabase(db.name)
    request.onsuccess = request.onerror = request.onblocked = resolve
  })))
}

// Same bytes, same key (an update can be a whole notebook: a hash, not the bytes).
export function updateKey (update) {
  let hash = 0x811c9dc5
  for (const byte of update) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0
  return `${update.length}:${hash}`
}

const isEmpty = (update) => update.length === 2 && update[0] === 0 && update[1] === 0

// The server stores an update before it sends it to anyone, its sender included, with the
// same bytes: an edit is confirmed when its echo comes back. Edits made while disconnected
// are not sent one by one but in the sync step 2 that answers the server's step 1 on
// reconnect, which the server echoes in turn; so that answer replaces what was pending.
export class UnsentEdits {
  constructor (provider) {
    this.pending = new Map()
    const doc = provider.doc
    doc.on('update', (update, origin) => { if (origin !== provider) this.add(update) })
    const handle = provider.messageHandlers[SYNC]
    provider.messageHandlers[SYNC] = (encoder, decoder, ...rest) => {
      const peek = decoding.clone(decoder)
      const kind = decoding.readVarUint(peek)
      const payload = decoding.readVarUint8Array(peek)
      const result = handle(encoder, decoder, ...rest)
      if (kind === STEP1) {
        this.pending.clear()
        this.add(Y.encodeStateAsUpdate(doc, payload)) // what the handler just answered
      } else if (kind === UPDATE) {
        this.confirm(payload)
      }
      return result
    }
  }

  get any () { return this.pending.size > 0 }

  add (update) {
    if (isEmpty(update)) return // the server neither stores nor echoes an empty update
    const key = updateKey(update)
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1)
  }

  confirm (update) {
    const key = updateKey(update)
    const left = (this.pending.get(key) ?? 0) - 1
    if (left > 0) this.pending.set(key, left)
    else this.pending.delete(key)
  }
}
