import { describe, it, expect, afterEach, vi } from 'vitest'
import * as Y from 'yjs'
import { MeshProvider, RESYNC_BACKOFF_MAX, SETTLE_WAIT_MS } from './mesh-provider.ts'
import { MemoryNetwork, MemorySyncTransport } from './memory-sync-transport.ts'
import { PAYLOAD_CHUNK_BYTES, PayloadIntegrityError, PayloadTooLargeError, toBase64 } from '../core/index.ts'
import { payloadMessage, payloadMessages, type SyncMessage } from './sync-protocol.ts'
import { SyncRequestOverBudgetError } from './errors.ts'
import { rng, until } from './test-helpers.ts'
import type { SyncChannel } from './sync-transport.ts'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

async function peer(net: MemoryNetwork, id: string, chaos?: { maxDelayMs: number; duplicate: number; seed: number }) {
  const t = new MemorySyncTransport(net, id, { chaos })
  await t.start()
  const doc = new Y.Doc()
  const provider = new MeshProvider('d', doc, t, { limits: { resyncIntervalMs: 0 } })
  cleanups.push(() => {
    doc.destroy()
    return t.stop()
  })
  return { t, doc, provider }
}

// Map keys sorted: toJSON() follows local integration order, which legitimately differs between peers.
function state(doc: Y.Doc) {
  return { map: Object.fromEntries(Object.entries(doc.getMap('m').toJSON()).sort()), text: doc.getText('t').toString(), arr: doc.getArray('a').toJSON() }
}

