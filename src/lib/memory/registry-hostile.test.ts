/**
 * Issue 11 items 1 and 5 at the memory layer: a registry record nested 20,000
 * deep (ContentJSON) and one author far over its quota, pushed by a hostile
 * peer over the sync protocol or found in the doc (stored before the guard).
 */
import { describe, it, expect, afterEach } from 'vitest'
import * as Y from 'yjs'
import { createMemoryLayer } from './layer.ts'
import { MemoryNetwork, MemorySyncTransport } from './memory-sync-transport.ts'
import { fakeSha, jsonContentUpdate, nestedJson, newIdentity, until } from './test-helpers.ts'
import type { Identity } from '../core/index.ts'
import { RegistryQuotaExceededError, RegistryWorkMissingError, RejectedUpdateError } from './errors.ts'
import { entryKey } from './registry-schema.ts'
import { Registry, registryUpdatePolicy, withinShape } from './registry.ts'
import { DEFAULT_LIMITS } from './constants.ts'
import { checkUpdate } from './update-guard.ts'
import { hasWork, mintWork, workBits } from './publish-work.ts'
import { payloadMessages } from './sync-protocol.ts'
import type { SyncChannel } from './sync-transport.ts'

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!()
})

const manifest = (name: string, caps: string[] = ['hashing']) => ({ name, description: `${name} agent`, capabilities: caps })

async function victim(net: MemoryNetwork, limits = {}) {
  const identity = await newIdentity()
  const transport = new MemorySyncTransport(net, 'peer-a')
  const rejected: Array<{ peer: string; error: Error }> = []
  const layer = createMemoryLayer({
    identity,
    transport,
    persistence: 'none',
    tabSync: false,
    limits: { resyncIntervalMs: 0, publishWorkBits: 4, ...limits },
    onPeerRejected: (peer, error) => rejected.push({ peer, error })
  })
  await layer.start()
  cleanups.push(() => layer.stop())
  return { layer, identity, transport, rejected }
}

/** A hostile peer's raw registry channel to peer-a. */
async function hostile(
  net: MemoryNetwork,
  name = 'z-evil'
): Promise<{ ch: SyncChannel; send: (kind: 'step2' | 'update', bytes: Uint8Array) => Promise<void>; reopen: () => Promise<void> }> {
  const evil = new MemorySyncTransport(net, name)
  await evil.start()
  cleanups.push(() => evil.stop())
  let id = 0
  const h = {
    ch: await evil.open('peer-a', 'registry'),
    async send(kind: 'step2' | 'update', bytes: Uint8Array) {
      for (const m of payloadMessages(kind, bytes, id++)) await h.ch.send(m)
    },
    /** A new channel (the victim closes one whose transfer it refused midway). */
    async reopen() {
      h.ch = await evil.open('peer-a', 'registry')
      id = 0
    }
  }
  return h
}

/** The bomb of issue 11 item 1: a registry record whose manifest is ContentJSON nested `depth` deep. */
function bombUpdate(author: string, depth = 20_000, id = 'bomb'): Uint8Array {
  const text =
    `{"kind":"zerostate/registry-entry/1","id":"${id}","author":"${author}","manifest":${nestedJson(depth)},` +
    `"moduleSha256":"${fakeSha(1)}","version":1,"publishedAt":1,"signature":"${'A'.repeat(86)}"}`
  return jsonContentUpdate('entries', entryKey(author, id), [text])
}

/** One entry by a fresh key carrying `bits` of publishing work. */
async function paidUpdate(bits: number): Promise<{ update: Uint8Array; author: string }> {
  const id = await newIdentity()
  const doc = new Y.Doc()
  const reg = new Registry(doc, id, { ...DEFAULT_LIMITS, publishWorkBits: bits })
  await reg.publish({ id: 'paid', manifest: manifest('Paid'), moduleSha256: fakeSha(3) })
  return { update: Y.encodeStateAsUpdate(doc), author: id.publicKey }
}

