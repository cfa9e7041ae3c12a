import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { Counters } from '../core/index.ts'
import { StrikePolicy } from '../mesh/index.ts'
import { AuditLog, auditRecordHash, type AuditRecord } from './audit-log.ts'
import { createMemoryLayer } from './layer.ts'
import { newIdentity } from './test-helpers.ts'

describe('AuditLog', () => {
  it('appends signed, hash-chained records, lists them newest first and verifies the chain', async () => {
    const log = new AuditLog(new Y.Doc(), await newIdentity())
    await log.append({ kind: 'strike', peer: 'p1', subject: 'sync', why: 'sync.InvalidFrameError' })
    await log.append({ kind: 'block', peer: 'p1', subject: 'sync', why: 'sync.RepeatedOffence' })
    const r = await log.append({ kind: 'agent.published', subject: 'my-agent' })
    expect(r?.seq).toBe(2)
    const all = log.list()
    expect(all.map((x) => x.kind)).toEqual(['agent.published', 'block', 'strike'])
    expect(all[0]!.prev).toBe(auditRecordHash(all[1]!))
    expect(log.list({ peer: 'p1', kind: 'block' })).toHaveLength(1)
    expect(await log.verify()).toMatchObject({ ok: true, records: 3, chains: 1, broken: [] })
  })

  it('finds an edited record (bad signature), and a removed one (broken hash link)', async () => {
    const doc = new Y.Doc()
    const log = new AuditLog(doc, await newIdentity())
    for (let i = 0; i < 4; i++) await log.append({ kind: 'strike', peer: `p${i}` })
    const arr = doc.getArray<AuditRecord>('records')
    const edited = { ...arr.get(1), peer: 'someone else' }
    doc.transact(() => {
      arr.delete(1, 1)
      arr.insert(1, [edited])
    })
    let v = await log.verify()
    expect(v.ok).toBe(false)
    expect(v.broken).toEqual(expect.arrayContaining([expect.objectContaining({ seq: 1, why: 'bad signature' })]))
    // Its successor's link covers the edited record's bytes, so it breaks too.
    expect(v.broken).toEqual(expect.arrayContaining([expect.objectContaining({ seq: 2, why: 'broken hash link' })]))
    doc.transact(() => arr.delete(1, 1))
    v = await log.verify()
    expect(v.broken).toEqual([expect.objectContaining({ seq: 2, why: 'broken hash link' })])
  })

  it('is bounded (oldest dropped; the kept chain still verifies) and rate-limits a flood of one kind', async () => {
    const counters = new Counters('audit')
    const log = new AuditLog(new Y.Doc(), await newIdentity(), { max: 10, perKindPerMinute: 15, counters })
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.append({ kind: 'strike', peer: `p${i}` })))
    expect(counters.get('dropped')).toBe(5)
    await log.append({ kind: 'block', peer: 'p0' })
    const all = log.list()
    expect(all).toHaveLength(10)
    expect(all[0]!.kind).toBe('block')
    expect(all.at(-1)!.seq).toBe(6)
    expect((await log.verify()).ok).toBe(true)
  })
})

describe('AuditLog.note', () => {
  it('writes without being awaited, and counts a record it cannot write instead of throwing', async () => {
    const counters = new Counters('audit-note')
    const log = new AuditLog(new Y.Doc(), await newIdentity(), { counters })
    log.note({ kind: 'task.submitted', subject: 'task-1', why: 'hashing' })
    log.note({ kind: 'Not A Kind', subject: 'x' })
    await log.settled()
    expect(log.list().map((r) => [r.kind, r.subject])).toEqual([['task.submitted', 'task-1']])
    expect([counters.get('records'), counters.get('errors')]).toEqual([1, 1])
  })
})

describe('the memory layer writes the audit log', () => {
  it('records strikes and blocks of the mesh policy, publishes and retractions, grants and revokes', async () => {
    const mesh = new Counters('mesh')
    const policy = new StrikePolicy({ counters: mesh, hangUp: () => {} }, { maxStrikes: 2 })
    const identity = await newIdentity()
    const layer = createMemoryLayer({ identity, persistence: 'none', tabSync: false, strikeEvents: policy, limits: { publishWorkBits: 1 } })
    await layer.start()
    try {
      policy.strike('12D3KooWEvil', 'sync', 'InvalidFrameError')
      policy.strike('12D3KooWEvil', 'sync', 'InvalidFrameError')
      await layer.registry.publish({ id: 'audited', manifest: { name: 'audited', capabilities: ['x'] }, moduleSha256: 'a'.repeat(64), holders: [] })
      await layer.registry.retract('audited')
      await layer.memory.createNamespace('shared-ns', { mode: 'shared' })
      await layer.memory.grant('shared-ns', (await newIdentity()).publicKey)
      await layer.audit.settled()
      const kinds = layer.audit.list().map((r) => r.kind)
      expect(kinds).toEqual(['namespace.granted', 'agent.retracted', 'agent.published', 'block', 'strike'])
      const block = layer.audit.list({ kind: 'block' })[0]!
      expect(block).toMatchObject({ peer: '12D3KooWEvil', subject: 'sync', signer: identity.publicKey })
      expect(block.why).toMatch(/^sync\.InvalidFrameError; until /)
      expect((await layer.audit.verify()).ok).toBe(true)
      expect(layer.metrics()['memory.audit.records']).toBe(5)
    } finally {
      await layer.stop()
    }
  })
})
