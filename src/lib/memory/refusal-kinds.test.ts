// Issue 11: a refused sync update names why (`RejectedUpdateError.refusal`), and the refusals no
// honest peer running this code can cause prove their sender hostile (one blocks it), while those
// an honest peer can relay do not. Quotas count the entries an update makes live, so an honest
// author who retracted and published again, or a peer that pruned records, is not refused.
import { describe, it, expect } from 'vitest'
import * as Y from 'yjs'
import { Counters, PayloadTooLargeError } from '../core/index.ts'
import {
  InvalidEntryError,
  NamespaceQuotaExceededError,
  RegistryQuotaExceededError,
  RegistryWorkMissingError,
  RejectedUpdateError,
  UpdateDeadlineError,
  provesHostile,
  type RefusalKind
} from './errors.ts'
import { UpdateKeyScanner, checkStateVector, checkUpdate, type UpdatePolicy } from './update-guard.ts'
import { Registry, registryUpdatePolicy } from './registry.ts'
import { NamespaceIndex, OWNED_ROOT } from './namespace-index.ts'
import { DEFAULT_LIMITS, type MemoryLimits } from './constants.ts'
import { entryKey } from './registry-schema.ts'
import { fakeSha, jsonContentUpdate, nestedJson, newIdentity } from './test-helpers.ts'

/** The error `fn` throws. */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('nothing was thrown')
}

function nested(depth: number): unknown {
  let v: unknown = 1
  for (let i = 0; i < depth; i++) v = { v }
  return v
}

function mapUpdate(root: string, key: string, value: unknown): Uint8Array {
  const doc = new Y.Doc()
  doc.getMap(root).set(key, value)
  return Y.encodeStateAsUpdate(doc)
}

describe('refusal kinds of the update guard (issue 11)', () => {
  const registry = registryUpdatePolicy(DEFAULT_LIMITS)
  const cases: Array<[RefusalKind, string, () => unknown]> = [
    ['malformed', 'bytes that are no Yjs update', () => checkUpdate(new Uint8Array([0xde, 0xad, 0xbe, 0xef]))],
    ['malformed', 'the yjs#687 bytes', () => checkUpdate(Buffer.from('00010000000001000100010200001602000001fdffffffff7f0000', 'hex'))],
    ['malformed', 'a state vector with trailing bytes', () => checkStateVector(new Uint8Array([1, 5, 5, 9]))],
    ['foreign-root', 'a root the doc does not have', () => checkUpdate(mapUpdate('elsewhere', 'k', 1), new Set(['kv']))],
    ['forbidden-content', 'JSON content in the registry', () => checkUpdate(jsonContentUpdate('entries', 'a/b', ['{}']), registry)],
    ['too-deep', 'a plain value nested 40 deep', () => checkUpdate(mapUpdate('kv', 'k', nested(40)))],
    ['too-deep', 'JSON text nested 40 deep', () => checkUpdate(jsonContentUpdate('kv', 'k', [nestedJson(40)]))],
    ['value-too-large', 'a value over its bound', () => checkUpdate(mapUpdate('kv', 'k', 'x'.repeat(500)), { maxValueBytes: 100 } satisfies UpdatePolicy)],
    ['value-too-large', 'a JSON text over its bound', () => checkUpdate(jsonContentUpdate('kv', 'k', [`"${'x'.repeat(500)}"`]), { maxValueBytes: 100 })]
  ]
  for (const [kind, what, fn] of cases) {
    it(`${what}: refused as ${kind}, which proves its sender hostile`, () => {
      const err = thrown(fn)
      expect(err).toBeInstanceOf(RejectedUpdateError)
      expect((err as RejectedUpdateError).refusal).toBe(kind)
      expect(provesHostile(err)).toBe(true)
    })
  }

  it('refusals an honest peer can cause do not prove hostility; an entry without its work does', () => {
    expect(new UpdateDeadlineError().refusal).toBe('deadline')
    expect(provesHostile(new UpdateDeadlineError())).toBe(false)
    expect(provesHostile(new RejectedUpdateError('the update failed to apply'))).toBe(false)
    expect(provesHostile(new RegistryQuotaExceededError())).toBe(false)
    expect(provesHostile(new NamespaceQuotaExceededError())).toBe(false)
    expect(provesHostile(new PayloadTooLargeError('over the cap'))).toBe(false)
    expect(provesHostile(new Error('anything'))).toBe(false)
    expect(new RegistryWorkMissingError().refusal).toBe('missing-work')
    expect(provesHostile(new RegistryWorkMissingError())).toBe(true)
    expect(provesHostile(new RegistryQuotaExceededError('x', { refusal: 'over-quota-alone' }))).toBe(true)
  })

  it('every update an honest doc produces passes, and the guard never refuses one as hostile', () => {
    const doc = new Y.Doc()
    const m = doc.getMap('kv')
    for (let i = 0; i < 50; i++) m.set(`k${i}`, { deep: nested(20), s: 'x'.repeat(i * 10) })
    for (let i = 0; i < 50; i += 3) m.delete(`k${i}`)
    expect(() => checkUpdate(Y.encodeStateAsUpdate(doc), new Set(['kv']))).not.toThrow()
  })
})