describe('MeshProvider', () => {
  it('converges 4 peers under reordered, delayed and duplicated delivery with concurrent edits', async () => {
    const net = new MemoryNetwork()
    const peers = await Promise.all(['p1', 'p2', 'p3', 'p4'].map((id, i) => peer(net, id, { maxDelayMs: 4, duplicate: 0.3, seed: i + 7 })))
    const rand = rng(42)
    let pushes = 0
    for (let round = 0; round < 40; round++) {
      const p = peers[Math.floor(rand() * peers.length)]!
      const op = rand()
      if (op < 0.4) p.doc.getMap('m').set(`k${Math.floor(rand() * 10)}`, round)
      else if (op < 0.7) p.doc.getText('t').insert(Math.floor(rand() * (p.doc.getText('t').length + 1)), String.fromCharCode(97 + (round % 26)))
      else if (op < 0.85) {
        p.doc.getArray('a').push([round])
        pushes++
      } else if (p.doc.getText('t').length > 0) p.doc.getText('t').delete(0, 1)
      // Let some deliveries (delayed up to 4 ms) interleave with the edits: part of the scenario, not a wait.
      if (round % 7 === 0) await new Promise((r) => setTimeout(r, 2))
    }
    // Converged: the same content and identical state vectors (nothing pending). Content alone
    // can match a moment early: a peer that has not yet received a character inserted and
    // deleted elsewhere shows the same text (forwarded copies change arrival order).
    const svs = () => peers.map((p) => Buffer.from(Y.encodeStateVector(p.doc)).toString('hex'))
    await until(
      () => {
        const s = peers.map((p) => JSON.stringify(state(p.doc)))
        return s.every((x) => x === s[0]) && new Set(svs()).size === 1
      },
      5000,
      'convergence'
    )
    // The seeded run pushes a fixed number of items: none lost, none doubled by the duplicated deliveries.
    expect(pushes).toBeGreaterThan(0)
    expect(state(peers[0]!.doc).arr).toHaveLength(pushes)
    expect(peers.every((p) => p.doc.store.pendingStructs == null && p.doc.store.pendingDs == null)).toBe(true)
  })

  it('a late joiner receives only what it lacks and catches up', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const b = await peer(net, 'b')
    for (let i = 0; i < 100; i++) a.doc.getMap('m').set(`k${i}`, i)
    await until(() => b.doc.getMap('m').size === 100)
    const c = await peer(net, 'c')
    await c.provider.whenSynced
    await until(() => c.doc.getMap('m').size === 100)
    expect(c.doc.getMap('m').get('k99')).toBe(99)
    // The join's own exchanges are over (their answers are hash-checked off the main thread, so
    // the last may still be in flight when c holds the data).
    await until(() => a.provider.syncedPeers.has('c') && c.provider.syncedPeers.size === 2)
    // c already has everything: a fresh exchange sends a diff with no structs.
    const before = a.provider.counters.get('bytesSent')
    const appliedA = a.provider.counters.get('updatesApplied')
    const appliedC = c.provider.counters.get('updatesApplied')
    a.provider.resync()
    c.provider.resync()
    // Both exchanges are over once a and c each applied the two answers (from the other two peers).
    await until(() => a.provider.counters.get('updatesApplied') === appliedA + 2 && c.provider.counters.get('updatesApplied') === appliedC + 2)
    expect(a.provider.counters.get('bytesSent') - before).toBeLessThan(20)
  })

  it('a newcomer meeting several peers at once receives the doc once, then only diffs', async () => {
    const net = new MemoryNetwork()
    const holders = await Promise.all(['a', 'b', 'c', 'd'].map((id) => peer(net, id)))
    for (let i = 0; i < 200; i++) holders[0]!.doc.getMap('m').set(`agent-${i}`, `record ${i} `.padEnd(200, 'x'))
    await until(() => holders.every((h) => h.doc.getMap('m').size === 200))
    const whole = Y.encodeStateAsUpdate(holders[0]!.doc).byteLength
    // 'e' sorts after every holder: all four open their channel to it at about once, and its
    // messages take a few ms (as on a network), so all four channels are open before any answer.
    const e = await peer(net, 'e', { maxDelayMs: 4, duplicate: 0, seed: 3 })
    await until(() => e.doc.getMap('m').size === 200 && e.provider.syncedPeers.size === 4)
    expect(e.doc.getMap('m').get('agent-199')).toBe('record 199 '.padEnd(200, 'x'))
    // One full copy (the first peer asked), then diffs of a few bytes from the other three:
    // asked with an empty state vector at once, each of the four sent the whole doc.
    expect(e.provider.counters.get('bytesReceived')).toBeGreaterThanOrEqual(whole)
    expect(e.provider.counters.get('bytesReceived')).toBeLessThan(whole * 1.2)
    expect(e.provider.counters.get('step1Deferred')).toBe(3)
  })

  it('does not echo a remote update back to the peer it came from', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const b = await peer(net, 'b')
    await Promise.all([a.provider.whenSynced, b.provider.whenSynced])
    const sentByB = b.provider.counters.get('bytesSent')
    const updatesByB = b.provider.counters.get('updatesSent')
    a.doc.getMap('m').set('x', 'y'.repeat(1000))
    await until(() => b.doc.getMap('m').get('x') !== undefined)
    // An echo would leave b before b's own next edit does: once that edit reached a, b sent only it.
    b.doc.getMap('m').set('z', 1)
    await until(() => a.doc.getMap('m').get('z') === 1)
    expect(b.provider.counters.get('updatesSent')).toBe(updatesByB + 1)
    expect(b.provider.counters.get('bytesSent') - sentByB).toBeLessThan(100)
  })

  it('reassembles payloads larger than one frame', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    a.doc.getMap('m').set('big', 'x'.repeat(2_500_000))
    const b = await peer(net, 'b')
    await until(() => (b.doc.getMap('m').get('big') as string | undefined)?.length === 2_500_000)
    // It crossed as one chunked payload (descriptor + 2.5 MB / 45 KiB chunks), hash checked, not inline.
    expect(b.provider.counters.get('payloadsReceived')).toBe(1)
    expect(a.provider.counters.get('payloadsSent')).toBe(1)
    expect(a.t.metrics()['sync.bytesOut']).toBeGreaterThan(2_500_000)
    // And a large incremental update after the initial sync does too.
    a.doc.getMap('m').set('big2', 'y'.repeat(1_000_000))
    await until(() => (b.doc.getMap('m').get('big2') as string | undefined)?.length === 1_000_000)
    expect(b.provider.counters.get('payloadsReceived')).toBe(2)
    expect(b.provider.counters.get('rejectedUpdates')).toBe(0)
  })

  /** A raw channel from a hostile peer to provider `name` on `a` (which refuses with maxStrikes 1 = a hang-up). */
  async function hostile(net: MemoryNetwork, a: Awaited<ReturnType<typeof peer>>, name: string, limits: Record<string, number> = {}) {
    const evil = new MemorySyncTransport(net, 'z-evil')
    await evil.start()
    cleanups.push(() => evil.stop())
    const doc = new Y.Doc()
    const rejected: Error[] = []
    const provider = new MeshProvider(name, doc, a.t, { limits: { resyncIntervalMs: 0, maxStrikes: 1, ...limits }, onReject: (_p, err) => rejected.push(err) })
    cleanups.push(() => provider.destroy())
    const ch = await evil.open('a', name)
    return { evil, doc, provider, rejected, ch }
  }

  function bigUpdate(key: string, chars: number): Uint8Array {
    const src = new Y.Doc()
    src.getMap('m').set(key, 'q'.repeat(chars))
    return Y.encodeStateAsUpdate(src)
  }

  it('answers repeated step-1 requests one at a time, within a budget: the rest coalesce or are struck (no answer is built per request)', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const h = await hostile(net, a, 'asked', { maxStrikes: 3, maxStep1PerMinute: 12 })
    // The victim's doc: 2 MB, sent in chunks. Ten bytes of empty state vector ask for all of it.
    h.doc.getMap('m').set('big', 'q'.repeat(2_000_000))
    // Sent until the victim hangs up (a send on the closed channel throws).
    for (let i = 0; i < 40; i++) await h.ch.send({ type: 'step1', sv: toBase64(Y.encodeStateVector(new Y.Doc())) }).catch(() => {})
    await until(() => a.t.hungUp.length === 1, 10_000, 'the asker hung up on')
    expect(a.t.hungUp).toEqual([{ peer: 'z-evil', reason: '3 refused updates' }])
    // Past the twelve of the budget, each is struck (those still in flight when it hung up too).
    expect(h.provider.counters.get('step1OverBudget')).toBeGreaterThanOrEqual(3)
    expect(h.rejected.filter((e) => e instanceof SyncRequestOverBudgetError).length).toBeGreaterThanOrEqual(3)
    // Within it: one answered at once, the ones that came while it was sent coalesced into the
    // next: a few answers of 2 MB, not twelve (the old code built and queued one per request).
    expect(h.provider.counters.get('step1Coalesced')).toBeGreaterThanOrEqual(8)
    await until(() => h.provider.counters.get('bytesSent') >= 2_000_000, 10_000, 'an answer')
    expect(h.provider.counters.get('bytesSent')).toBeLessThan(3 * 2_100_000)
  })

  it('refuses a payload with a corrupted chunk: counted, the sender struck, the doc unchanged', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const h = await hostile(net, a, 'victim')
    const msgs = payloadMessages('update', bigUpdate('big', 200_000), 5)
    expect(msgs.length).toBeGreaterThan(3)
    // Flip one byte of the second chunk: same length, so only the sha-256 at the end can tell.
    const chunk = msgs[2] as Extract<SyncMessage, { type: 'chunk' }>
    const bytes = Buffer.from(chunk.data, 'base64')
    bytes[100] = bytes[100]! ^ 0xff
    msgs[2] = { ...chunk, data: toBase64(bytes) }
    for (const m of msgs) await h.ch.send(m)
    await until(() => h.rejected.length === 1)
    expect(h.rejected[0]).toBeInstanceOf(PayloadIntegrityError)
    expect(h.rejected[0]).not.toBeInstanceOf(PayloadTooLargeError)
    expect(h.provider.counters.get('payloadIntegrityErrors')).toBe(1)
    expect(h.provider.counters.get('rejectedUpdates')).toBe(1)
    expect(h.provider.counters.get('payloadsReceived')).toBe(0)
    expect(a.t.hungUp).toEqual([{ peer: 'z-evil', reason: '1 refused updates' }])
    expect(h.doc.getMap('m').size).toBe(0)
    expect(h.doc.store.clients.size).toBe(0)
  })

  it('refuses a chunk that is not base64 (the frame schema bounds its length only): counted, the sender struck', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const h = await hostile(net, a, 'victim')
    const msgs = payloadMessages('update', bigUpdate('big', 200_000), 5)
    const chunk = msgs[1] as Extract<SyncMessage, { type: 'chunk' }>
    msgs[1] = { ...chunk, data: `!${chunk.data.slice(1)}` }
    for (const m of msgs) await h.ch.send(m)
    await until(() => h.rejected.length === 1)
    expect(h.rejected[0]).toBeInstanceOf(PayloadIntegrityError)
    expect(h.provider.counters.get('payloadIntegrityErrors')).toBe(1)
    expect(a.t.hungUp).toEqual([{ peer: 'z-evil', reason: '1 refused updates' }])
    expect(h.doc.getMap('m').size).toBe(0)
  })

  it('refuses a payload whose announced size is over the cap before buffering any chunk', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const h = await hostile(net, a, 'capped', { maxUpdateBytes: 100_000, maxStrikes: 3 })
    const msgs = payloadMessages('update', bigUpdate('big', 150_000), 1)
    for (const m of msgs) await h.ch.send(m).catch(() => {})
    await until(() => h.rejected.length === 1)
    expect(h.rejected[0]).toBeInstanceOf(PayloadTooLargeError)
    expect(h.provider.counters.get('payloadsTooLarge')).toBe(1)
    // Refused at the descriptor: the channel is closed (a libp2p stream is reset), so no chunk
    // after it is read, buffered or struck again.
    await until(() => h.ch.closed)
    expect(h.provider.counters.get('strayChunks')).toBe(0)
    expect(h.rejected).toHaveLength(1)
    expect(h.doc.getMap('m').size).toBe(0)
    // A lying small size cannot sneak past either: the chunks must add up to the announced size.
    const lie = payloadMessages('update', bigUpdate('big', 90_000), 2)
    const head = lie[0] as Extract<SyncMessage, { type: 'update' }>
    lie[0] = { ...head, payload: { ...head.payload, size: PAYLOAD_CHUNK_BYTES + 1 } }
    const again = await h.evil.open('a', 'capped')
    for (const m of lie) await again.send(m).catch(() => {})
    await until(() => h.rejected.length === 2)
    expect(h.rejected[1]).toBeInstanceOf(PayloadIntegrityError)
    expect(h.provider.counters.get('payloadIntegrityErrors')).toBe(1)
    expect(h.doc.getMap('m').size).toBe(0)
  })

  it('a small update is applied between the chunks of a large one on the same stream', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const h = await hostile(net, a, 'mixed')
    const large = payloadMessages('update', bigUpdate('big', 300_000), 7)
    const small = new Y.Doc()
    small.getMap('m').set('small', 1)
    // Receiver: half the chunks, then a small update, which lands before the large one is complete.
    const half = Math.ceil(large.length / 2)
    for (const m of large.slice(0, half)) await h.ch.send(m)
    await h.ch.send(payloadMessage('update', 8, Y.encodeStateAsUpdate(small)))
    await until(() => h.doc.getMap('m').get('small') === 1)
    expect(h.doc.getMap('m').has('big')).toBe(false)
    for (const m of large.slice(half)) await h.ch.send(m)
    await until(() => (h.doc.getMap('m').get('big') as string | undefined)?.length === 300_000)
    expect(h.rejected).toEqual([])

    // Sender: on a channel whose writes take a moment (a real stream's backpressure), an update made
    // while a large one streams goes out between its chunks, not after all of them.
    const got: SyncMessage[] = []
    void (async () => {
      for await (const m of h.ch) got.push(m)
    })()
    const out = [...a.t._channels].find((c) => c.peer === 'z-evil')!
    const send = out.send.bind(out)
    out.send = async (m) => {
      await new Promise((r) => setTimeout(r, 1))
      return send(m)
    }
    h.doc.getMap('m').set('big2', 'z'.repeat(500_000))
    await until(() => got.some((m) => m.type === 'chunk'))
    h.doc.getMap('m').set('later', 2)
    const chunks = Math.ceil(500_000 / PAYLOAD_CHUNK_BYTES)
    await until(() => got.filter((m) => m.type === 'chunk').length >= chunks)
    const types = got.map((m) => m.type)
    const small2 = types.lastIndexOf('update')
    expect(types.indexOf('update')).toBeLessThan(small2)
    expect(small2).toBeLessThan(types.lastIndexOf('chunk'))
  })

  it('refuses malformed, oversize and hostile updates and stays responsive; hangs up at once on what no honest peer sends, on repeat otherwise', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const rejected: string[] = []
    const provider2 = new MeshProvider('d2', a.doc, a.t, {
      limits: { resyncIntervalMs: 0, maxStrikes: 3, maxUpdateBytes: 1000 },
      onReject: (p) => rejected.push(p)
    })
    cleanups.push(() => provider2.destroy())
    const channel = async (id: string): Promise<SyncChannel> => {
      const t = new MemorySyncTransport(net, id)
      await t.start()
      cleanups.push(() => t.stop())
      let ch: SyncChannel | undefined
      await until(async () => {
        try {
          ch = await t.open('a', 'd2')
          return true
        } catch {
          return false
        }
      })
      return ch!
    }
    const send = async (ch: SyncChannel, bytes: Uint8Array): Promise<void> => {
      for (const m of payloadMessages('update', bytes)) await ch.send(m)
    }
    // An update over the size cap: an honest peer's burst of writes can be one (a strike, no hang-up).
    const big = new Y.Doc()
    big.getMap('m').set('big', 'y'.repeat(2000))
    const oversize = Y.encodeStateAsUpdate(big)
    const heavy = await channel('z-heavy')
    await send(heavy, oversize)
    await send(heavy, oversize)
    await until(() => rejected.length === 2)
    expect(a.t.hungUp).toEqual([])
    // 1. random garbage, 2. a yjs#687 payload (trailing data after a valid prefix), 3. a count the bytes cannot back:
    // each from a fresh sender, each hung up on at its first (an honest encoder never makes one).
    const garbage = new Uint8Array([0xde, 0xad, 0xbe, 0xef])
    const p687 = Buffer.from('00010000000001000100010200001602000001fdffffffff7f0000', 'hex')
    const hugeCount = new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0, 0])
    for (const [i, bad] of [garbage, p687, hugeCount].entries()) {
      await send(await channel(`z-evil${i}`), bad)
      await until(() => a.t.hungUp.length === i + 1)
      expect(a.t.hungUp[i]).toMatchObject({ peer: `z-evil${i}`, offence: 'HostileUpdate' })
    }
    expect(provider2.counters.get('refused.malformed')).toBe(3)
    // a.doc still works and still syncs with honest peers
    const b = await peer(net, 'b')
    a.doc.getMap('m').set('alive', true)
    await until(() => b.doc.getMap('m').get('alive') === true)
    // The oversize sender's third refusal within STRIKE_FORGET_MS hangs up, as a repeat offence.
    await send(heavy, oversize)
    await until(() => a.t.hungUp.length === 4)
    expect(a.t.hungUp[3]).toMatchObject({ peer: 'z-heavy', offence: undefined })
    expect(provider2.counters.get('rejectedUpdates')).toBe(6)
    expect(a.t.peers()).not.toContain('z-evil0')
    expect(a.doc.getMap('m').get('alive')).toBe(true)
  })

  it('refuses an update over the size cap without decoding it', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const p = new MeshProvider('small', new Y.Doc(), a.t, { limits: { resyncIntervalMs: 0, maxUpdateBytes: 100 } })
    cleanups.push(() => p.destroy())
    const evil = new MemorySyncTransport(net, 'b-evil')
    await evil.start()
    cleanups.push(() => evil.stop())
    const src = new Y.Doc()
    src.getMap('kv').set('x', 'y'.repeat(500))
    const ch = await evil.open('a', 'small')
    for (const m of payloadMessages('update', Y.encodeStateAsUpdate(src))) await ch.send(m)
    await until(() => p.counters.get('rejectedUpdates') === 1)
    expect(p.doc.getMap('kv').size).toBe(0)
  })

  it('destroying the doc destroys the provider', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const b = await peer(net, 'b')
    await b.provider.whenSynced
    a.doc.destroy()
    await until(() => b.provider.peers.length === 0)
  })
})