/** `n` validly signed entries by a fresh key, as one update (each entry a new map key). */
async function floodUpdate(n: number, from = 0, identity?: Identity): Promise<{ update: Uint8Array; author: string; identity: Identity }> {
  const id = identity ?? (await newIdentity())
  const doc = new Y.Doc()
  const reg = new Registry(doc, id, { ...DEFAULT_LIMITS, maxEntriesPerAuthor: 100_000, publishWorkBits: 4 })
  for (let i = from; i < from + n; i++) await reg.publish({ id: `f${String(i).padStart(5, '0')}`, manifest: manifest(`F${i}`), moduleSha256: fakeSha(i + 1) })
  return { update: Y.encodeStateAsUpdate(doc), author: id.publicKey, identity: id }
}

describe('update guard: every value of every update is bounded (issue 11 item 1)', () => {
  it('refuses ContentJSON nested 20,000 deep in any doc, and accepts what stays within the bound', () => {
    const deep = jsonContentUpdate('m', 'k', [nestedJson(20_000)])
    expect(() => checkUpdate(deep)).toThrow(RejectedUpdateError)
    expect(() => checkUpdate(deep)).toThrow(/JSON nested too deeply/)
    expect(() => checkUpdate(jsonContentUpdate('m', 'k', [nestedJson(33)]))).toThrow(/nested too deeply/)
    const ok = jsonContentUpdate('m', 'k', [nestedJson(32), '"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ \\" [[[["'])
    expect(checkUpdate(ok).keys.get('m')).toEqual(new Set(['k']))
    // What the guard accepts, Yjs reads: the value is there, brackets inside strings did not count.
    const doc = new Y.Doc()
    Y.applyUpdate(doc, ok)
    expect(JSON.stringify(doc.getMap('m').get('k'))).toContain('[[[[ \\" [[[[')
  })

  it("the registry's policy refuses JSON content, values larger than two entries and values deeper than a record", () => {
    const policy = registryUpdatePolicy({ maxEntryBytes: 1024 })
    expect(() => checkUpdate(jsonContentUpdate('entries', 'x/y', ['{}']), policy)).toThrow(/json content is not allowed/)
    const big = new Y.Doc()
    big.getMap('entries').set('x/y', { blob: 'b'.repeat(3000) })
    expect(() => checkUpdate(Y.encodeStateAsUpdate(big), policy)).toThrow(/a value of \d+ bytes \(limit 2048\)/)
    const deep = new Y.Doc()
    let v: Record<string, unknown> = { leaf: 1 }
    for (let i = 0; i < 40; i++) v = { a: v }
    deep.getMap('entries').set('x/y', v)
    expect(() => checkUpdate(Y.encodeStateAsUpdate(deep), policy)).toThrow(/nested too deeply/)
    // An honest record passes, and the guard lists the keys it adds.
    const honest = new Y.Doc()
    honest.getMap('entries').set('x/y', { manifest: manifest('ok'), version: 1 })
    honest.getMap('holders').set('x/y|peer-1', 5)
    const shape = checkUpdate(Y.encodeStateAsUpdate(honest), policy)
    expect(shape.keys.get('entries')).toEqual(new Set(['x/y']))
    expect(shape.keys.get('holders')).toEqual(new Set(['x/y|peer-1']))
  })

  it('an overwrite of a key carries no key of its own: only new keys are listed', () => {
    const doc = new Y.Doc()
    doc.getMap('entries').set('x/a', 1)
    const sv = Y.encodeStateVector(doc)
    doc.getMap('entries').set('x/a', 2)
    doc.getMap('entries').set('x/b', 3)
    expect(checkUpdate(Y.encodeStateAsUpdate(doc, sv)).keys.get('entries')).toEqual(new Set(['x/b']))
  })
})

