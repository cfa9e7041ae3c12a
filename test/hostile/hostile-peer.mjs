/**
 * A hostile peer for tests and benches: a Node js-libp2p 3 node that reaches the tabs
 * exactly as a tab does — WebSockets to the relay, circuit relay v2 for signalling,
 * WebRTC (node-datachannel) for the direct link, noise, yamux, identify (+ push),
 * ping, gossipsub subscribed to the app's topics — and then misbehaves on command.
 *
 * API (keep it stable; other hardening tests reuse it):
 *
 *   const h = await createHostilePeer({ relayUrl })      // or { relays: [multiaddr] }
 *   h.peerId, h.node                                     // its id; the libp2p node itself
 *   h.relayPeerId, h.relayConnection()                   // the relay and our WebSocket link to it
 *   await h.announce({ capabilities: ['llm'] })          // gossip a presence (tabs learn our addrs)
 *   const stop = h.keepAnnouncing({ capabilities: ['llm'] }, 1000)  // …every second, as tabs do
 *   h.tabs()                                             // peer ids seen announcing presence
 *   await h.waitForTabs(n)                               // until n tabs announced
 *   await h.dialDirect(tabId)                            // direct WebRTC connection to a tab
 *   const s = await h.openRaw(target, protocol, opts)    // raw stream: target = peer id or Connection
 *       s.write(bytes) → boolean (false once the stream died)
 *       s.writeRun(byte, total, { chunk }) → { written, stoppedBy }  // e.g. 8 MiB of 0x80
 *       s.received() → Uint8Array[]; s.closed → Promise<{ at, error }>; s.stream
 *   await h.lengthPrefixBomb(target, protocol, { bytes }) → { written, reset, ms }
 *   await h.pushSync(target, doc, update, { type })      // a Yjs update onto the sync protocol ('update' or 'step2', chunked when large)
 *   await h.publish(topic, bytes)                        // arbitrary gossip (signed by us)
 *   await h.flood(fn, { count, concurrency })            // run fn(i) count times
 *   await h.canConnect(tabId)                            // false when the tab refuses us (blocked)
 *   h.observed()                                         // { connectionsOpened, connectionsClosed, taskStreamsIn (tasks routed to us), ... }
 *   await h.stop()
 *
 * Imports the app's own constants (topics, protocol ids) through tsx, so a renamed
 * topic or protocol is followed here. Needs a non-loopback interface (FIELD-NOTES: WebRTC).
 */
import { register } from 'tsx/esm/api'

register()
await import('../../src/lib/core/polyfills.ts')
// Node 20 has no global WebSocket (Node 22 has), and @libp2p/websockets dials with it.
if (globalThis.WebSocket == null) globalThis.WebSocket = (await import('ws')).WebSocket

const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { circuitRelayTransport } = await import('@libp2p/circuit-relay-v2')
const { gossipsub } = await import('@libp2p/gossipsub')
const { identify, identifyPush } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { webRTC } = await import('@libp2p/webrtc')
const { webSockets } = await import('@libp2p/websockets')
const { peerIdFromString } = await import('@libp2p/peer-id')
const { multiaddr } = await import('@multiformats/multiaddr')
const { createLibp2p } = await import('libp2p')
const constants = await import('../../src/lib/mesh/constants.ts')
const presence = await import('../../src/lib/mesh/presence.ts')

export const { DEPARTED_TOPIC, DISCOVERY_TOPIC, PRESENCE_TOPIC, CONNECTION_MONITOR, GOSSIP_SCORE_PARAMS, RELAY_LIMITS } = constants
export const TASK_PROTOCOL = (await import('../../src/lib/orchestrator/dispatch/task-protocol.ts')).TASK_PROTOCOL_ID
const syncProtocol = await import('../../src/lib/memory/sync-protocol.ts')
export const SYNC_PROTOCOL = syncProtocol.SYNC_PROTOCOL_ID
export const PLAN_PROTOCOL = '/zerostate/plan/1.0.0'
export const IDENTIFY_PUSH_PROTOCOL = '/ipfs/id/push/1.0.0'
export const RELAY_HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'

/**
 * Wait until `stream` can take more bytes (or `closed` settles, or 10 s pass: 'stalled').
 * Not `stream.onDrain()`: in @libp2p/utils 7.4 it keeps one promise that is never renewed,
 * so after the first drain it resolves at once and a writer queues everything locally
 * (the relay hop bomb then 'wrote' 8 MiB of which the relay had received ~260 KiB).
 */