describe('MeshProvider anti-entropy (issue 16, scale)', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('an idle doc backs off its periodic exchange; a change brings it back to the base rate', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'Date'] })
    const net = new MemoryNetwork()
    const make = async (id: string) => {
      const t = new MemorySyncTransport(net, id)
      await t.start()
      const doc = new Y.Doc()
      const provider = new MeshProvider('d', doc, t, { limits: { resyncIntervalMs: 1000 } })
      cleanups.push(() => {
        doc.destroy()
        return t.stop()
      })
      return { doc, provider }
    }
    const a = await make('a')
    const b = await make('b')
    a.doc.getMap('m').set('k', 1)
    await until(() => b.doc.getMap('m').get('k') === 1 && a.provider.syncedPeers.has('b') && b.provider.syncedPeers.has('a'))
    // A round is b's step 1 (counted as it goes out, in the timer's own turn), answered by a's step 2, which b applies.
    const rounds = (): number => b.provider.counters.get('resyncs')
    const applied = (): number => b.provider.counters.get('updatesApplied')
    const idle = async (ms: number): Promise<number> => {
      const before = rounds()
      for (let t = 0; t < ms; t += 1000) await vi.advanceTimersByTimeAsync(1000)
      return rounds() - before
    }
    const applied0 = applied()
    // The first minute after the change: rounds at about 1, 3, 7, 15, 31 s (a fixed 1 s made 60).
    const first = await idle(60_000)
    expect(first).toBeGreaterThanOrEqual(4)
    expect(first).toBeLessThanOrEqual(7)
    // Each round was a real exchange: a's answer reached b and was applied (hash checks run off the thread: real time).
    await until(() => applied() - applied0 >= first, 10_000, 'the answers of the rounds')
    // Then one round per RESYNC_BACKOFF_MAX periods: still anti-entropy, on a long period.
    const later = await idle(RESYNC_BACKOFF_MAX * 1000 * 3)
    expect(later).toBeGreaterThanOrEqual(2)
    expect(later).toBeLessThanOrEqual(4)
    // A change (here b's own) and the next round comes within the base period again.
    b.doc.getMap('m').set('k', 2)
    expect(await idle(2000)).toBe(1)
  })
})