describe('live keys: what an update makes live, not what it once held (issue 11)', () => {
  it('a deleted entry travels as a ContentDeleted struct spelling its key: in keys, not in liveKeys; set again, it is live', () => {
    const a = new Y.Doc()
    const m = a.getMap('entries')
    for (let i = 0; i < 5; i++) m.set(`a/${i}`, { i })
    m.delete('a/1')
    m.delete('a/2')
    // Set again from another client (another tab of the author): its struct continues the deleted one by origin.
    const b = new Y.Doc()
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    b.getMap('entries').set('a/1', { again: true })
    const shape = checkUpdate(Y.encodeStateAsUpdate(b))
    expect([...shape.keys.get('entries')!].sort()).toEqual(['a/0', 'a/1', 'a/2', 'a/3', 'a/4'])
    expect([...shape.liveKeys.get('entries')!].sort()).toEqual(['a/0', 'a/1', 'a/3', 'a/4'])
    // The scanner tells each spelt key's liveness as the bytes arrive (a continuation spells no key:
    // admission counts it on the whole update).
    const seen: Array<[string, boolean]> = []
    new UpdateKeyScanner((_root, key, live) => seen.push([key, live])).push(Y.encodeStateAsUpdate(b))
    expect(seen.filter(([, live]) => !live).map(([k]) => k)).toEqual(['a/1', 'a/2'])
    expect(seen.filter(([, live]) => live).map(([k]) => k)).toEqual(['a/0', 'a/3', 'a/4'])
  })
})

async function publisher(limits: Partial<MemoryLimits>): Promise<{ doc: Y.Doc; reg: Registry; author: string }> {
  const identity = await newIdentity()
  const doc = new Y.Doc()
  const reg = new Registry(doc, identity, { ...DEFAULT_LIMITS, publishWorkBits: 4, ...limits })
  return { doc, reg, author: identity.publicKey }
}

const manifest = (name: string) => ({ name, version: '1.0.0', capabilities: ['word-count'] })

