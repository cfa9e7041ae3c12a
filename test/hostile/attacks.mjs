/**
 * Hostile payloads of issue 11 that need more than a byte pattern: signed registry and
 * namespace records under throwaway keys (valid signatures, so only the receiver's
 * limits can stop them), a registry record carried as Yjs ContentJSON nested 20,000
 * deep (item 1), presence the schema refuses, and many throwaway identities reserving
 * on the relay (item 7). Shared by bench/hostile.mjs and the hostile tests.
 *
 *   const key = await throwawayKey()                         // { publicKey: 'ed25519:…', sign(bytes) }
 *   await registryEntries(key, n, { capability, pad })        // signed entry records, keyed author/id
 *   registryUpdate(records)                                   // one Yjs update of the registry doc's 'entries'
 *   await namespaceUpdate(key, n)                             // n signed namespace records in memory-index
 *   await deepContentJsonEntry(key, depth)                    // the item-1 update (ContentJSON, depth-nested)
 *   const flood = await reservationFlood(relayAddrs, n)       // n identities holding relay reservations
 */
import { createHash } from 'node:crypto'
import { register } from 'tsx/esm/api'

register()
await import('../../src/lib/core/polyfills.ts')
const Y = await import('yjs')
const encoding = await import('lib0/encoding')
const { default: canonicalize } = await import('canonicalize')
const { generateKeyPair } = await import('@libp2p/crypto/keys')

const b64url = (bytes) => Buffer.from(bytes).toString('base64url')
const utf8 = (s) => new TextEncoder().encode(s)

/** A fresh Ed25519 identity, as a stranger makes for free. */
export async function throwawayKey() {
  const key = await generateKeyPair('Ed25519')
  return {
    publicKey: `ed25519:${b64url(key.publicKey.raw)}`,
    async sign(bytes) {
      return b64url(await key.sign(bytes))
    }
  }
}

/** `payload` plus its signature over the canonical JSON (RFC 8785), as core's signJson makes. */
async function signed(key, payload) {
  return { ...payload, signature: await key.sign(utf8(canonicalize(payload))) }
}

/**
 * `n` valid registry entry records by `key` for agents claiming `capability` at price 0.
 * `pad` adds that many characters to each manifest's description (over-quota pushes).
 */
export async function registryEntries(key, n, { capability = 'word-count', pad = 0, prefix = 'x' } = {}) {
  const out = []
  for (let i = 0; i < n; i++) {
    const unsigned = {
      name: `${capability}-${prefix}${i}`,
      version: '1.0.0',
      description: `cheapest ${capability} ${'.'.repeat(Math.min(pad, 1900))}`,
      capabilities: [capability],
      abi: 'json-v1',
      price: 0,
      author: key.publicKey,
      ...(pad > 1900 ? { notes: 'p'.repeat(pad - 1900) } : {})
    }
    const manifest = await signed(key, unsigned)
    const moduleSha256 = createHash('sha256').update(`${key.publicKey}/${i}`).digest('hex')
    const record = await signed(key, {
      kind: 'zerostate/registry-entry/1',
      id: moduleSha256,
      author: key.publicKey,
      manifest,
      moduleSha256,
      version: 1,
      publishedAt: Date.now()
    })
    out.push([`${key.publicKey}/${moduleSha256}`, record])
  }
  return out
}

/** One Yjs update setting `records` ([mapKey, record]) in the registry doc's `entries` map. */
export function registryUpdate(records, root = 'entries') {
  const doc = new Y.Doc()
  const map = doc.getMap(root)
  doc.transact(() => {
    for (const [k, r] of records) map.set(k, r)
  })
  return Y.encodeStateAsUpdate(doc)
}

/** `n` valid namespace records owned by `key`, as one update of the memory-index doc (item 3). */
export async function namespaceUpdate(key, n) {
  const doc = new Y.Doc()
  const owned = doc.getMap('owned')
  const records = []
  for (let i = 0; i < n; i++) {
    const name = `bomb-${i}`
    records.push([
      `${key.publicKey}/${name}`,
      await signed(key, { kind: 'zerostate/namespace/1', name, owner: key.publicKey, mode: 'shared', createdAt: Date.now() - i, version: 1, writers: ['*'] })
    ])
  }
  doc.transact(() => {
    for (const [k, r] of records) owned.set(k, r)
  })
  return Y.encodeStateAsUpdate(doc)
}