describe('MeshProvider.delivered', () => {
  const settled = (p: Promise<unknown>) => {
    const s = { done: false }
    p.then(
      () => (s.done = true),
      () => (s.done = true)
    )
    return s
  }

  it('resolves at once when nothing local is waiting', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    await expect(a.provider.delivered()).resolves.toBeUndefined()
  })

  it('waits, with no peer, until a peer that joins later has been handed the change', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    a.doc.getMap('m').set('agent', 'published alone')
    const d = a.provider.delivered()
    const s = settled(d)
    // A change with nobody to take it stays undelivered (macrotasks pass, nothing arrives).
    await new Promise((r) => setTimeout(r, 20))
    expect(s.done).toBe(false)
    const b = await peer(net, 'b')
    await d
    await until(() => b.doc.getMap('m').get('agent') === 'published alone', 2000, 'b to have the change')
  })

  it('resolves once a change is written to a connected peer, and again for the next change', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const b = await peer(net, 'b')
    await until(() => a.provider.syncedPeers.has('b'), 2000, 'a and b synced')
    a.doc.getMap('m').set('k', 1)
    await a.provider.delivered()
    await until(() => b.doc.getMap('m').get('k') === 1, 2000, 'b to have k')
    a.doc.getMap('m').set('k', 2)
    await a.provider.delivered()
    await until(() => b.doc.getMap('m').get('k') === 2, 2000, 'b to have the second change')
  })

  it('a change received from a peer is not ours to deliver; an abort rejects the wait', async () => {
    const net = new MemoryNetwork()
    const a = await peer(net, 'a')
    const b = await peer(net, 'b')
    b.doc.getMap('m').set('from-b', true)
    await until(() => a.doc.getMap('m').get('from-b') === true, 2000, 'a to have b’s change')
    await expect(a.provider.delivered()).resolves.toBeUndefined()
    const lone = await peer(new MemoryNetwork(), 'lone')
    lone.doc.getMap('m').set('x', 1)
    const ac = new AbortController()
    const d = lone.provider.delivered(ac.signal)
    ac.abort(new Error('gave up'))
    await expect(d).rejects.toThrow('gave up')
    // An already aborted signal rejects at once rather than waiting for a delivery.
    await expect(lone.provider.delivered(AbortSignal.abort(new Error('too late')))).rejects.toThrow('too late')
  })
})