describe('registry under hostile records (issue 11 items 1 and 5)', () => {
  it('a peer pushing the 20,000-deep record is refused at the guard, counted and struck; the registry keeps its entries', async () => {
    const net = new MemoryNetwork()
    const a = await victim(net)
    await a.layer.registry.publish({ id: 'honest', manifest: manifest('Honest'), moduleSha256: fakeSha(7) })
    const h = await hostile(net)
    const attacker = await newIdentity()
    await h.send('update', bombUpdate(attacker.publicKey))
    await until(() => a.rejected.length === 1)
    expect(a.rejected[0]).toMatchObject({ peer: 'z-evil' })
    expect(a.rejected[0]!.error).toBeInstanceOf(RejectedUpdateError)
    expect(a.layer.metrics()['memory.sync.rejectedUpdates']).toBe(1)
    expect(a.layer.doc('registry')!.getMap('entries').has(entryKey(attacker.publicKey, 'bomb'))).toBe(false)
    expect(a.layer.registry.list().map((e) => e.id)).toEqual(['honest'])
  })

  it('verifies records one by one: a record whose verification throws hides no other and is pruned from the doc', async () => {
    const net = new MemoryNetwork()
    const a = await victim(net)
    const h = await hostile(net)
    // Three honest entries and, in the same update (one verification batch), a record whose manifest holds
    // a bigint: well-formed for Yjs and the guard, but canonical JSON throws on it (as it overflowed on the
    // 20,000-deep manifest before the guard bounded JSON content).
    const { update: honest } = await floodUpdate(3)
    const attacker = await newIdentity()
    const src = new Y.Doc()
    Y.applyUpdate(src, honest)
    const badKey = entryKey(attacker.publicKey, 'throws')
    src.getMap('entries').set(badKey, {
      kind: 'zerostate/registry-entry/1',
      id: 'throws',
      author: attacker.publicKey,
      manifest: { n: 12n },
      moduleSha256: fakeSha(1),
      version: 1,
      publishedAt: 1,
      signature: 'A'.repeat(86),
      work: await mintWork('A'.repeat(86), 4)
    })
    await h.send('update', Y.encodeStateAsUpdate(src))
    await until(() => a.layer.registry.list().length === 3, 5000, 'the three honest entries listed')
    const doc = a.layer.doc('registry')!
    await until(() => !doc.getMap('entries').has(badKey), 5000, 'the record pruned')
    const m = a.layer.metrics()
    expect(m['memory.registry.unverifiableRecords']).toBe(1)
    expect(m['memory.registry.pruned']).toBe(1)
    expect(m['memory.registry.verifyErrors'] ?? 0).toBe(0)
    // Pruned, not just hidden: a new peer syncing from this one never receives it.
    const fresh = new Y.Doc()
    Y.applyUpdate(fresh, Y.encodeStateAsUpdate(doc))
    expect([...fresh.getMap('entries').keys()].sort()).toEqual([...a.layer.registry.list().map((e) => e.key)].sort())
  })

  it('a record nested deeper than the bound is never walked recursively', () => {
    let deep: Record<string, unknown> = { leaf: 1 }
    for (let i = 0; i < 20_000; i++) deep = { a: deep }
    expect(withinShape(deep, 32, 16_384)).toBe(false)
    expect(withinShape({ a: [1, { b: [2, 3] }], c: 'x' }, 32, 16_384)).toBe(true)
    expect(withinShape({ wide: Array.from({ length: 20_000 }, (_, i) => i) }, 32, 16_384)).toBe(false)
  })

  it('one key pushing far over its quota is refused at the guard: nothing enters the doc, the sender is struck', async () => {
    const net = new MemoryNetwork()
    const a = await victim(net, { maxEntriesPerAuthor: 8, maxStrikes: 100 })
    const h = await hostile(net)
    // 200 entries in one update: over the quota alone, refused at the ninth entry while its chunks
    // arrive; the channel is closed, so the rest of the transfer is never read.
    const flood = await floodUpdate(200)
    expect(payloadMessages('update', flood.update).length).toBeGreaterThan(3)
    await h.send('update', flood.update).catch(() => {})
    await until(() => a.rejected.length === 1)
    expect(a.rejected[0]!.error).toBeInstanceOf(RegistryQuotaExceededError)
    expect(a.rejected[0]!.error.message).toContain('over 8 entries')
    expect(a.layer.metrics()['memory.sync.refusedMidTransfer']).toBe(1)
    expect(a.layer.metrics()['memory.sync.payloadsReceived'] ?? 0).toBe(0)
    await until(() => h.ch.closed)
    expect(a.layer.doc('registry')!.getMap('entries').size).toBe(0)
    // Over the quota on its own: no honest peer holds, so none sends, that many of one author. Hung up at once.
    expect((a.rejected[0]!.error as RejectedUpdateError).refusal).toBe('over-quota-alone')
    await until(() => a.transport.hungUp.length === 1)
    expect(a.transport.hungUp[0]).toMatchObject({ peer: 'z-evil', offence: 'HostileUpdate' })
    // The quota's worth is admitted; one more entry in a later update is refused (over the quota only with
    // what this tab holds: struck, not hung up on), and so is a sync answer over it alone (hung up on).
    const h2 = await hostile(net, 'z-evil2')
    const first = await floodUpdate(8, 0, flood.identity)
    await h2.send('update', first.update)
    await until(() => a.layer.registry.list({ author: flood.author }).length === 8)
    const more = await floodUpdate(1, 8, flood.identity)
    await h2.send('update', more.update)
    await until(() => a.rejected.length === 2)
    expect(a.rejected[1]!.error).toBeInstanceOf(RegistryQuotaExceededError)
    expect((a.rejected[1]!.error as RejectedUpdateError).refusal).toBe('over-quota')
    expect(a.transport.hungUp).toHaveLength(1)
    await h2.send('step2', flood.update).catch(() => {})
    await until(() => a.rejected.length === 3)
    expect((a.rejected[2]!.error as RejectedUpdateError).refusal).toBe('over-quota-alone')
    await until(() => a.transport.hungUp.length === 2)
    expect(a.transport.hungUp[1]).toMatchObject({ peer: 'z-evil2', offence: 'HostileUpdate' })
    expect(a.layer.doc('registry')!.getMap('entries').size).toBe(8)
    expect(a.layer.metrics()['memory.registry.overQuotaRefused']).toBe(3)
    expect(a.layer.metrics()['memory.sync.refusedMidTransfer']).toBe(2)
    expect(a.layer.metrics()['memory.sync.updatesApplied']).toBe(1)
  })

  it('a sync answer within the quota alone is applied and the excess pruned the same way on every peer (earliest kept)', async () => {
    const net = new MemoryNetwork()
    const a = await victim(net, { maxEntriesPerAuthor: 4, maxStrikes: 100 })
    const h = await hostile(net)
    const early = await floodUpdate(4, 0)
    const late = await floodUpdate(4, 4, early.identity)
    // Two honest peers may each hold a different quota's worth of one author: a holds the later four…
    await h.send('update', late.update)
    await until(() => a.layer.registry.list({ author: early.author }).length === 4)
    // …and a sync answer brings the earlier four: admitted (alone within the quota), then the later four pruned.
    await h.send('step2', early.update)
    await until(() => a.layer.metrics()['memory.registry.overQuotaPruned'] === 4, 5000, 'the excess pruned')
    const entries = a.layer.doc('registry')!.getMap('entries')
    await until(() => entries.size === 4)
    expect([...entries.keys()].map((k) => k.split('/')[1]).sort()).toEqual(['f00000', 'f00001', 'f00002', 'f00003'])
    expect(a.layer.registry.list({ author: early.author }).map((e) => e.id)).toEqual(['f00000', 'f00001', 'f00002', 'f00003'])
    expect(a.rejected).toHaveLength(0)
  })

  it('over-quota entries already in the doc (stored before the guard) are pruned at load, not kept nor re-sent', async () => {
    const net = new MemoryNetwork()
    const a = await victim(net, { maxEntriesPerAuthor: 5 })
    const flood = await floodUpdate(50)
    const doc = a.layer.doc('registry')!
    Y.applyUpdate(doc, flood.update)
    await until(() => doc.getMap('entries').size === 5, 5000, 'pruned to the quota')
    expect(a.layer.metrics()['memory.registry.overQuotaPruned']).toBe(45)
    expect(a.layer.registry.list({ author: flood.author })).toHaveLength(5)
    // What this peer sends a newcomer holds five entries' worth, not fifty.
    const diff = Y.encodeStateAsUpdate(doc)
    expect(diff.byteLength).toBeLessThan(flood.update.byteLength / 4)
  })
})

