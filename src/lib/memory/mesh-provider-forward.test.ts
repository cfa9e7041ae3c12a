/**
 * A change travels on from the peer that received it (issue 16, scale): peers not linked to its
 * author get it in a few hops, each link carries it at most once, and what was refused or changed
 * nothing goes no further. Anti-entropy is off in these tests (`resyncIntervalMs: 0`): only
 * forwarding can carry a change past the author's own links.
 */
import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import {
  FORWARD_FRAMES_PER_SECOND,
  FORWARD_LARGE_FANOUT,
  FORWARD_MAX_BYTES,
  FORWARD_WINDOW_MS,
  MeshProvider,
  type MeshProviderOptions
} from './mesh-provider.ts'
import { payloadMessage } from './sync-protocol.ts'
import { MemoryNetwork, MemorySyncTransport } from './memory-sync-transport.ts'
import { RejectedUpdateError } from './errors.ts'
import { fakeSha, newIdentity, until } from './test-helpers.ts'
import { createMemoryLayer, type MemoryLayer } from './layer.ts'
import type { UpdateShape } from './update-guard.ts'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

type Peer = { id: string; t: MemorySyncTransport; doc: Y.Doc; provider: MeshProvider; rejected: Array<{ peer: string; err: Error }> }

async function peers(net: MemoryNetwork, ids: readonly string[], opts: (id: string, doc: Y.Doc) => MeshProviderOptions = () => ({})): Promise<Peer[]> {
  return Promise.all(
    ids.map(async (id) => {
      const t = new MemorySyncTransport(net, id, { latencyMs: 1 })
      await t.start()
      const doc = new Y.Doc()
      const rejected: Peer['rejected'] = []
      const provider = new MeshProvider('d', doc, t, {
        limits: { resyncIntervalMs: 0 },
        onReject: (peer, err) => rejected.push({ peer, err }),
        ...opts(id, doc)
      })
      cleanups.push(() => {
        doc.destroy()
        return t.stop()
      })
      return { id, t, doc, provider, rejected }
    })
  )
}

/** Every peer finished its first exchange with each of its links. */
async function synced(net: MemoryNetwork, ps: Peer[]): Promise<void> {
  const degree = (p: Peer): number => ps.filter((q) => q !== p && net.linked(p.id, q.id)).length
  await until(() => ps.every((p) => p.provider.syncedPeers.size === degree(p)), 5000, 'every link synced')
}

/** Payload messages per directed link since `before`. */
function payloadsSince(net: MemoryNetwork, before: Map<string, { payloads: number; bytes: number }>): Map<string, number> {
  const out = new Map<string, number>()
  for (const [k, v] of net.traffic) {
    const n = v.payloads - (before.get(k)?.payloads ?? 0)
    if (n > 0) out.set(k, n)
  }
  return out
}
const snapshot = (net: MemoryNetwork) => new Map([...net.traffic].map(([k, v]) => [k, { ...v }]))
const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0)
const totalBytes = (net: MemoryNetwork): number => [...net.traffic.values()].reduce((a, v) => a + v.bytes, 0)

