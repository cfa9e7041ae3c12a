/**
 * Building blocks of the mesh simulator (`npm run sim`, bench/sim.mjs): a relay and N peers
 * in this process, each peer the same `createZeroState` as a tab or the terminal peer, with
 * its relay link and its direct links (posing as WebRTC) over simulated links (link.ts:
 * latency, jitter, loss). The bundled agents come from the built app over a local HTTP server.
 */
import '../lib/core/polyfills.ts'
import '../cli/node-globals.ts'
import { createReadStream, existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { extname, join, normalize, resolve } from 'node:path'
import { threadId } from 'node:worker_threads'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { createLibp2p, type Libp2p } from 'libp2p'
import { createZeroState, type ZeroStateApi } from '../lib/index.ts'
import { GOSSIP_LIMITS, RELAY_CONNECTION_MONITOR, RELAY_LIMITS, RELAY_TOPICS, gossipScoring, installGossipValidators } from '../lib/mesh/index.ts'
import { type LinkShape, simLink } from './link.ts'

/**
 * Every simulated peer is its own browser profile: the memory layer shares a profile's docs
 * between its tabs over BroadcastChannel (tab-sync.ts), and in one Node process every peer's
 * channel of the same name would join them, as if all were tabs of one profile (the audit
 * logs and journals of all peers merged, each write applied N times). A channel per
 * instance keeps each peer's docs its own.
 */
const SharedChannel = globalThis.BroadcastChannel
if (SharedChannel != null && !(SharedChannel as { simPrivate?: boolean }).simPrivate) {
  let n = 0
  class PrivateChannel extends SharedChannel {
    static simPrivate = true
    constructor(name: string) {
      super(`${name}#sim-${process.pid}-${threadId}-${n++}`)
    }
  }
  globalThis.BroadcastChannel = PrivateChannel
}

/** Wall-clock ms with sub-ms resolution, comparable across worker threads (each thread's performance.now() has its own origin). */
export function simNow(): number {
  return performance.timeOrigin + performance.now()
}

/** The gossip topic the simulator's probes travel on (subscribed by every peer and the relay, like presence). */
export const PROBE_TOPIC = 'zerostate/sim-probe/1'

let relays = 0

/** A relay like relay/relay.ts (circuit relay server, gossipsub forwarding the mesh's topics), on a simulated link. */
export interface SimRelay {
  addr: string
  node: Libp2p
  stop(): Promise<void>
}

/** Start a relay on `/memory/zs-sim-relay-N`. */
export async function startSimRelay(link?: LinkShape): Promise<SimRelay> {
  const node = await createLibp2p({
    addresses: { listen: [`/memory/zs-sim-relay-${relays++}`] },
    transports: [simLink({ ...link })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: RELAY_LIMITS.maxConnections },
    connectionMonitor: RELAY_CONNECTION_MONITOR,
    services: {
      identify: identify(),
      ping: ping(),
      relay: circuitRelayServer({ reservations: { maxReservations: RELAY_LIMITS.maxReservations } }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        canRelayMessage: true,
        heartbeatInterval: 250,
        maxInboundDataLength: GOSSIP_LIMITS.maxRpcBytes,
        ...gossipScoring()
      })
    }
  })
  for (const topic of [...RELAY_TOPICS, PROBE_TOPIC]) node.services.pubsub.subscribe(topic)
  installGossipValidators(node.services.pubsub)
  const addr = node
    .getMultiaddrs()
    .find((ma) => ma.toString().startsWith('/memory/'))
    ?.toString()
  if (addr == null) throw new Error('the simulated relay has no address')
  return {
    addr,
    node,
    async stop() {
      await node.stop()
    }
  }
}

const TYPES: Record<string, string> = { '.json': 'application/json', '.wasm': 'application/wasm' }

/** Serve the built bundled agents (build/agents, else static/agents) on a local port; resolves to their base URL. */
export async function serveAgents(root = process.cwd()): Promise<{ baseUrl: string; server: Server }> {
  const dir = [join(root, 'build/agents'), join(root, 'static/agents')].find((d) => existsSync(join(d, 'index.json')))
  if (dir == null) throw new Error('no built agents (build/agents or static/agents): run `npm run build:agents` first')
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^\/+/, '')
    const file = resolve(dir, path)
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
    createReadStream(file).pipe(res)
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server }
}

/** Options of one simulated peer. */
export interface SimPeerInit {
  relay: string
  agentsBaseUrl: string
  /** Donate compute (one worker). */
  donate?: boolean
  /** Direct connection budget (the mesh's maxPeers). Default the mesh's own (48). */
  maxPeers?: number
  link?: LinkShape
}

/** One simulated peer: the public API and when its probes arrived. */
export interface SimPeer {
  zs: ZeroStateApi
  id: string
  /** Probe seq → arrival time (simNow()). */
  probes: Map<number, number>
  stop(): Promise<void>
}

/** Start one peer: `createZeroState` over the simulated transports, subscribed to PROBE_TOPIC. */
export async function startSimPeer(init: SimPeerInit): Promise<SimPeer> {
  const zs = await createZeroState({
    persist: false,
    agentsBaseUrl: init.agentsBaseUrl,
    donate: { enabled: init.donate === true, workers: 1 },
    mesh: {
      relays: [init.relay],
      allowPrivateAddresses: true,
      ...(init.maxPeers != null ? { maxPeers: init.maxPeers } : {}),
      // The direct transport first: the dial of `<relay>/p2p-circuit/webrtc/p2p/<peer>` is its.
      transports: [simLink({ relay: init.relay, ...init.link }), circuitRelayTransport()]
    }
  })
  const probes = new Map<number, number>()
  const pubsub = zs.mesh.libp2p.services.pubsub
  pubsub.subscribe(PROBE_TOPIC)
  pubsub.addEventListener('message', (evt) => {
    if (evt.detail.topic !== PROBE_TOPIC) return
    const seq = new DataView(evt.detail.data.buffer, evt.detail.data.byteOffset, evt.detail.data.byteLength).getUint32(0)
    if (!probes.has(seq)) probes.set(seq, simNow())
  })
  let stopped = false
  return {
    zs,
    id: zs.peerId,
    probes,
    async stop() {
      if (stopped) return
      stopped = true
      await zs.stop()
    }
  }
}

/** A probe's payload: its sequence number, then padding to `bytes` (presence-sized by default). */
export function probePayload(seq: number, bytes = 512): Uint8Array {
  const data = new Uint8Array(Math.max(4, bytes))
  new DataView(data.buffer).setUint32(0, seq)
  return data
}

/** Publish probe `seq` from `from`; resolves to the time it was sent (simNow()). */
export async function sendProbe(from: SimPeer, seq: number, bytes?: number): Promise<number> {
  const at = simNow()
  await from.zs.mesh.libp2p.services.pubsub.publish(PROBE_TOPIC, probePayload(seq, bytes))
  return at
}

/** Whether `peer` holds a presence of every id in `ids` (its own excepted). */
export function knowsPresenceOf(peer: SimPeer, ids: Iterable<string>): boolean {
  const known = new Set(peer.zs.mesh.diagnostics().presence.map((p) => p.peerId))
  for (const id of ids) if (id !== peer.id && !known.has(id)) return false
  return true
}

/** Resolve once `test()` holds, checked every `everyMs`; reject naming `what` after `ms`. */
export async function waitFor(test: () => boolean | Promise<boolean>, ms: number, what: string, everyMs = 50): Promise<number> {
  const t0 = performance.now()
  while (!(await test())) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
  return performance.now() - t0
}

/** The q-quantile (0..1) of `xs` (nearest rank); NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number
}
