/**
 * The gossip repairs of src/lib/mesh/gossip-repair.ts between two real libp2p nodes with
 * gossipsub under the mesh's RPC limit, over a simulated link: an RPC of many messages no
 * longer breaks the limit, and a peer gossipsub dropped on a read error while the connection
 * stayed open gossips again both ways.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { createLibp2p } from 'libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { Counters } from '../lib/core/index.ts'
import { GOSSIP_LIMITS } from '../lib/mesh/constants.ts'
import { repairGossip, splitRpc } from '../lib/mesh/gossip-repair.ts'
import { simLink } from './link.ts'
import { waitFor } from './mesh.ts'

const TOPIC = 'zerostate/test-repair/1'
let n = 0
const started: Array<{ stop(): unknown }> = []

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()))
})

interface Gs {
  sendRpc(id: string, rpc: unknown): boolean
  mcache: { msgs: Map<string, { message: unknown }> }
  getPeers(): Array<{ toString(): string }>
  getSubscribers(topic: string): Array<{ toString(): string }>
  subscribe(topic: string): void
  publish(topic: string, data: Uint8Array): Promise<unknown>
  addEventListener(type: 'message', fn: (evt: CustomEvent<{ topic: string; data: Uint8Array }>) => void): void
}

/** Two nodes linked, both subscribed to TOPIC, each with the repairs (`rejoins`: how many a minute). */
async function pair(rejoins = 3) {
  const name = `/memory/zs-test-repair-${process.pid}-${n++}`
  const make = async (listen: string[]) => {
    const node = await createLibp2p({
      addresses: { listen },
      transports: [simLink({ latencyMs: 2, jitterMs: 0, loss: 0 })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: { denyDialMultiaddr: () => false },
      services: {
        identify: identify(),
        pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, heartbeatInterval: 100, maxInboundDataLength: GOSSIP_LIMITS.maxRpcBytes })
      }
    })
    started.push(node)
    const counters = new Counters('mesh')
    repairGossip(node.services.pubsub, {
      splitBytes: GOSSIP_LIMITS.maxRpcBytes / 2,
      counters,
      rejoinMs: 200,
      maxRejoins: rejoins,
      connection: (peer) => node.getConnections(peer).find((c) => c.status === 'open')
    })
    const gs = node.services.pubsub as unknown as Gs
    gs.subscribe(TOPIC)
    const got = new Set<string>()
    gs.addEventListener('message', (evt) => {
      if (evt.detail.topic === TOPIC) got.add(new TextDecoder().decode(evt.detail.data))
    })
    return { node, gs, counters, got }
  }
  const a = await make([name])
  const b = await make([])
  await b.node.dial(multiaddr(`${name}/p2p/${a.node.peerId.toString()}`))
  await waitFor(() => a.gs.getSubscribers(TOPIC).length === 1 && b.gs.getSubscribers(TOPIC).length === 1, 10_000, 'both subscribed', 20)
  return { a, b }
}

/** `from` publishes a numbered message every 100 ms until `to` got one of them (false after `ms`). */
async function reaches(from: Awaited<ReturnType<typeof pair>>['a'], to: typeof from, tag: string, ms = 8000): Promise<boolean> {
  const t0 = performance.now()
  for (let i = 0; performance.now() - t0 < ms; i++) {
    await from.gs.publish(TOPIC, new TextEncoder().encode(`${tag} ${i}`)).catch(() => {})
    await new Promise((r) => setTimeout(r, 100))
    if ([...to.got].some((m) => m.startsWith(`${tag} `))) return true
  }
  return false
}

describe('gossip repairs', () => {
  it('splitRpc: messages over the budget leave in several RPCs, in order, the control part with the last', () => {
    const m = (i: number) => ({ data: new Uint8Array(1000), seqno: Uint8Array.of(i), topic: 't' })
    const control = { ihave: [], iwant: [], graft: [], prune: [], idontwant: [] }
    const rpc = { subscriptions: [], messages: Array.from({ length: 80 }, (_, i) => m(i)), control }
    const parts = splitRpc(rpc, 32 * 1024)
    expect(parts.length).toBe(3)
    expect(parts.flatMap((p) => p.messages.map((x) => x.seqno[0]))).toEqual(Array.from({ length: 80 }, (_, i) => i))
    for (const p of parts) expect(p.messages.reduce((s, x) => s + x.data.length, 0)).toBeLessThanOrEqual(32 * 1024)
    expect(parts.slice(0, -1).every((p) => p.control === undefined)).toBe(true)
    expect(parts.at(-1)?.control).toBe(control)
    // Under the budget, or one message: the RPC as it was.
    expect(splitRpc({ messages: [m(1), m(2)] }, 32 * 1024)).toHaveLength(1)
    expect(splitRpc({ messages: [{ data: new Uint8Array(70_000) }] }, 32 * 1024)).toHaveLength(1)
  })

  it('an answer of 80 presence-sized messages (an IWANT of a peer that fell behind) reaches the peer, which keeps the link', async () => {
    const { a, b } = await pair(0)
    for (let i = 0; i < 80; i++) await a.gs.publish(TOPIC, new TextEncoder().encode(`bulk ${i} ${'x'.repeat(1000)}`))
    await waitFor(() => [...b.got].filter((x) => x.startsWith('bulk')).length === 80, 10_000, 'the 80 messages', 20)
    // All of them at once, as gossipsub answers an IWANT: ~90 KB, over the 64 KB a reader takes.
    const raw = [...a.gs.mcache.msgs.values()].map((e) => e.message)
    expect(raw.length).toBeGreaterThanOrEqual(80)
    a.gs.sendRpc(b.node.peerId.toString(), { subscriptions: [], messages: raw })
    expect(a.counters.toRecord()['mesh.gossip.rpcSplit']).toBe(1)
    expect(await reaches(a, b, 'after')).toBe(true)
    expect(b.counters.toRecord()['mesh.gossip.readStreamErrors.InvalidDataLengthError'] ?? 0).toBe(0)
    expect(b.gs.getPeers().map(String)).toContain(a.node.peerId.toString())
  }, 30_000)

  it('a peer dropped from gossip on an oversized RPC while the connection stays open gossips again, both ways', async () => {
    const { a, b } = await pair(3)
    // One message larger than the reader takes: b's reader fails and gossipsub drops a.
    a.gs.sendRpc(b.node.peerId.toString(), { subscriptions: [], messages: [{ data: new Uint8Array(GOSSIP_LIMITS.maxRpcBytes + 1000), topic: TOPIC }] })
    await waitFor(() => (b.counters.toRecord()['mesh.gossip.readStreamErrors.InvalidDataLengthError'] ?? 0) === 1, 5000, 'the read error', 20)
    expect(b.node.getConnections(a.node.peerId).some((c) => c.status === 'open')).toBe(true)
    expect(await reaches(a, b, 'a-to-b')).toBe(true)
    expect(await reaches(b, a, 'b-to-a')).toBe(true)
    expect(b.counters.toRecord()['mesh.gossip.rejoined']).toBeGreaterThanOrEqual(1)
  }, 30_000)
})