describe('MeshProvider forwarding (issue 16, scale)', () => {
  it('a write on a reaches c over a–b–c, where a and c are not linked, without any anti-entropy round; not with forward: false', async () => {
    for (const forward of [true, false]) {
      const net = new MemoryNetwork({ autoLink: false })
      const [a, b, c] = await peers(net, ['a', 'b', 'c'], () => ({ forward }))
      net.chain(['a', 'b', 'c'])
      await synced(net, [a!, b!, c!])
      a!.doc.getMap('m').set('agent', 'published on a')
      await until(() => b!.doc.getMap('m').get('agent') === 'published on a', 5000, 'b to have the write')
      if (forward) {
        await until(() => c!.doc.getMap('m').get('agent') === 'published on a', 5000, 'c to have the write')
        expect(b!.provider.counters.get('updatesForwarded')).toBe(1)
        // It went on as b's own re-encoding, marked relayed, and never back to a.
        expect(net.traffic.get('b>a')?.payloads).toBe(1) // b's step 2 answer only
      } else {
        // The old path: b keeps it, and with anti-entropy off c never hears of it. The wait is
        // the negative: many times the two hops forwarding takes above, nothing arrives.
        await new Promise((r) => setTimeout(r, 100))
        expect(c!.doc.getMap('m').get('agent')).toBeUndefined()
        expect(b!.provider.counters.get('updatesForwarded')).toBe(0)
      }
      expect([a, b, c].map((p) => p!.provider.counters.get('rejectedUpdates'))).toEqual([0, 0, 0])
    }
  })

  it('one write reaches all 8 peers of a ring with chords; each directed link carries it at most once, and each peer passes it on once', async () => {
    const net = new MemoryNetwork({ autoLink: false })
    const ids = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']
    const ps = await peers(net, ids)
    net.chain(ids, true)
    net.link('p0', 'p4')
    net.link('p2', 'p6')
    net.link('p1', 'p5')
    await synced(net, ps)
    const edges = ids.flatMap((x, i) => ids.slice(i + 1).filter((y) => net.linked(x, y))).length
    expect(edges).toBe(11)
    // The author sends it on its 3 links; every other peer on its links but the first it came by.
    const expected = 2 * edges - (ids.length - 1)
    for (let round = 0; round < 2; round++) {
      const before = snapshot(net)
      const forwarded = ps.map((p) => p.provider.counters.get('updatesForwarded'))
      ps[round * 3]!.doc.getMap('m').set(`k${round}`, 'x'.repeat(500))
      await until(() => ps.every((p) => p.doc.getMap('m').has(`k${round}`)), 5000, 'every peer to have the write')
      await until(() => total(payloadsSince(net, before)) >= expected, 5000, 'the flood to end')
      const sent = payloadsSince(net, before)
      expect(total(sent)).toBe(expected)
      expect(Math.max(...sent.values())).toBe(1)
      // Copies that came second changed nothing here, so nothing more went out (no echo storm).
      expect(ps.map((p, i) => p.provider.counters.get('updatesForwarded') - forwarded[i]!)).toEqual(ps.map((_, i) => (i === round * 3 ? 0 : 1)))
    }
    expect(ps.every((p) => p.provider.counters.get('rejectedUpdates') === 0)).toBe(true)
    const json = ps.map((p) => JSON.stringify(p.doc.getMap('m').toJSON()))
    expect(new Set(json).size).toBe(1)
  })

  it('a refused update is not passed on; an admitted one is', async () => {
    const net = new MemoryNetwork({ autoLink: false })
    // A refusal an honest peer can cause (state-dependent): one strike, the link stays.
    const refuse = (shape: UpdateShape): void => {
      if (shape.keys.get('m')?.has('bad') === true) throw new RejectedUpdateError('no "bad" here', { refusal: 'over-quota' })
    }
    const [a, b, c] = await peers(net, ['a', 'b', 'c'], (id) => (id === 'b' ? { admit: refuse } : {}))
    net.chain(['a', 'b', 'c'])
    await synced(net, [a!, b!, c!])
    const before = snapshot(net)
    a!.doc.getMap('m').set('good', 1)
    await until(() => c!.doc.getMap('m').get('good') === 1, 5000, 'c to have the admitted write')
    a!.doc.getMap('m').set('bad', 2)
    await until(() => b!.provider.counters.get('rejectedUpdates') === 1, 5000, 'b to refuse')
    expect(b!.rejected.map((r) => r.peer)).toEqual(['a'])
    expect(b!.t.hungUp).toEqual([])
    // Refused before Yjs saw it: nothing changed on b, so nothing was queued to pass on (a few
    // task turns later, still only the admitted write went b>c).
    await new Promise((r) => setTimeout(r, 20))
    expect(b!.doc.getMap('m').has('bad')).toBe(false)
    expect(c!.doc.getMap('m').has('bad')).toBe(false)
    expect(payloadsSince(net, before).get('b>c')).toBe(1)
    expect(b!.provider.counters.get('updatesForwarded')).toBe(1)
  })

  it('a relayed change refused downstream as an update for what that peer holds (a quota) is admitted as a step 2 answer would be: the forwarder is not struck', async () => {
    const net = new MemoryNetwork({ autoLink: false })
    // The registry's rule on keys x:*: an update that takes the doc past its quota with what it
    // holds is refused ('over-quota', state-dependent); a step 2 answer within the quota alone is
    // admitted (and the doc's own prune would follow). c's quota is 2, a's and b's 100.
    const quotaOf =
      (doc: Y.Doc, quota: number) =>
      (shape: UpdateShape, kind: 'step2' | 'update'): void => {
        const fresh = [...(shape.liveKeys.get('m') ?? [])].filter((k) => k.startsWith('x:') && !doc.getMap('m').has(k)).length
        const held = [...doc.getMap('m').keys()].filter((k) => k.startsWith('x:')).length
        if (fresh > quota || (kind === 'update' && held + fresh > quota))
          throw new RejectedUpdateError(`over the quota of ${quota}`, { refusal: fresh > quota ? 'over-quota-alone' : 'over-quota' })
      }
    const [a, b, c] = await peers(net, ['a', 'b', 'c'], (id, doc) => ({ admit: quotaOf(doc, id === 'c' ? 2 : 100) }))
    net.chain(['a', 'b', 'c'])
    await synced(net, [a!, b!, c!])
    c!.doc.getMap('m').set('x:c1', 1)
    await until(() => a!.doc.getMap('m').has('x:c1'))
    // Two more in one write: a third and fourth entry where c holds one. As a plain update from b
    // it would be refused on c and b struck; relayed, it is judged as third-party content.
    const forwarded = b!.provider.counters.get('updatesForwarded')
    a!.doc.transact(() => {
      a!.doc.getMap('m').set('x:a1', 1)
      a!.doc.getMap('m').set('x:a2', 2)
    })
    await until(() => c!.doc.getMap('m').has('x:a2'), 5000, 'c to have a’s write, relayed by b')
    expect(c!.rejected).toEqual([])
    expect(b!.provider.counters.get('updatesForwarded')).toBe(forwarded + 1)
    // The control: the same kind of content as b's own write is judged as b's, refused and struck.
    b!.doc.getMap('m').set('x:b1', 1)
    await until(() => c!.rejected.length === 1, 5000, 'c to refuse b’s own write')
    expect(c!.rejected[0]).toMatchObject({ peer: 'b', err: { refusal: 'over-quota' } })
    expect(c!.doc.getMap('m').has('x:b1')).toBe(false)
  })

  it('a change larger than FORWARD_MAX_BYTES goes to FORWARD_LARGE_FANOUT peers, not every link; anti-entropy brings it to the rest', async () => {
    const net = new MemoryNetwork({ autoLink: false })
    const spokes = ['s1', 's2', 's3', 's4', 's5']
    const ps = await peers(net, ['a', 'h', ...spokes])
    net.link('a', 'h')
    for (const s of spokes) net.link('h', s)
    await synced(net, ps)
    const [a, h] = ps
    a!.doc.getMap('m').set('big', 'z'.repeat(FORWARD_MAX_BYTES + 1000))
    const has = () => ps.slice(2).filter((p) => p.doc.getMap('m').has('big')).length
    await until(() => has() === FORWARD_LARGE_FANOUT, 5000, 'the fanout to have it')
    expect(h!.provider.counters.get('forwardsCapped')).toBe(spokes.length - FORWARD_LARGE_FANOUT)
    expect(h!.provider.counters.get('updatesForwarded')).toBe(1)
    for (const p of ps.slice(2)) p.provider.resync()
    await until(() => has() === spokes.length, 5000, 'every spoke to have it')
  })

  it('a newcomer syncing a large doc does not make its neighbours pass it on: bytes on the wire with forwarding within 10% of without', async () => {
    // 250 records (~55 KB, under FORWARD_MAX_BYTES: only the synced-peers rule keeps it home) and 1,000 (~220 KB).
    for (const records of [250, 1000]) {
      const bytes: Record<string, number> = {}
      for (const forward of [false, true]) {
        const net = new MemoryNetwork({ autoLink: false })
        const ids = ['h0', 'h1', 'h2', 'h3', 'h4', 'h5']
        const holders = await peers(net, ids, () => ({ forward }))
        // Every holder already holds the same registry-sized records, as after the mesh synced.
        const src = new Y.Doc()
        src.transact(() => {
          for (let i = 0; i < records; i++) src.getMap('m').set(`agent-${i}`, `record ${i} `.padEnd(200, 'x'))
        })
        const whole = Y.encodeStateAsUpdate(src)
        for (const h of holders) Y.applyUpdate(h.doc, whole)
        net.chain(ids, true)
        net.link('h0', 'h3')
        await synced(net, holders)
        const [n] = await peers(net, ['n'], () => ({ forward }))
        const before = totalBytes(net)
        for (const h of ['h1', 'h2', 'h4', 'h5']) net.link('n', h)
        await until(() => n!.doc.getMap('m').size === records && n!.provider.syncedPeers.size === 4, 10_000, 'the newcomer synced')
        // Every answer to the newcomer's step 1 and its own answers are written and applied.
        await until(() => holders.filter((h) => h.provider.syncedPeers.has('n')).length === 4, 10_000, 'the holders synced with n')
        bytes[String(forward)] = totalBytes(net) - before
        expect(bytes[String(forward)]).toBeGreaterThan(whole.byteLength)
        expect([n!, ...holders].map((p) => p.provider.counters.get('updatesForwarded'))).toEqual([0, 0, 0, 0, 0, 0, 0])
      }
      expect(bytes.true! / bytes.false!).toBeLessThan(1.1)
    }
  })

  it('delivered() waits for a frame with the local change: a frame that only passes on a peer’s change does not count', async () => {
    const net = new MemoryNetwork({ autoLink: false })
    const gate = Promise.withResolvers<void>()
    // a's step 2 answers (which carry its local change to a newly met peer) wait for the gate.
    const [a, b, c] = await peers(net, ['a', 'b', 'c'], (id) => (id === 'a' ? { settled: () => gate.promise } : {}))
    // A peer that takes c's channel and never answers: c's first exchange waits on it, so c does
    // not ask a for its state (a's answer would hold up c's updates on that channel, in order).
    const silent = new MemorySyncTransport(net, 'z')
    await silent.start()
    silent.handle('d', () => {})
    cleanups.push(() => silent.stop())
    net.link('c', 'z')
    await until(() => c!.provider.peers.includes('z'))
    a!.doc.getMap('m').set('mine', 1)
    const delivered = { done: false }
    void a!.provider.delivered().then(() => (delivered.done = true))
    net.link('a', 'c')
    await until(() => a!.provider.syncedPeers.has('c'), 5000, 'a to have c’s answer')
    net.link('a', 'b')
    await until(() => a!.provider.peers.length === 2)
    // c's write reaches b only through a: the frame a writes to b is a relay, not a's change.
    c!.doc.getMap('m').set('from-c', 2)
    await until(() => b!.doc.getMap('m').get('from-c') === 2, 5000, 'b to have c’s write through a')
    expect(a!.provider.counters.get('updatesForwarded')).toBe(1)
    expect(b!.doc.getMap('m').has('mine')).toBe(false)
    expect(delivered.done).toBe(false)
    gate.resolve()
    await until(() => delivered.done, 5000, 'delivered once a’s answer is written')
    await until(() => b!.doc.getMap('m').get('mine') === 1)
  })

  it('a stream of writes arriving one message at a time goes on as one merged frame per FORWARD_WINDOW_MS, not one per write', async () => {
    const net = new MemoryNetwork({ autoLink: false })
    const [a, b, c] = await peers(net, ['a', 'b', 'c'])
    net.chain(['a', 'b', 'c'])
    await synced(net, [a!, b!, c!])
    const before = snapshot(net)
    const t0 = Date.now()
    // 100 writes, each in a task of its own: a sends 100 frames to b.
    for (let i = 0; i < 100; i++) {
      a!.doc.getMap('m').set(`k${i}`, i)
      await new Promise((r) => setTimeout(r, 0))
    }
    await until(() => c!.doc.getMap('m').size === 100, 5000, 'c to have all 100')
    const ms = Date.now() - t0
    const sent = payloadsSince(net, before)
    expect(sent.get('a>b')).toBe(100)
    // The first at once, then one per window while they keep coming (and the last one's).
    expect(sent.get('b>c')!).toBeLessThanOrEqual(Math.ceil(ms / FORWARD_WINDOW_MS) + 2)
    expect(sent.get('b>c')!).toBeLessThan(50)
  })

  it('frames of passed-on changes stay within FORWARD_FRAMES_PER_SECOND: the rest is counted and left to anti-entropy', async () => {
    const net = new MemoryNetwork({ autoLink: false })
    const [c, d] = await peers(net, ['c', 'd'])
    net.link('c', 'd')
    await synced(net, [c!, d!])
    // A peer that sends c many relayed changes of many authors (each admitted as an answer, none mergeable).
    const r = new MemorySyncTransport(net, 'r')
    await r.start()
    cleanups.push(() => r.stop())
    net.link('c', 'r')
    const ch = await r.open('c', 'd')
    const n = FORWARD_FRAMES_PER_SECOND * 2
    for (let i = 0; i < n; i++) {
      const src = new Y.Doc()
      src.getMap('m').set(`r${i}`, i)
      const msg = payloadMessage('update', i, Y.encodeStateAsUpdate(src))
      if (msg.type === 'update') msg.relayed = true
      await ch.send(msg)
    }
    await until(() => c!.doc.getMap('m').size === n, 5000, 'c to apply them all')
    await until(() => c!.provider.counters.get('updatesForwarded') + c!.provider.counters.get('forwardsOverBudget') >= n, 5000, 'c to pass on or count each')
    const forwarded = c!.provider.counters.get('updatesForwarded')
    expect(c!.provider.counters.get('forwardsOverBudget')).toBeGreaterThan(0)
    // The burst of the bucket, and what it refilled while they came.
    expect(forwarded).toBeGreaterThanOrEqual(FORWARD_FRAMES_PER_SECOND)
    expect(forwarded).toBeLessThan(n)
    expect(c!.rejected).toEqual([])
    // d pulls the rest at its next round.
    d!.provider.resync()
    await until(() => d!.doc.getMap('m').size === n, 5000, 'd to have them all')
  })

  it('what one link learns when a partition heals reaches the far peers of each side', async () => {
    const net = new MemoryNetwork({ autoLink: false })
    const ps = await peers(net, ['a', 'b', 'c', 'd', 'e', 'f'])
    const [a, b, c, d, e, f] = ps
    net.chain(['a', 'b', 'c'], true)
    net.chain(['d', 'e', 'f'], true)
    await synced(net, ps)
    a!.doc.getMap('m').set('left', 1)
    f!.doc.getMap('m').set('right', 'y'.repeat(FORWARD_MAX_BYTES))
    await until(() => [b, c].every((p) => p!.doc.getMap('m').has('left')) && [d, e].every((p) => p!.doc.getMap('m').has('right')))
    // One link heals it: c learns the right side by step 2 and passes it on to a and b (synced
    // with c; large, so apart and within the fanout), d the left side to e and f.
    net.link('c', 'd')
    await until(() => [e, f].every((p) => p!.doc.getMap('m').get('left') === 1), 5000, 'the left write on the far right')
    await until(() => [a, b].every((p) => p!.doc.getMap('m').has('right')), 5000, 'the right write on the far left')
    expect(c!.provider.counters.get('updatesForwarded')).toBeGreaterThanOrEqual(1)
    expect(d!.provider.counters.get('updatesForwarded')).toBeGreaterThanOrEqual(1)
    expect(ps.every((p) => p.provider.counters.get('rejectedUpdates') === 0)).toBe(true)
  })

  it('the memory layer: an agent published on a is listed, verified, on c over a–b–c without anti-entropy, with nothing refused on the way', async () => {
    const net = new MemoryNetwork({ autoLink: false })
    const layers: MemoryLayer[] = []
    cleanups.push(async () => {
      for (const l of layers) await l.stop()
    })
    for (const id of ['a', 'b', 'c']) {
      const layer = createMemoryLayer({
        identity: await newIdentity(),
        transport: new MemorySyncTransport(net, id, { latencyMs: 1 }),
        persistence: 'none',
        tabSync: false,
        limits: { resyncIntervalMs: 0, publishWorkBits: 4 }
      })
      await layer.start()
      layers.push(layer)
    }
    const [a, b, c] = layers
    net.chain(['a', 'b', 'c'])
    // Each link's exchange is over (both synced docs, the registry and the namespace index, answered both ways).
    const answered = (k: string): boolean => (net.traffic.get(k)?.payloads ?? 0) >= 2
    await until(() => ['a>b', 'b>a', 'b>c', 'c>b'].every(answered), 5000, 'the links synced')
    const entry = await a!.registry.publish({
      id: 'summarizer',
      manifest: { name: 'S', description: 'S agent', capabilities: ['text.summarize'] },
      moduleSha256: fakeSha(1)
    })
    await until(() => c!.registry.get(entry.key) != null, 5000, 'c to list the entry')
    expect(c!.registry.get(entry.key)).toMatchObject({ id: 'summarizer', signature: entry.signature })
    expect(b!.metrics()['memory.sync.updatesForwarded']).toBeGreaterThanOrEqual(1)
    expect(layers.map((l) => l.metrics()['memory.sync.rejectedUpdates'] ?? 0)).toEqual([0, 0, 0])
  })
})
