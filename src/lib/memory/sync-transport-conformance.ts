/**
 * The one conformance suite every {@link SyncTransport} runs (STYLE.md: each
 * interface with two implementations shares one suite). Call it from a
 * `*.test.ts` with a factory that returns three started, mutually connected
 * transports.
 */
import { describe, it, expect, afterEach } from 'vitest'
import { InvalidFrameError, StreamEndedError } from '../core/index.ts'
import type { SyncChannel, SyncTransport } from './sync-transport.ts'
import { SYNC_SV_CHARS, payloadMessage, payloadMessages, type SyncMessage } from './sync-protocol.ts'

/** What a conformance factory returns. */
export interface ConformanceSetup {
  transports: SyncTransport[]
  cleanup(): Promise<void>
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

function accept(t: SyncTransport, doc: string): Promise<SyncChannel> {
  return new Promise((resolve) => {
    const off = t.handle(doc, (ch) => {
      off()
      resolve(ch)
    })
  })
}

async function take(ch: SyncChannel, n: number): Promise<SyncMessage[]> {
  const out: SyncMessage[] = []
  if (n === 0) return out
  for await (const m of ch) {
    out.push(m)
    if (out.length >= n) break
  }
  return out
}

/** Register the suite under `describe(name)`. */
export function syncTransportConformance(name: string, setup: () => Promise<ConformanceSetup>): void {
  describe(`SyncTransport conformance: ${name}`, () => {
    let s: ConformanceSetup | undefined
    afterEach(async () => {
      await s?.cleanup()
      s = undefined
    })

    it('each peer sees the others', async () => {
      s = await setup()
      const [a, b, c] = s.transports as [SyncTransport, SyncTransport, SyncTransport]
      await until(() => a.peers().length === 2 && b.peers().length === 2 && c.peers().length === 2)
      expect(a.peers().sort()).toEqual([b.localPeer, c.localPeer].sort())
    })

    it('opens a channel per doc, routes it by doc, and delivers both ways in order', async () => {
      s = await setup()
      const [a, b] = s.transports as [SyncTransport, SyncTransport]
      await until(() => a.peers().includes(b.localPeer) && b.peers().includes(a.localPeer))
      const inboundX = accept(b, 'doc-x')
      const inboundY = accept(b, 'doc-y')
      const x = await a.open(b.localPeer, 'doc-x')
      const y = await a.open(b.localPeer, 'doc-y')
      const [bx, by] = await Promise.all([inboundX, inboundY])
      expect([bx.peer, bx.doc, by.doc]).toEqual([a.localPeer, 'doc-x', 'doc-y'])
      const sent: SyncMessage[] = Array.from({ length: 50 }, (_, i) => ({ type: 'step1', sv: btoa(String(i)) }))
      for (const m of sent) void x.send(m)
      const update = payloadMessage('update', 0, new Uint8Array([0, 0, 0]))
      await y.send(update)
      expect(await take(bx, 50)).toEqual(sent)
      expect(await take(by, 1)).toEqual([update])
      const step2 = payloadMessage('step2', 1, new Uint8Array([1, 2, 3]))
      await bx.send(step2)
      expect(await take(x, 1)).toEqual([step2])
    })

    it('carries large frames', async () => {
      s = await setup()
      const [a, b] = s.transports as [SyncTransport, SyncTransport]
      await until(() => a.peers().includes(b.localPeer))
      const inbound = accept(b, 'big')
      const ch = await a.open(b.localPeer, 'big')
      // A state vector of 700 KiB, then a payload of two chunks (descriptor + 2 chunk frames).
      const sv = 'A'.repeat(700 * 1024)
      await ch.send({ type: 'step1', sv })
      const payload = payloadMessages('step2', new Uint8Array(60 * 1024).fill(7), 3)
      for (const m of payload) await ch.send(m)
      const got = await take(await inbound, 4)
      expect(got[0]).toEqual({ type: 'step1', sv })
      expect(got.slice(1)).toEqual(payload)
      expect(got.slice(1).map((m) => m.type)).toEqual(['step2', 'chunk', 'chunk'])
    })

    it('hands unknown docs to the fallback, or closes them', async () => {
      s = await setup()
      const [a, b] = s.transports as [SyncTransport, SyncTransport]
      await until(() => a.peers().includes(b.localPeer))
      const refused = await a.open(b.localPeer, 'nobody-handles-this')
      expect(await take(refused, 1)).toEqual([]) // iteration ends: b closed it
      const taken: SyncChannel[] = []
      b.onUnknownDoc((ch) => {
        taken.push(ch)
        return true
      })
      const ok = await a.open(b.localPeer, 'memory/new')
      await until(() => taken.length === 1)
      expect(taken[0]!.doc).toBe('memory/new')
      await ok.send({ type: 'step1', sv: 'AA==' })
      expect(await take(taken[0]!, 1)).toEqual([{ type: 'step1', sv: 'AA==' }])
    })

    it('ends the other side when a channel closes', async () => {
      s = await setup()
      const [a, b] = s.transports as [SyncTransport, SyncTransport]
      await until(() => a.peers().includes(b.localPeer))
      const inbound = accept(b, 'd')
      const ch = await a.open(b.localPeer, 'd')
      const far = await inbound
      ch.close()
      expect(await take(far, 1)).toEqual([])
      await until(() => far.closed)
      await expect(ch.send({ type: 'step1', sv: '' })).rejects.toBeInstanceOf(StreamEndedError)
      await expect(far.send({ type: 'step1', sv: '' })).rejects.toBeInstanceOf(StreamEndedError)
    })

    it('the same failure is the same error type on every transport', async () => {
      s = await setup()
      const [a, b, c] = s.transports as [SyncTransport, SyncTransport, SyncTransport]
      await until(() => a.peers().includes(b.localPeer) && a.peers().includes(c.localPeer))
      // A peer we are not connected to.
      await expect(a.open('nobody-we-know', 'd')).rejects.toBeInstanceOf(StreamEndedError)
      // A message that is not a sync message, or a part over the frame's size: refused before it leaves.
      const inbound = accept(b, 'd')
      const ch = await a.open(b.localPeer, 'd')
      const far = await inbound
      await expect(ch.send({ type: 'nonsense' } as unknown as SyncMessage)).rejects.toBeInstanceOf(InvalidFrameError)
      await expect(ch.send({ type: 'step1', sv: 'A'.repeat(SYNC_SV_CHARS + 4) })).rejects.toBeInstanceOf(InvalidFrameError)
      // The channel still works after a refused message.
      await ch.send({ type: 'step1', sv: 'AA==' })
      expect(await take(far, 1)).toEqual([{ type: 'step1', sv: 'AA==' }])
      // A stopped transport opens nothing and its channels refuse to send.
      await a.stop()
      await expect(a.open(c.localPeer, 'd')).rejects.toBeInstanceOf(StreamEndedError)
      await expect(ch.send({ type: 'step1', sv: '' })).rejects.toBeInstanceOf(StreamEndedError)
    })

    it('hangUp makes both sides see the peer leave and closes its channels', async () => {
      s = await setup()
      const [a, b] = s.transports as [SyncTransport, SyncTransport]
      await until(() => a.peers().includes(b.localPeer) && b.peers().includes(a.localPeer))
      const leaves: string[] = []
      b.onPeer((e) => {
        if (e.type === 'leave') leaves.push(e.peer)
      })
      const inbound = accept(b, 'd')
      const ch = await a.open(b.localPeer, 'd')
      await inbound
      await a.hangUp(b.localPeer, 'test')
      await until(() => !a.peers().includes(b.localPeer) && leaves.includes(a.localPeer))
      await until(() => ch.closed)
    })

    it('stop() is idempotent and others see the peer leave', async () => {
      s = await setup()
      const [a, b, c] = s.transports as [SyncTransport, SyncTransport, SyncTransport]
      await until(() => b.peers().includes(a.localPeer) && c.peers().includes(a.localPeer))
      await a.stop()
      await a.stop()
      await until(() => !b.peers().includes(a.localPeer) && !c.peers().includes(a.localPeer))
      expect(a.peers()).toEqual([])
    })
  })
}
