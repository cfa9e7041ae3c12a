// The whole layer over real libp2p nodes (WebSockets on 127.0.0.1), plus a hostile peer.
// @ts-expect-error ws ships no types here; only its WebSocket class is used
import { WebSocket as WsWebSocket } from 'ws'
import { createLibp2p, type Libp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { describe, it, expect, afterEach } from 'vitest'
import { createMemoryLayer, type MemoryLayer } from './layer.ts'
import { Libp2pSyncTransport } from './libp2p-sync-transport.ts'
import { SYNC_PROTOCOL_ID, payloadMessages, syncProtocol } from './sync-protocol.ts'
import { framed, type FramedStream } from '../core/index.ts'
import { fakeSha, newIdentity, until } from './test-helpers.ts'
import { nodeUpdateChecker } from './node-update-checker.ts'

const g = globalThis as { WebSocket?: unknown }
g.WebSocket ??= WsWebSocket

const cleanup: Array<() => Promise<void>> = []
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!()
})

async function node(): Promise<Libp2p> {
  const n = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify(), identifyPush: identifyPush() }
  })
  cleanup.push(async () => {
    await n.stop()
  })
  return n
}

async function peer(): Promise<{ node: Libp2p; layer: MemoryLayer; rejected: string[] }> {
  const n = await node()
  const rejected: string[] = []
  const layer = createMemoryLayer({
    identity: await newIdentity(),
    transport: new Libp2pSyncTransport(n),
    persistence: 'none',
    tabSync: false,
    checker: nodeUpdateChecker(),
    onPeerRejected: (p) => rejected.push(p)
  })
  await layer.start()
  cleanup.push(() => layer.stop())
  return { node: n, layer, rejected }
}

describe('memory layer over libp2p', () => {
  it('three nodes share the registry and memory; a late node catches up', async () => {
    const [a, b, c] = [await peer(), await peer(), await peer()]
    await b.node.dial(a.node.getMultiaddrs()[0]!)
    await c.node.dial(a.node.getMultiaddrs()[0]!)
    await c.node.dial(b.node.getMultiaddrs()[0]!)
    const entry = await a.layer.registry.publish({
      id: 'net-agent',
      manifest: { name: 'N', capabilities: ['c'] },
      moduleSha256: fakeSha(1),
      holders: [a.node.peerId.toString()]
    })
    await b.layer.memory.set('shared', 'k', 'v')
    for (const p of [a, b, c]) {
      await until(() => p.layer.registry.get(entry.key)?.signature === entry.signature && p.layer.memory.get('shared', 'k') === 'v', 8000)
    }
    const late = await peer()
    await late.node.dial(c.node.getMultiaddrs()[0]!)
    await late.layer.whenSynced
    await until(() => late.layer.registry.list().length === 1 && late.layer.memory.get('shared', 'k') === 'v', 8000)
    expect(late.layer.registry.get('net-agent')?.holders).toEqual([a.node.peerId.toString()])
  })

  it('a peer that sends malformed updates is hung up on at the first (no honest peer sends one); honest sync goes on', async () => {
    const victim = await peer()
    const honest = await peer()
    const evil = await node()
    // It speaks the protocol (so identify tells the victim) and keeps every registry stream it is offered.
    const offered: Array<FramedStream<typeof syncProtocol.schema>> = []
    await evil.handle(SYNC_PROTOCOL_ID, async (stream) => {
      const f = framed(stream, syncProtocol)
      const first = await f.read().catch(() => undefined)
      if (first?.type === 'open' && first.doc === 'registry') offered.push(f)
    })
    await honest.node.dial(victim.node.getMultiaddrs()[0]!)
    const conn = await evil.dial(victim.node.getMultiaddrs()[0]!)
    await until(() => victim.layer.metrics()['memory.docs']! > 0 && victim.node.getConnections(evil.peerId).length > 0)
    // One side of a pair opens a doc's stream; a second stream would replace the first. Use the pair's own one.
    let f: (typeof offered)[number]
    if (victim.node.peerId.toString() < evil.peerId.toString()) {
      await until(() => offered.length > 0, 5000)
      f = offered[0]!
    } else {
      f = framed(await conn.newStream(SYNC_PROTOCOL_ID), syncProtocol)
      await f.write({ type: 'open', doc: 'registry' })
    }
    for (const bad of [new Uint8Array([0xde, 0xad]), new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0]), new Uint8Array(200).fill(0x81)]) {
      for (const m of payloadMessages('update', bad)) await f.write(m).catch(() => {})
    }
    await until(() => victim.node.getConnections(evil.peerId).length === 0, 5000)
    expect(victim.rejected.filter((p) => p === evil.peerId.toString()).length).toBeGreaterThanOrEqual(1)
    expect(victim.layer.metrics()['memory.sync.refused.malformed']).toBeGreaterThanOrEqual(1)
    expect(victim.layer.metrics()['memory.sync.peersDisconnected']).toBe(1)
    await honest.layer.memory.set('after', 'k', 1)
    await until(() => victim.layer.memory.get('after', 'k') === 1, 5000)
  })
})