async function drained(stream, closed) {
  if (stream.writableNeedsDrain !== true && stream.writeBufferLength === 0) return 'drained'
  let onDrain
  const drain = new Promise((resolve) => {
    onDrain = () => resolve('drained')
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('idle', onDrain)
  })
  let timer
  const stalled = new Promise((resolve) => {
    timer = setTimeout(() => resolve('stalled'), 10_000)
  })
  try {
    return await Promise.race([drain, closed.then(() => 'closed'), stalled])
  } finally {
    clearTimeout(timer)
    stream.removeEventListener('drain', onDrain)
    stream.removeEventListener('idle', onDrain)
  }
}

/** Resolve the relay's multiaddrs from the app server, as a tab does. */
async function relaysFrom(relayUrl) {
  const res = await fetch(new URL(constants.RELAYS_PATH, relayUrl))
  const body = await res.json()
  return body.relays
}

/** One WebRTC dial attempt of `dialDirect` (a slow one under load takes ~5 s). */
const DIAL_ATTEMPT_MS = 8000

/** Start a hostile peer connected to the relay. */
export async function createHostilePeer({ relayUrl, relays, log = () => {} } = {}) {
  const relayAddrs = relays ?? (await relaysFrom(relayUrl))
  const node = await createLibp2p({
    addresses: { listen: ['/webrtc'] },
    transports: [webSockets(), webRTC({ rtcConfiguration: { iceServers: [] } }), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: CONNECTION_MONITOR,
    connectionGater: { denyDialMultiaddr: () => false },
    services: {
      // libp2p keeps its transport manager private; this is how a tab reserves on its relay too.
      listener: (components) => ({ listen: (addrs) => components.transportManager.listen(addrs) }),
      identify: identify(),
      identifyPush: identifyPush(),
      ping: ping({ maxInboundStreams: 8, maxOutboundStreams: 8 }),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, heartbeatInterval: 500, scoreParams: GOSSIP_SCORE_PARAMS, emitSelf: false })
    }
  })
  const seen = new Map()
  const timers = new Set()
  const obs = { connectionsOpened: 0, connectionsClosed: 0, streamsOpened: 0, streamsReset: 0, dialsRefused: 0, messages: 0 }
  node.addEventListener('connection:open', () => {
    obs.connectionsOpened++
  })
  node.addEventListener('connection:close', () => {
    obs.connectionsClosed++
  })
  // Tabs that route a task to us open the task protocol: counted (never answered).
  obs.taskStreamsIn = 0
  await node.handle(
    TASK_PROTOCOL,
    (stream) => {
      obs.taskStreamsIn++
      setTimeout(() => stream.abort(new Error('hostile peer does not run tasks')), 100)
    },
    { runOnLimitedConnection: true }
  )
  node.services.pubsub.subscribe(PRESENCE_TOPIC)
  node.services.pubsub.subscribe(DISCOVERY_TOPIC)
  node.services.pubsub.addEventListener('message', (evt) => {
    obs.messages++
    if (evt.detail.topic !== PRESENCE_TOPIC || evt.detail.from == null) return
    try {
      const p = presence.decodePresence(evt.detail.data, evt.detail.from.toString())
      seen.set(p.peerId, p)
    } catch {
      /* hostile peers do not care about others' garbage */
    }
  })
  await node.start()
  let relayConn
  for (const a of relayAddrs) {
    try {
      relayConn = await node.dial(multiaddr(a), { signal: AbortSignal.timeout(10_000) })
      break
    } catch (err) {
      log(`relay ${a} unreachable: ${err.message}`)
    }
  }
  if (relayConn == null) throw new Error(`the hostile peer reached no relay of ${relayAddrs.join(', ')}`)
  const relayPeerId = relayConn.remotePeer.toString()
  const relayMa = relayAddrs.map((a) => multiaddr(a)).find((ma) => ma.toString().includes(relayPeerId)) ?? multiaddr(relayAddrs[0])
  // A reservation, so tabs could dial us back like any tab.
  await node.services.listener.listen([relayMa.encapsulate('/p2p-circuit')]).catch((err) => log(`no reservation: ${err.message}`))

  const h = {
    node,
    peerId: node.peerId.toString(),
    relayPeerId,
    relayConnection() {
      return node.getConnections(peerIdFromString(relayPeerId)).find((c) => c.status === 'open')
    },
    tabs: () => [...seen.keys()],
    presenceOf: (id) => seen.get(id),
    async waitForTabs(n, timeout = 20_000) {
      const end = Date.now() + timeout
      while (seen.size < n) {
        if (Date.now() > end) throw new Error(`only ${seen.size}/${n} tabs announced within ${timeout} ms`)
        await new Promise((r) => setTimeout(r, 50))
      }
      return h.tabs()
    },
    /** Gossip a presence (defaults: no capabilities, not donating) so tabs list and dial us. */
    async announce(p = {}) {
      const addrs = node
        .getMultiaddrs()
        .filter((ma) => ma.toString().includes('/webrtc'))
        .slice(0, 8)
        .map(String)
      const claim = { v: 1, capabilities: [], donating: false, freeWorkers: 0, region: 'unknown', ...p, peerId: h.peerId, addrs, ts: Date.now() }
      // A claim the app's schema refuses (e.g. 1,024 workers) is sent as it is: the app's encoder would not.
      let data
      try {
        data = presence.encodePresence(claim)
      } catch {
        data = new TextEncoder().encode(JSON.stringify(claim))
      }
      await node.services.pubsub.publish(PRESENCE_TOPIC, data)
    },
    /** Announce every `everyMs` (as tabs do) until the returned function is called. */
    keepAnnouncing(p = {}, everyMs = 1000) {
      const tick = () => {
        h.announce(p).catch(() => {})
      }
      tick()
      const timer = setInterval(tick, everyMs)
      timers.add(timer)
      return () => {
        clearInterval(timer)
        timers.delete(timer)
      }
    },
    /** A direct WebRTC connection to a tab, signalled through the relay. */
    async dialDirect(tabId, { timeout = 15_000 } = {}) {
      const id = peerIdFromString(tabId)
      const existing = node.getConnections(id).find((c) => c.status === 'open' && c.limits == null)
      if (existing != null) return existing
      const end = Date.now() + timeout
      let last
      let attempt = 0
      while (Date.now() < end) {
        // Every address the tab announced in turn (its first may be through a relay
        // connection that is gone), and a fresh attempt when one stalls: one WebRTC
        // negotiation that never completes must not use up the whole timeout.
        const addrs = seen.get(tabId)?.addrs ?? []
        const ma = addrs.length > 0 ? multiaddr(addrs[attempt % addrs.length]) : relayMa.encapsulate(`/p2p-circuit/webrtc/p2p/${tabId}`)
        attempt++
        try {
          const conn = await node.dial(ma, { signal: AbortSignal.timeout(Math.max(1000, Math.min(DIAL_ATTEMPT_MS, end - Date.now()))) })
          if (conn.limits == null) return conn
        } catch (err) {
          last = err
        }
        const direct = node.getConnections(id).find((c) => c.status === 'open' && c.limits == null)
        if (direct != null) return direct
        await new Promise((r) => setTimeout(r, 250))
      }
      obs.dialsRefused++
      throw new Error(`no direct connection to ${tabId}: ${last?.message ?? 'timeout'}`)
    },
    /** True if a fresh direct connection to the tab can be made (a blocked peer is refused). */
    async canConnect(tabId, { timeout = 6000 } = {}) {
      try {
        await h.dialDirect(tabId, { timeout })
        return true
      } catch {
        return false
      }
    },
    /**
     * A raw stream on any protocol: `target` is a peer id (direct connection) or a
     * Connection (e.g. `h.relayConnection()` or a limited circuit). The protocol is
     * negotiated normally; after that every byte is ours.
     */
    async openRaw(target, protocol, { runOnLimitedConnection = true, signal: given } = {}) {
      const conn = typeof target === 'string' ? await h.dialDirect(target) : target
      // 10 s for the negotiation by default, counted from here: a slow dial must not use it up.
      // Our own libp2p may have an identify-push stream open on the connection (after our
      // addresses changed): a tab takes one inbound identify-push stream at a time and resets a
      // second, which is not what a test of ours means to send. Only identify-push: a test's
      // own earlier streams of other protocols (sync pushes it left open) are not waited out.
      const end = Date.now() + 10_000
      while (protocol === IDENTIFY_PUSH_PROTOCOL && conn.streams.some((s) => s.protocol === protocol && s.direction === 'outbound') && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 20))
      }
      const signal = given ?? AbortSignal.timeout(10_000)
      let stream
      for (let attempt = 1; stream == null; attempt++) {
        try {
          stream = await conn.newStream(protocol, { runOnLimitedConnection, signal })
        } catch (err) {
          // The tab may still hold our own push's stream when we open ours (it answers with
          // a reset, an EOF here): once our push is done, the tab takes the next stream.
          if (protocol !== IDENTIFY_PUSH_PROTOCOL || err?.name !== 'UnexpectedEOFError' || attempt >= 3 || signal.aborted) throw err
          log(`${protocol} refused while our own push was open (${err.message}); again`)
          await new Promise((r) => setTimeout(r, 250))
        }
      }
      obs.streamsOpened++
      const chunks = []
      stream.addEventListener('message', (evt) => {
        chunks.push(evt.data.subarray())
      })
      const closed = new Promise((resolve) => {
        stream.addEventListener(
          'close',
          (evt) => {
            if (evt.error != null) obs.streamsReset++
            resolve({ at: Date.now(), error: evt.error })
          },
          { once: true }
        )
      })
      const dead = () => stream.status !== 'open' || stream.writeStatus !== 'writable'
      return {
        stream,
        closed,
        received: () => chunks,
        write(bytes) {
          if (dead()) return false
          try {
            stream.send(bytes)
            return true
          } catch {
            return false
          }
        },
        /**
         * Write `total` bytes of `byte` in chunks, honouring backpressure; stop when the
         * stream dies. `written` counts the bytes that left this peer (handed to the
         * muxer within the receiver's window), not those still queued here.
         */
        async writeRun(byte, total, { chunk = 16 * 1024 } = {}) {
          const buf = new Uint8Array(chunk).fill(byte)
          let queued = 0
          const result = (stoppedBy) => ({ written: queued - stream.writeBufferLength, stoppedBy })
          while (queued < total) {
            if (dead()) return result('reset')
            const n = Math.min(chunk, total - queued)
            let ok
            try {
              ok = stream.send(n === chunk ? buf : buf.subarray(0, n))
            } catch {
              return result('reset')
            }
            queued += n
            if (!ok) {
              const r = await drained(stream, closed)
              if (r === 'stalled') return result('stalled')
            }
          }
          while (stream.writeBufferLength > 0 && !dead()) if ((await drained(stream, closed)) !== 'drained') break
          return result(dead() ? 'reset' : 'done')
        },
        abort() {
          stream.abort(new Error('hostile peer done'))
        }
      }
    },
    /**
     * The length-prefix bomb: a varint that never ends (`bytes` of 0x80) on
     * `protocol`. `reset` is true when the receiver reset the stream before all was sent.
     */
    async lengthPrefixBomb(target, protocol, { bytes = 8 * 1024 * 1024, chunk = 16 * 1024 } = {}) {
      const s = await h.openRaw(target, protocol)
      const t0 = Date.now()
      const r = await s.writeRun(0x80, bytes, { chunk })
      const closed = await Promise.race([s.closed, new Promise((res) => setTimeout(() => res(undefined), 5000))])
      s.abort()
      return { written: r.written, reset: r.stoppedBy === 'reset' || closed != null, ms: (closed?.at ?? Date.now()) - t0 }
    },
    /**
     * Push a Yjs `update` of `doc` straight onto the sync protocol, as the app's provider
     * frames it (descriptor, then chunks when over one chunk), honouring backpressure.
     * Resolves with { frames, bytes, reset } once written (reset: the receiver hung up).
     */
    async pushSync(target, doc, update, { type = 'update' } = {}) {
      const s = await h.openRaw(target, SYNC_PROTOCOL)
      const frames = [{ type: 'open', doc }, ...syncProtocol.payloadMessages(type, update, 0)]
      let bytes = 0
      for (const msg of frames) {
        const f = frame(JSON.stringify(msg))
        if (!s.write(f)) return { frames: frames.length, bytes, reset: true, stream: s }
        bytes += f.byteLength
        await drained(s.stream, s.closed)
      }
      return { frames: frames.length, bytes, reset: false, stream: s }
    },
    async publish(topic, bytes) {
      return await node.services.pubsub.publish(topic, bytes)
    },
    async flood(fn, { count = 100, concurrency = 8 } = {}) {
      let i = 0
      let ok = 0
      let failed = 0
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (i < count) {
            const n = i++
            try {
              await fn(n)
              ok++
            } catch {
              failed++
            }
          }
        })
      )
      return { ok, failed }
    },
    observed: () => ({ ...obs, tabs: seen.size, connections: node.getConnections().length }),
    async stop() {
      for (const t of timers) clearInterval(t)
      await node.stop()
    }
  }
  return h
}

/** Encode an unsigned varint (for hand-made frames). */
export function varint(n) {
  const out = []
  let x = n
  while (x >= 0x80) {
    out.push((x % 0x80) | 0x80)
    x = Math.floor(x / 0x80)
  }
  out.push(x)
  return Uint8Array.from(out)
}

/** A length-prefixed frame of `payload` (bytes or a string). */
export function frame(payload) {
  const body = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload
  const out = new Uint8Array(varint(body.byteLength).byteLength + body.byteLength)
  const pre = varint(body.byteLength)
  out.set(pre)
  out.set(body, pre.byteLength)
  return out
}
