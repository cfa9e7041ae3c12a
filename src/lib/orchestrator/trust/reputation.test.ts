import { describe, expect, it } from 'vitest'
import { loadIdentity } from '../../core/index.ts'
import { ReputationBook, betaScore } from './reputation.ts'
import { MemoryStatementStore, StatementReader, signStatement, statementSubject } from './statements.ts'

const A = 'a'.repeat(64)

describe('ReputationBook', () => {
  it('keeps a Beta posterior of valid vs invalid results per agent and overall, with latency and cost', () => {
    const b = new ReputationBook()
    expect(b.reputation('u').score).toBe(0.5) // unknown is the prior, not zero
    b.observe('u', A, { valid: true, ms: 100, cost: 1 })
    b.observe('u', A, { valid: true, ms: 300, cost: 1 })
    b.observe('u', A, { valid: false })
    b.observe('u', 'b'.repeat(64), { valid: false })
    expect(b.reputation('u', A)).toEqual({ score: 3 / 5, valid: 2, invalid: 1, avgMs: 200, avgCost: 1 })
    expect(b.reputation('u')).toMatchObject({ score: 3 / 6, valid: 2, invalid: 2 })
    expect(betaScore(0, 0)).toBe(0.5)
    const c = new ReputationBook()
    c.restore(b.snapshot())
    expect(c.reputation('u', A)).toEqual(b.reputation('u', A))
  })

  it('combines statements weighted by trust in their author, capped per author: one sybil cannot move a user alone', () => {
    const b = new ReputationBook()
    // This profile saw the honest user 'h' right 10 times.
    for (let i = 0; i < 10; i++) b.observe('h', A, { valid: true })
    const alone = b.reputation('h').score
    // A sybil (never observed: weight 0.5) claims a million invalid results of h.
    b.setStatements([{ author: 'sybil', user: 'h', valid: 0, invalid: 1_000_000, at: 1 }])
    const smeared = b.reputation('h')
    expect(smeared.invalid).toBeLessThanOrEqual(5) // default cap 10 × weight 0.5
    expect(smeared.score).toBeGreaterThan(0.5)
    expect(smeared.score).toBeLessThan(alone)
    // A sybil vouching for a liar this profile saw lie 10 times does not make it look good.
    for (let i = 0; i < 10; i++) b.observe('liar', A, { valid: false })
    b.setStatements([{ author: 'sybil', user: 'liar', valid: 1_000_000, invalid: 0, at: 1 }])
    expect(b.reputation('liar').score).toBeLessThan(0.5)
    // A statement about oneself is ignored.
    b.setStatements([{ author: 'liar', user: 'liar', valid: 50, invalid: 0, at: 1 }])
    expect(b.reputation('liar').valid).toBe(0)
  })

  it('weighs a trusted author more than an unknown one and keeps the newest statement per author and subject', () => {
    const b = new ReputationBook({ capPerAuthor: 20 })
    for (let i = 0; i < 30; i++) b.observe('good', A, { valid: true })
    for (let i = 0; i < 30; i++) b.observe('bad', A, { valid: false })
    b.setStatements([
      { author: 'good', user: 'x', valid: 20, invalid: 0, at: 1 },
      { author: 'bad', user: 'y', valid: 20, invalid: 0, at: 1 }
    ])
    expect(b.reputation('x').valid).toBeGreaterThan(b.reputation('y').valid * 10)
    b.setStatements([
      { author: 'good', user: 'x', valid: 20, invalid: 0, at: 1 },
      { author: 'good', user: 'x', valid: 0, invalid: 20, at: 2 }
    ])
    expect(b.reputation('x').valid).toBe(0)
  })

  it('many sybils together are capped too (capShared)', () => {
    const b = new ReputationBook({ capPerAuthor: 20, capShared: 30 })
    b.setStatements(Array.from({ length: 100 }, (_, i) => ({ author: `s${i}`, user: 'h', valid: 0, invalid: 1000, at: 1 })))
    expect(b.reputation('h').invalid).toBeCloseTo(30)
  })
})

describe('signed statements', () => {
  it('counts only statements whose publisher signature and subject check out', async () => {
    const alice = await loadIdentity()
    const bob = await loadIdentity()
    const store = new MemoryStatementStore()
    await store.as(alice).publish({ subject: statementSubject(bob.publicKey, A), score: 0.9, valid: 8, invalid: 0 })
    await store.as(alice).publish({ subject: statementSubject(bob.publicKey), score: 0.9, valid: 8, invalid: 0 })
    const good = await signStatement(alice, { subject: statementSubject(bob.publicKey), score: 0.5, valid: 1, invalid: 0 })
    store.put('tampered', { ...good, successes: 1000 })
    store.put('forged', { ...good, publisher: bob.publicKey })
    store.put('not-a-user', await signStatement(alice, { subject: 'entry/abc', score: 0.5, valid: 1, invalid: 0 }))
    store.put('garbage', { subject: 'user:x', kind: 'zerostate/reputation/1' })
    const reader = new StatementReader()
    const list = await reader.read(store.as(alice).records())
    expect(list).toHaveLength(2)
    expect(list.every((s) => s.author === alice.publicKey && s.user === bob.publicKey && s.valid === 8)).toBe(true)
    expect(list.map((s) => s.agentId ?? null).sort()).toEqual([A, null].sort())
    expect(reader.rejected).toBe(3)
  })
})
