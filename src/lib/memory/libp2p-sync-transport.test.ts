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
import { framed } from '../core/index.ts'
import { SYNC_PROTOCOL_ID, payloadMessages, syncProtocol } from './sync-protocol.ts'
import { RejectedUpdateError } from './errors.ts'
import type { SyncChannel } from './sync-transport.ts'

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

/**
 * A raw sender's transfer: `keys` random 20 KB values (they do not compress away) as one Yjs
 * update cut into sync frames, and a sync stream from `from` to `to` already opened on doc 'd'.
 */
async function rawTransfer(from: Libp2p, to: Libp2p, keys: number) {
  const src = new Y.Doc()
  for (let i = 0; i < keys; i++) src.getMap('kv').set(`k${i}`, Buffer.from(crypto.getRandomValues(new Uint8Array(15 * 1024))).toString('base64'))
  const frames = payloadMessages('update', Y.encodeStateAsUpdate(src), 0)
  const stream = await from.dialProtocol(to.getMultiaddrs()[0]!, SYNC_PROTOCOL_ID)
  const f = framed(stream, syncProtocol)
  await f.write({ type: 'open', doc: 'd' })
  return { frames, stream, f }
}

/**
 * Of two nodes, the provider's side (na, ta) and the raw sender (nb). A provider opens its own
 * channel to a peer whose id sorts after its own (one side opens) and a new channel replaces the
 * old one for that peer: so the provider goes on the node that is not the opener, or its own
 * channel could replace the raw sender's mid-transfer (which failed these tests about 1 run in 3).
 */
function rawSenderPair(m: Awaited<ReturnType<typeof mesh>>): { na: Libp2p; nb: Libp2p; ta: Libp2pSyncTransport } {
  const [t0, t1] = m.transports as [Libp2pSyncTransport, Libp2pSyncTransport]
  const i = t0.localPeer > t1.localPeer ? 0 : 1
  return { na: m.nodes[i] as Libp2p, nb: m.nodes[1 - i] as Libp2p, ta: m.transports[i] as Libp2pSyncTransport }
}

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

describe('Libp2pSyncTransport refusals (issue 11)', () => {
  /** A peer that opens a channel of doc `d` to the first node and then only writes (a hostile peer does not read). */
  async function writer(m: { nodes: Libp2p[] }, handled: Promise<SyncChannel>) {
    const [na, nb] = m.nodes as [Libp2p, Libp2p]
    const stream = await nb.dialProtocol(na.getMultiaddrs()[0]!, SYNC_PROTOCOL_ID)
    const f = framed(stream, syncProtocol)
    await f.write({ type: 'open', doc: 'd' })
    return { stream, f, ch: await handled }
  }

  it('a channel closed with reset stops the peer writing; a plain close leaves its side writable', async () => {
    const m = await mesh(2)
    try {
      const ta = m.transports[0] as Libp2pSyncTransport
      const handled = (): Promise<SyncChannel> => {
        const got = Promise.withResolvers<SyncChannel>()
        ta.handle('d', (ch) => got.resolve(ch))
        return got.promise
      }
      const plain = await writer(m, handled())
      plain.ch.close()
      const reset = await writer(m, handled())
      reset.ch.close({ reset: true })
      // The peer is told: its stream is reset and further writes fail, so nothing more is sent to us.
      await expect.poll(() => reset.stream.status, { timeout: 20_000 }).toBe('reset')
      await expect(reset.f.write({ type: 'step1', sv: '' })).rejects.toThrow()
      // A graceful close only ends our side: the peer could go on writing what nobody reads.
      expect(plain.stream.writeStatus).toBe('writable')
      await plain.f.write({ type: 'step1', sv: '' })
    } finally {
      await m.cleanup()
    }
  })

  it('an invalid frame after the open resets the stream (counted as an invalid frame)', async () => {
    const m = await mesh(2)
    try {
      const ta = m.transports[0] as Libp2pSyncTransport
      const got = Promise.withResolvers<SyncChannel>()
      ta.handle('d', (ch) => got.resolve(ch))
      const w = await writer(m, got.promise)
      // A length prefix that never ends (issue 11 item 2), after a valid open.
      w.stream.send(new Uint8Array(64).fill(0x80))
      await expect.poll(() => w.stream.status, { timeout: 20_000 }).toBe('reset')
      expect(w.ch.closed).toBe(true)
      expect(ta.metrics()['sync.invalidFrames']).toBe(1)
    } finally {
      await m.cleanup()
    }
  })

  it('a transfer refused mid-way by the doc admission resets the stream: the sender cannot write the rest', async () => {
    const m = await mesh(2)
    try {
      const { na, nb, ta } = rawSenderPair(m)
      const refused: Error[] = []
      const doc = new Y.Doc()
      const admitKeys = () => (_root: string, key: string) => {
        if (key === 'k3') throw new RejectedUpdateError('k3 is over the quota')
      }
      const p = new MeshProvider('d', doc, ta, {
        admitKeys,
        onReject: (_peer, err) => refused.push(err),
        limits: { maxUpdateBytes: 8 * 1024 * 1024 }
      })
      // ~2 MB that does not compress away: ~45 chunks, refused at the fourth key (~5 % in).
      const { frames, stream, f } = await rawTransfer(nb, na, 100)
      let written = 0
      for (const frame of frames) {
        if (stream.status !== 'open') break
        try {
          await f.write(frame)
          written++
        } catch {
          break
        }
      }
      await expect.poll(() => stream.status, { timeout: 20_000 }).toBe('reset')
      expect(refused[0]).toBeInstanceOf(RejectedUpdateError)
      expect(p.counters.toRecord()['sync.refusedMidTransfer']).toBe(1)
      expect(written).toBeLessThan(frames.length)
      expect(doc.getMap('kv').size).toBe(0)
      p.destroy()
    } finally {
      await m.cleanup()
    }
  })

  it('a chunked transfer announced over the cap is refused and its stream reset: none of its chunks is read', async () => {
    const m = await mesh(2)
    try {
      const { na, nb, ta } = rawSenderPair(m)
      const refused: Error[] = []
      const p = new MeshProvider('d', new Y.Doc(), ta, { onReject: (_peer, err) => refused.push(err), limits: { maxUpdateBytes: 256 * 1024 } })
      const { frames, stream, f } = await rawTransfer(nb, na, 40)
      for (const frame of frames) await f.write(frame).catch(() => {})
      await expect.poll(() => stream.status, { timeout: 20_000 }).toBe('reset')
      expect(refused.map((e) => e.name)).toEqual(['PayloadTooLargeError'])
      // Nothing after the announcement was read as a stray chunk.
      expect(p.counters.toRecord()['sync.strayChunks'] ?? 0).toBe(0)
      p.destroy()
    } finally {
      await m.cleanup()
    }
  })
})