describe('MeshProvider: answers wait for the doc to settle', () => {
  it('a step 2 answer waits for the doc’s own checks, so it never carries what this tab has not pruned yet', async () => {
    const net = new MemoryNetwork()
    const ta = new MemorySyncTransport(net, 'a')
    await ta.start()
    const docA = new Y.Doc()
    const settle = Promise.withResolvers<void>()
    const pa = new MeshProvider('d', docA, ta, { limits: { resyncIntervalMs: 0 }, settled: () => settle.promise })
    cleanups.push(() => {
      pa.destroy()
      docA.destroy()
      return ta.stop()
    })
    docA.getMap('m').set('k', 'held before b came')
    const b = await peer(net, 'b')
    // b's step 1 reached a, but a's checks have not settled: it is not answered yet.
    await until(() => pa.counters.get('step1Received') > 0)
    await new Promise((r) => setTimeout(r, 50)) // nothing to await: the answer must not come
    expect(b.doc.getMap('m').get('k')).toBeUndefined()
    settle.resolve()
    await until(() => b.doc.getMap('m').get('k') === 'held before b came')
    expect(pa.counters.get('answeredUnsettled')).toBe(0)
  })

  it('a doc whose checks never settle answers after SETTLE_WAIT_MS, counted (sync is delayed, never stopped)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const net = new MemoryNetwork()
      const ta = new MemorySyncTransport(net, 'a')
      await ta.start()
      const docA = new Y.Doc()
      const pa = new MeshProvider('d', docA, ta, { limits: { resyncIntervalMs: 0 }, settled: () => new Promise<void>(() => {}) })
      cleanups.push(() => {
        pa.destroy()
        docA.destroy()
        return ta.stop()
      })
      docA.getMap('m').set('k', 'v')
      const b = await peer(net, 'b')
      await vi.advanceTimersByTimeAsync(SETTLE_WAIT_MS - 100)
      expect(b.doc.getMap('m').get('k')).toBeUndefined()
      await vi.advanceTimersByTimeAsync(200)
      await vi.waitFor(() => expect(b.doc.getMap('m').get('k')).toBe('v'))
      expect(pa.counters.get('answeredUnsettled')).toBeGreaterThan(0)
    } finally {
      vi.useRealTimers()
    }
  })
})