describe('the cost of publishing: a proof-of-work stamp over each entry (issue 11 item 4)', () => {
  it('mints a stamp with the configured bits, checks it with one hash, and it fits its own signature only', async () => {
    const stamp = await mintWork('A'.repeat(86), 12)
    expect(workBits('A'.repeat(86), stamp)).toBeGreaterThanOrEqual(12)
    expect(hasWork('A'.repeat(86), stamp, 12)).toBe(true)
    expect(hasWork('A'.repeat(86), undefined, 12)).toBe(false)
    expect(hasWork('A'.repeat(86), undefined, 0)).toBe(true)
    // Another entry's signature: the same stamp is (almost surely) worth nothing there.
    const others = Array.from({ length: 8 }, (_, i) => `${'B'.repeat(85)}${i}`).filter((sig) => hasWork(sig, stamp, 12))
    expect(others.length).toBeLessThan(2)
  })

  it('an update adding entries without their work is refused at the guard before it is applied: counted, struck, nothing enters', async () => {
    const net = new MemoryNetwork()
    const a = await victim(net, { publishWorkBits: 10, maxStrikes: 100 })
    const h = await hostile(net)
    const cheap = await floodUpdate(20) // minted at 4 bits: most fall short of 10
    const applied = a.layer.metrics()['memory.sync.updatesApplied'] ?? 0
    let updates = 0
    a.layer.doc('registry')!.on('update', () => updates++)
    await h.send('update', cheap.update)
    await until(() => a.rejected.length === 1)
    expect(a.rejected[0]!.error).toBeInstanceOf(RegistryWorkMissingError)
    expect(a.layer.metrics()['memory.registry.insufficientWorkRefused']).toBe(1)
    // Never applied: the doc saw no update and holds none of them (nothing to verify, nothing to prune).
    expect(updates).toBe(0)
    expect(a.layer.doc('registry')!.getMap('entries').size).toBe(0)
    expect(a.layer.metrics()['memory.sync.updatesApplied'] ?? 0).toBe(applied)
    // No honest peer holds an entry without its work (readers prune it): the sender is hung up on at once.
    await until(() => a.transport.hungUp.length === 1)
    expect(a.transport.hungUp[0]).toMatchObject({ peer: 'z-evil', offence: 'HostileUpdate' })
    // A sync answer carrying them is refused the same way.
    const h2 = await hostile(net, 'z-evil2')
    await h2.send('step2', cheap.update)
    await until(() => a.rejected.length === 2)
    expect(a.rejected[1]!.error).toBeInstanceOf(RegistryWorkMissingError)
    await until(() => a.transport.hungUp.length === 2)
    // Entries that carry their work go in.
    const h3 = await hostile(net, 'z-honest')
    const paid = await paidUpdate(10)
    await h3.send('update', paid.update)
    await until(() => a.layer.registry.list({ author: paid.author }).length === 1)
    expect(a.rejected).toHaveLength(2)
    expect(a.transport.hungUp).toHaveLength(2)
  })

  it('the guard decodes the new values of the roots it is asked for, and only those', async () => {
    const paid = await paidUpdate(4)
    const policy = registryUpdatePolicy(DEFAULT_LIMITS)
    const shape = checkUpdate(paid.update, policy)
    const [[key, value]] = [...shape.values.get('entries')!]
    expect(key).toBe(entryKey(paid.author, 'paid'))
    expect(value).toMatchObject({ id: 'paid', author: paid.author })
    expect(checkUpdate(paid.update, { allowedRoots: policy.allowedRoots }).values.size).toBe(0)
  })

  it('readers refuse entries without enough work (counted, pruned) and list those with it', async () => {
    const net = new MemoryNetwork()
    const a = await victim(net, { publishWorkBits: 10 })
    const h = await hostile(net)
    const cheap = await floodUpdate(20) // minted at 4 bits: most fall short of 10
    const paid = await paidUpdate(10)
    const cheapRecords = [
      ...(() => {
        const d = new Y.Doc()
        Y.applyUpdate(d, cheap.update)
        return d.getMap('entries').values()
      })()
    ] as Array<{ signature: string; work: string }>
    const enough = cheapRecords.filter((r) => workBits(r.signature, r.work) >= 10).length
    // The guard refuses such an update from a peer; these arrive by a path without it (stored before it).
    Y.applyUpdate(a.layer.doc('registry')!, cheap.update)
    await h.send('update', paid.update)
    await until(() => a.layer.registry.list({ author: paid.author }).length === 1)
    await until(() => a.layer.metrics()['memory.registry.insufficientWork'] === 20 - enough)
    expect(a.layer.registry.list({ author: cheap.author })).toHaveLength(enough)
    await until(() => a.layer.doc('registry')!.getMap('entries').size === 1 + enough, 5000, 'the unpaid entries pruned')
  })
})