/**
 * Item 1: a registry entry whose manifest holds arrays nested `depth` deep, carried as
 * Yjs ContentJSON (content ref 2: JSON text that Yjs parses on read, so a guard that
 * bounds nesting only inside ContentAny never sees it). Hand-encoded update v1: one
 * item in root map `entries` under the record's key, then an empty delete set.
 */
export async function deepContentJsonEntry(key, depth = 20_000) {
  const marker = 'Z'.repeat(2 * depth - 2)
  const record = await signed(key, {
    kind: 'zerostate/registry-entry/1',
    id: 'deep',
    author: key.publicKey,
    manifest: { name: 'deep', capabilities: ['word-count'], deep: marker },
    moduleSha256: '0'.repeat(64),
    version: 1,
    publishedAt: Date.now()
  })
  // The marker string and its quotes ("ZZ…Z", 2·depth chars) become [[…]] of the same length.
  const json = JSON.stringify(record).replace(`"${marker}"`, `${'['.repeat(depth)}${']'.repeat(depth)}`)
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, 1) // clients
  encoding.writeVarUint(enc, 1) // structs of this client
  encoding.writeVarUint(enc, Math.floor(Math.random() * 2 ** 31)) // client id
  encoding.writeVarUint(enc, 0) // clock
  encoding.writeUint8(enc, 2 | 0x20) // ContentJSON, with a parentSub (map key)
  encoding.writeVarUint(enc, 1) // parent is a root type (ykey)
  encoding.writeVarString(enc, 'entries')
  encoding.writeVarString(enc, `${key.publicKey}/deep`)
  encoding.writeVarUint(enc, 1) // one JSON value
  encoding.writeVarString(enc, json)
  encoding.writeVarUint(enc, 0) // delete set: no clients
  return encoding.toUint8Array(enc)
}

/** Presence messages the schema refuses, under the 4 KB cap (wrong types, unknown version, huge arrays). */
export function invalidPresence(i) {
  const variants = [
    { v: 99, peerId: 'x', capabilities: 'all' },
    { v: 1, capabilities: Array.from({ length: 300 }, (_, j) => `c${j}`), donating: 'yes' },
    { v: 1, freeWorkers: -1, region: { nested: { deep: [1, 2, 3] } } },
    'not json at all {'
  ]
  const v = variants[i % variants.length]
  return utf8(typeof v === 'string' ? v : JSON.stringify(v))
}

/**
 * Item 7: `count` throwaway identities, each a minimal libp2p node (WebSockets, noise,
 * yamux, circuit relay transport) that connects to the relay and holds a reservation.
 * Returns { reserved, refused, ms, stop() }; the connections stay open until stop().
 */
export async function reservationFlood(relayAddrs, count, { concurrency = 8 } = {}) {
  if (globalThis.WebSocket == null) globalThis.WebSocket = (await import('ws')).WebSocket
  const { noise } = await import('@chainsafe/libp2p-noise')
  const { yamux } = await import('@chainsafe/libp2p-yamux')
  const { circuitRelayTransport } = await import('@libp2p/circuit-relay-v2')
  const { identify } = await import('@libp2p/identify')
  const { webSockets } = await import('@libp2p/websockets')
  const { multiaddr } = await import('@multiformats/multiaddr')
  const { createLibp2p } = await import('libp2p')
  const relayMa = multiaddr(relayAddrs[0])
  const nodes = []
  let reserved = 0
  let refused = 0
  let next = 0
  const t0 = Date.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++
        let node
        try {
          node = await createLibp2p({
            transports: [webSockets(), circuitRelayTransport()],
            connectionEncrypters: [noise()],
            streamMuxers: [yamux()],
            connectionGater: { denyDialMultiaddr: () => false },
            services: {
              identify: identify(),
              listener: (components) => ({ listen: (addrs) => components.transportManager.listen(addrs) })
            }
          })
          nodes.push(node)
          await node.dial(relayMa, { signal: AbortSignal.timeout(10_000) })
          // A refused reservation may never answer: give up on it after 10 s.
          await Promise.race([
            node.services.listener.listen([relayMa.encapsulate('/p2p-circuit')]),
            new Promise((_, reject) => setTimeout(() => reject(new Error('no reservation within 10 s')), 10_000))
          ])
          reserved++
        } catch {
          refused++
        }
      }
    })
  )
  return {
    reserved,
    refused,
    ms: Date.now() - t0,
    async stop() {
      await Promise.allSettled(nodes.map((n) => n.stop()))
    }
  }
}
