import { describe, expect, it } from 'vitest'
import { loadIdentity } from '../../core/index.ts'
import { signReceipt } from './receipts.ts'
import { MemoryStatementStore, signStatement } from './statements.ts'
import { MemoryTrustStore } from './trust-store.ts'
import { trustService, type SettledResult } from './trust-service.ts'

const A = 'd'.repeat(64)

describe('trustService', () => {
  it('keeps reputation, streaks and receipts across a reload; publishes statements a fresh profile reads', async () => {
    const [me, honest, liar, fresh] = await Promise.all([loadIdentity(), loadIdentity(), loadIdentity(), loadIdentity()])
    const peers = new Map([
      ['p-honest', honest.publicKey],
      ['p-liar', liar.publicKey]
    ])
    const users = { userOf: (p: string) => peers.get(p) }
    const store = new MemoryTrustStore()
    const shared = new MemoryStatementStore()
    const t = trustService({ publishEveryMs: 5, saveEveryMs: 5 })({ identity: me, users, store, statements: shared.as(me) })
    await t.start()
    const res = (peer: string, agreed: boolean): SettledResult => ({ peer, user: peers.get(peer)!, ms: 10, price: 1, agreed })
    for (let i = 0; i < 6; i++) {
      const receipts = await t.settle({
        taskId: `t-${i}`,
        stepId: 's1',
        agentId: A,
        outcome: 'verified',
        results: [res('p-honest', true), res('p-liar', false)]
      })
      // Only the result in the majority is paid.
      expect(receipts.map((r) => r.peer)).toEqual(['p-honest'])
    }
    expect(t.reputation('p-liar')).toMatchObject({ valid: 0, invalid: 6 })
    expect(t.reputation('p-honest')!.score).toBeGreaterThan(t.reputation('p-liar')!.score)
    expect(t.reputation('p-unknown')).toBeUndefined()
    expect(t.credits()).toMatchObject({ spent: 6, earned: 0, balance: -6 })
    expect(t.agentQuality(A)).toBeCloseTo(7 / 14)
    expect(t.agentRunMs(A)).toBe(10)
    await t.stop()

    // A reload: a new service on the same store.
    const again = trustService()({ identity: me, users, store })
    await again.start()
    expect(again.reputation('p-liar')).toMatchObject({ valid: 0, invalid: 6 })
    expect(again.credits().receipts).toHaveLength(6)
    expect(again.policy.trust(honest.publicKey, A).streak).toBe(6)

    // Another profile that observed nothing reads the signed statements.
    const other = trustService()({ identity: fresh, users, statements: shared.as(fresh) })
    await other.start()
    const l = other.reputation('p-liar')!
    const h = other.reputation('p-honest')!
    expect(l.invalid).toBeGreaterThan(0)
    expect(h.score).toBeGreaterThan(l.score)
  })

  it('keeps a receipt only when it pays this profile and is signed by the peer that sends it', async () => {
    const [me, sub, stranger] = await Promise.all([loadIdentity(), loadIdentity(), loadIdentity()])
    const t = trustService()({ identity: me, users: { userOf: (p) => (p === 'p-sub' ? sub.publicKey : p === 'p-stranger' ? stranger.publicKey : undefined) } })
    await t.start()
    const r = await signReceipt(sub, { task: 't-1', step: 's1', agent: A, donor: me.publicKey, price: 0.5 })
    expect(await t.receive('p-stranger', r)).toBe(false) // signed by sub, sent by stranger's peer
    expect(await t.receive('p-sub', { ...r, price: 5 })).toBe(false)
    expect(await t.receive('p-sub', await signReceipt(sub, { task: 't-1', step: 's1', agent: A, donor: stranger.publicKey, price: 1 }))).toBe(false)
    expect(await t.receive('p-sub', r)).toBe(true)
    expect(t.credits()).toMatchObject({ earned: 0.5, balance: 0.5 })
    expect(t.stats()['trust.receiptsRefused']).toBe(3)
  })

  it('does not count its own published statements again (one verified result is one valid result)', async () => {
    const [me, donor] = await Promise.all([loadIdentity(), loadIdentity()])
    const users = { userOf: (p: string) => (p === 'p-donor' ? donor.publicKey : undefined) }
    const shared = new MemoryStatementStore()
    const t = trustService({ publishEveryMs: 1 })({ identity: me, users, statements: shared.as(me) })
    await t.start()
    let published = 0
    const off = shared.as(me).subscribe(() => published++)
    await t.settle({
      taskId: 't-1',
      stepId: 's1',
      agentId: A,
      outcome: 'verified',
      results: [{ peer: 'p-donor', user: donor.publicKey, ms: 5, price: 1, agreed: true }]
    })
    await expect.poll(() => published).toBeGreaterThanOrEqual(2) // overall and per agent, read back by this tab
    await t.flush()
    off()
    expect(t.reputation('p-donor')).toMatchObject({ valid: 1, invalid: 0 })
    expect(t.userReputation(donor.publicKey, A).valid).toBe(1)
    await t.stop()
    // Another tab of the same profile (no saved state here): its own statements are not evidence from someone else.
    const tab2 = trustService()({ identity: me, users, statements: shared.as(me) })
    await tab2.start()
    expect(tab2.reputation('p-donor')).toBeUndefined()
    await tab2.stop()
  })

  it("reads other profiles' signed A/B decisions from the registry records; forged and its own are left out", async () => {
    const [me, other] = await Promise.all([loadIdentity(), loadIdentity()])
    const shared = new MemoryStatementStore()
    const subject = 'ab:summarize@2.0.0:promoted:vs=1.0.0;s=0.95/0.9;ms=18/20;cost=0.1/0.1;n=30/270'
    await shared.as(other).publish({ subject, score: 0.95, valid: 29, invalid: 1 })
    await shared.as(me).publish({ subject: subject.replace('2.0.0', '3.0.0'), score: 0.9, valid: 27, invalid: 3 })
    const signed = await signStatement(other, { subject: subject.replace('summarize', 'hash'), score: 0.9, valid: 27, invalid: 3 })
    shared.put('forged', { ...signed, subject: signed.subject.replace('promoted', 'demoted') })
    const t = trustService()({ identity: me, users: { userOf: () => undefined }, statements: shared.as(me) })
    await t.start()
    expect(t.sharedDecisions()).toMatchObject([
      { author: other.publicKey, name: 'summarize', version: '2.0.0', decision: 'promoted', against: '1.0.0', subject }
    ])
    expect(t.stats()['trust.statementsRefused']).toBe(1)
    await t.stop()
  })
})