describe('registry quota refusals: alone or with what this tab holds (issue 11)', () => {
  it('publish refuses a manifest deeper than the guard takes, so an honest author never sends what blocks it', async () => {
    const p = await publisher({})
    await expect(
      p.reg.publish({ id: 'deep', manifest: { name: 'deep', schema: nested(40) as Record<string, unknown> }, moduleSha256: fakeSha(1) })
    ).rejects.toThrow(InvalidEntryError)
    await p.reg.publish({ id: 'flat', manifest: { name: 'flat', schema: nested(20) as Record<string, unknown> }, moduleSha256: fakeSha(2) })
    expect(() => checkUpdate(Y.encodeStateAsUpdate(p.doc), registryUpdatePolicy(DEFAULT_LIMITS))).not.toThrow()
  })

  const limits: MemoryLimits = { ...DEFAULT_LIMITS, publishWorkBits: 4, maxEntriesPerAuthor: 4 }

  it('an author at the quota who retracted two agents and published two more is admitted by a newcomer (its deleted keys are not counted)', async () => {
    const p = await publisher({ maxEntriesPerAuthor: 4 })
    for (let i = 0; i < 4; i++) await p.reg.publish({ id: `a${i}`, manifest: manifest(`a${i}`), moduleSha256: fakeSha(i + 1) })
    await p.reg.retract('a0')
    await p.reg.retract('a1')
    for (let i = 4; i < 6; i++) await p.reg.publish({ id: `a${i}`, manifest: manifest(`a${i}`), moduleSha256: fakeSha(i + 1) })
    const newcomer = new Registry(new Y.Doc(), await newIdentity(), limits)
    const update = Y.encodeStateAsUpdate(p.doc)
    const shape = checkUpdate(update, registryUpdatePolicy(limits))
    expect(shape.keys.get('entries')!.size).toBe(6)
    expect(() => newcomer.admit(shape, 'step2')).not.toThrow()
    const scan = newcomer.keyAdmitter('step2')
    expect(() => new UpdateKeyScanner(scan, registryUpdatePolicy(limits)).push(update)).not.toThrow()
  })

  it("one author's live entries over the quota in one update: over-quota-alone (hostile), at the guard and mid-transfer", async () => {
    const p = await publisher({ maxEntriesPerAuthor: 8 })
    for (let i = 0; i < 5; i++) await p.reg.publish({ id: `b${i}`, manifest: manifest(`b${i}`), moduleSha256: fakeSha(i + 1) })
    const update = Y.encodeStateAsUpdate(p.doc)
    const receiver = new Registry(new Y.Doc(), await newIdentity(), limits)
    for (const kind of ['step2', 'update'] as const) {
      const err = thrown(() => receiver.admit(checkUpdate(update, registryUpdatePolicy(limits)), kind))
      expect(err).toBeInstanceOf(RegistryQuotaExceededError)
      expect((err as RejectedUpdateError).refusal).toBe('over-quota-alone')
      expect(provesHostile(err)).toBe(true)
      const mid = thrown(() => new UpdateKeyScanner(receiver.keyAdmitter(kind), registryUpdatePolicy(limits)).push(update))
      expect((mid as RejectedUpdateError).refusal).toBe('over-quota-alone')
    }
  })

  it('over the quota only with what this tab holds: over-quota (an honest peer may relay it), not hostile', async () => {
    const p = await publisher({ maxEntriesPerAuthor: 8 })
    const receiverDoc = new Y.Doc()
    const receiver = new Registry(receiverDoc, await newIdentity(), limits)
    for (let i = 0; i < 3; i++) await p.reg.publish({ id: `c${i}`, manifest: manifest(`c${i}`), moduleSha256: fakeSha(i + 1) })
    Y.applyUpdate(receiverDoc, Y.encodeStateAsUpdate(p.doc))
    const sv = Y.encodeStateVector(p.doc)
    for (let i = 3; i < 5; i++) await p.reg.publish({ id: `c${i}`, manifest: manifest(`c${i}`), moduleSha256: fakeSha(i + 1) })
    const more = Y.encodeStateAsUpdate(p.doc, sv)
    const err = thrown(() => receiver.admit(checkUpdate(more, registryUpdatePolicy(limits)), 'update'))
    expect((err as RejectedUpdateError).refusal).toBe('over-quota')
    expect(provesHostile(err)).toBe(false)
    expect(entryKey(p.author, 'c3').startsWith(p.author)).toBe(true)
  })

  it('entries this tab holds deleted, set live again by an update that spells no key (its structs continue the tombstones), count toward the quota', async () => {
    const p = await publisher({ maxEntriesPerAuthor: 16 })
    const receiverDoc = new Y.Doc()
    const receiver = new Registry(receiverDoc, await newIdentity(), limits)
    const entries = p.doc.getMap('entries')
    // Four entries (the receiver's quota), then deleted: the receiver holds four tombstones.
    for (let i = 0; i < 4; i++) await p.reg.publish({ id: `d${i}`, manifest: manifest(`d${i}`), moduleSha256: fakeSha(i + 1) })
    const values = new Map([...entries.entries()])
    for (let i = 0; i < 4; i++) await p.reg.retract(`d${i}`)
    // Four live ones: the author is at the quota on the receiver.
    for (let i = 4; i < 8; i++) await p.reg.publish({ id: `d${i}`, manifest: manifest(`d${i}`), moduleSha256: fakeSha(i + 1) })
    const admit = (update: Uint8Array): void => {
      receiver.admit(checkUpdate(update, registryUpdatePolicy(limits)), 'update')
      Y.applyUpdate(receiverDoc, update)
    }
    admit(Y.encodeStateAsUpdate(p.doc))
    await receiver.settled()
    expect(receiverDoc.getMap('entries').size).toBe(4)
    // The author's doc sets the four deleted keys again: each new struct has the tombstone as origin.
    const sv = Y.encodeStateVector(p.doc)
    p.doc.transact(() => {
      for (const [key, value] of values) entries.set(key, value)
    })
    const revive = Y.encodeStateAsUpdate(p.doc, sv)
    const shape = checkUpdate(revive, registryUpdatePolicy(limits))
    expect(shape.liveKeys.get('entries')).toBeUndefined()
    expect(shape.continued.length).toBe(4)
    const err = thrown(() => receiver.admit(shape, 'update'))
    expect(err).toBeInstanceOf(RegistryQuotaExceededError)
    expect((err as RejectedUpdateError).refusal).toBe('over-quota')
    // Under the quota the same kind of update is admitted: an author who retracted and set one again.
    const q = await publisher({})
    const qDoc = new Y.Doc()
    const qReceiver = new Registry(qDoc, await newIdentity(), limits)
    await q.reg.publish({ id: 'e0', manifest: manifest('e0'), moduleSha256: fakeSha(1) })
    const kept = new Map([...q.doc.getMap('entries').entries()])
    await q.reg.retract('e0')
    Y.applyUpdate(qDoc, Y.encodeStateAsUpdate(q.doc))
    const qsv = Y.encodeStateVector(q.doc)
    for (const [key, value] of kept) q.doc.getMap('entries').set(key, value)
    expect(() => qReceiver.admit(checkUpdate(Y.encodeStateAsUpdate(q.doc, qsv), registryUpdatePolicy(limits)), 'update')).not.toThrow()
  })
})

