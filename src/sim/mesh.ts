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
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import type { Libp2p } from 'libp2p'
import { relayLog } from '../../relay/log.ts'
import { type Relay, startRelay } from '../../relay/relay.ts'
import { createZeroState, type ZeroStateApi } from '../lib/index.ts'
import { RELAY_LIMITS } from '../lib/mesh/constants.ts'
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

/** The relay of relay/relay.ts itself (admission, roster, gossip checks), listening on a simulated link too. */
export interface SimRelay {
  /** Its simulated link's address (`/memory/zs-sim-relay-N/p2p/<id>`), which the simulated peers dial. */
  addr: string
  /** Its WebSocket address, which real browser tabs dial. */
  wsAddr: string
  node: Libp2p
  relay: Relay
  stop(): Promise<void>
}

/** Start the relay on `/memory/zs-sim-relay-N` (and a WebSocket port on 127.0.0.1), forwarding the probe topic too. */
export async function startSimRelay(link?: LinkShape, opts: { departures?: boolean } = {}): Promise<SimRelay> {
  const dataDir = await mkdtemp(join(tmpdir(), 'zs-sim-relay-'))
  const relay = await startRelay({
    dataDir,
    log: relayLog('warn'),
    // Every simulated peer reaches the relay from one address (tabs each from their own): the
    // relay's limit of unproven reservations per address (32) refused peers of a fast join.
    limits: { unprovenPerAddress: RELAY_LIMITS.maxReservations },
    ...(opts.departures === false ? { departures: false } : {}),
    extra: { transports: [simLink({ ...link })], listen: [`/memory/zs-sim-relay-${relays++}`] }
  })
  const pubsub = (relay.node as unknown as { services: { pubsub: { subscribe(topic: string): void } } }).services.pubsub
  pubsub.subscribe(PROBE_TOPIC)
  const addrs = relay.multiaddrs()
  const addr = addrs.find((ma) => ma.startsWith('/memory/'))
  const wsAddr = addrs.find((ma) => ma.includes('/ws'))
  if (addr == null || wsAddr == null) throw new Error(`the simulated relay lacks an address: ${addrs.join(' ')}`)
  return {
    addr,
    wsAddr,
    node: relay.node,
    relay,
    async stop() {
      await relay.stop()
      await rm(dataDir, { recursive: true, force: true })
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
  /** Direct links a peer dials on its own up to (the mesh's targetPeers). Default the mesh's own (16). */
  targetPeers?: number
  /** Close incoming links past the high-water mark (the mesh's trimLinks). */
  trimLinks?: boolean
  /** Pull presences when joining (the mesh's presencePull). Default true. */
  presencePull?: boolean
  /** Answer newcomers (the mesh's newcomerAnswers). Default true. */
  newcomerAnswers?: boolean
  /** Broadcast pubsub peer discovery (the mesh's discoveryBroadcast). Default: the mesh's. */
  discoveryBroadcast?: boolean
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
      ...(init.targetPeers != null ? { targetPeers: init.targetPeers } : {}),
      ...(init.trimLinks === true ? { trimLinks: true } : {}),
      ...(init.presencePull === false ? { presencePull: false } : {}),
      ...(init.newcomerAnswers === false ? { newcomerAnswers: false } : {}),
      ...(init.discoveryBroadcast != null ? { discoveryBroadcast: init.discoveryBroadcast } : {}),
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
