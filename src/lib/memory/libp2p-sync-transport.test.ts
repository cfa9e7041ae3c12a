// @ts-expect-error ws ships no types here; only its WebSocket class is used
import { WebSocket as WsWebSocket } from 'ws'
import { createLibp2p, type Libp2p } from 'libp2p'
import { webSockets } from '@libp2p/websockets'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush } from '@libp2p/identify'
import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import { Libp2pSyncTransport } from './libp2p-sync-transport.ts'
import { syncTransportConformance } from './sync-transport-conformance.ts'
import { MeshProvider } from './mesh-provider.ts'

// Node 20 has no global WebSocket; @libp2p/websockets dials with it.
const g = globalThis as { WebSocket?: unknown }
g.WebSocket ??= WsWebSocket

async function node(): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0/ws'] },
    transports: [webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: { identify: identify(), identifyPush: identifyPush() }
  })
}

/** Three nodes, each with a started transport, all dialled to each other. */
async function mesh(n = 3): Promise<{ nodes: Libp2p[]; transports: Libp2pSyncTransport[]; cleanup: () => Promise<void> }> {
  const nodes = await Promise.all(Array.from({ length: n }, node))
  const transports = nodes.map((nd) => new Libp2pSyncTransport(nd))
  for (const t of transports) await t.start()
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await nodes[i]!.dial(nodes[j]!.getMultiaddrs()[0]!)
  return {
    nodes,
    transports,
    cleanup: async () => {
      for (const t of transports) await t.stop()
      await Promise.all(nodes.map((nd) => nd.stop()))
    }
  }
}

syncTransportConformance('Libp2pSyncTransport', async () => await mesh())

describe('MeshProvider over libp2p', () => {
  it('syncs existing state and then live updates between two nodes', async () => {
    const m = await mesh(2)
    try {
      const [ta, tb] = m.transports as [Libp2pSyncTransport, Libp2pSyncTransport]
      const a = new Y.Doc()
      const b = new Y.Doc()
      a.getMap('kv').set('before', 1)
      const pa = new MeshProvider('d', a, ta)
      const pb = new MeshProvider('d', b, tb)
      await Promise.all([pa.whenSynced, pb.whenSynced])
      expect(b.getMap('kv').get('before')).toBe(1)
      const seen = new Promise<void>((r) =>
        a.getMap('kv').observe(() => {
          if (a.getMap('kv').get('live') === 2) r()
        })
      )
      b.getMap('kv').set('live', 2)
      await seen
      expect(ta.metrics()['sync.bytesIn']).toBeGreaterThan(0)
      pa.destroy()
      pb.destroy()
    } finally {
      await m.cleanup()
    }
  })

  it('counts the bytes of a large sync answer from its frames without re-encoding them', async () => {
    const m = await mesh(2)
    try {
      const [ta, tb] = m.transports as [Libp2pSyncTransport, Libp2pSyncTransport]
      const a = new Y.Doc()
      const b = new Y.Doc()
      // ~4 MB that does not compress away: ~90 chunks of 45 KiB.
      const big = a.getMap('kv')
      for (let i = 0; i < 64; i++) big.set(`k${i}`, Buffer.from(crypto.getRandomValues(new Uint8Array(48 * 1024))).toString('base64'))
      const pa = new MeshProvider('big', a, ta)
      const pb = new MeshProvider('big', b, tb)
      await Promise.all([pa.whenSynced, pb.whenSynced])
      expect(b.getMap('kv').get('k63')).toBe(big.get('k63'))
      // Counted from the chunks' sizes: within a few bytes per frame of what was sent.
      const sent = ta.metrics()['sync.bytesOut'] ?? 0
      const received = tb.metrics()['sync.bytesIn'] ?? 0
      expect(sent).toBeGreaterThan(4_000_000)
      expect(Math.abs(received - sent) / sent).toBeLessThan(0.01)
      pa.destroy()
      pb.destroy()
    } finally {
      await m.cleanup()
    }
  })
})