describe('namespace index: an owner over the quota is pruned to it, so honest peers never send more (issue 11)', () => {
  it('two partitions of one owner are pruned to the earliest quota; what the peer then sends passes a newcomer as not hostile', async () => {
    const limits: MemoryLimits = { ...DEFAULT_LIMITS, maxNamespacesPerOwner: 2 }
    const owner = await newIdentity()
    const records = async (names: string[], createdAt: number, lim = limits): Promise<Uint8Array> => {
      const doc = new Y.Doc()
      const idx = new NamespaceIndex(doc, lim, new Counters('kv'), () => {})
      for (const [i, name] of names.entries())
        await idx.put(owner, {
          kind: 'zerostate/namespace/1',
          name,
          owner: owner.publicKey,
          mode: 'shared',
          createdAt: createdAt + i,
          version: 1,
          writers: ['*']
        })
      return Y.encodeStateAsUpdate(doc)
    }
    const late = await records(['n2', 'n3'], 2000)
    const early = await records(['n0', 'n1'], 1000)
    const doc = new Y.Doc()
    const counters = new Counters('kv')
    const peer = new NamespaceIndex(doc, limits, counters, () => {})
    Y.applyUpdate(doc, late)
    await peer.settled()
    // A sync answer within the quota alone is admitted, then the later two are pruned.
    peer.admit(checkUpdate(early), 'step2')
    Y.applyUpdate(doc, early)
    await peer.settled()
    expect([...doc.getMap(OWNED_ROOT).keys()].map((k) => k.split('/').pop()).sort()).toEqual(['n0', 'n1'])
    expect(counters.get('namespacesOverQuotaPruned')).toBe(2)
    expect(peer.names().sort()).toEqual(['n0', 'n1'])
    // What the peer sends a newcomer now holds the quota of that owner, not more.
    const newcomer = new NamespaceIndex(new Y.Doc(), limits, new Counters('kv'), () => {})
    expect(() => newcomer.admit(checkUpdate(Y.encodeStateAsUpdate(doc)), 'step2')).not.toThrow()
    // Three live records of the owner in one update are over the quota on their own: hostile.
    const bomb = await records(['x0', 'x1', 'x2'], 3000, { ...limits, maxNamespacesPerOwner: 64 })
    const err = thrown(() => newcomer.admit(checkUpdate(bomb), 'step2'))
    expect(err).toBeInstanceOf(NamespaceQuotaExceededError)
    expect((err as RejectedUpdateError).refusal).toBe('over-quota-alone')
  })
})
