/**
 * The learned state survives a reload (issue 12 "Learning"): a second learning service on the same
 * store holds the first one's bandit counts, A/B trials and decisions, anomaly histories and flags,
 * and keeps learning from there; a stored value that does not parse is ignored.
 */
import { describe, expect, it } from 'vitest'
import { agent } from '../test-fixtures.ts'
import { outcome, seeded } from './learning-fixtures.ts'
import { routeLearning } from './learning.ts'
import { MemoryLearningStore } from './learning-store.ts'

const CAP = 'text-summarization'
const AUTHOR = 'ed25519:author'
const v1 = { ...agent('sum-v1', [CAP], 0.1, { author: AUTHOR }), name: 'summarize', version: '1.0.0' }
const v2 = { ...agent('sum-v2', [CAP], 0.1, { author: AUTHOR }), name: 'summarize', version: '2.0.0' }
const flaky = agent('flaky', [CAP], 0.1)

function service(store: MemoryLearningStore, checks: string[] = []) {
  return routeLearning({ random: seeded(7), ab: { minResults: 5 }, anomaly: { window: 10, minHistory: 20 }, healthDelayMs: 5, saveEveryMs: 5 })({
    users: { userOf: (p) => `ed25519:${p}` },
    store,
    health: async (t) => {
      checks.push(`${t.kind}:${t.id}`)
      return false
    }
  })
}

describe('learned state across a reload', () => {
  it('restores bandit counts, A/B decisions and anomaly flags, and goes on learning from them', async () => {
    const store = new MemoryLearningStore()
    const a = service(store)
    await a.load()
    a.abChoose(CAP, v1, v2)
    for (let i = 0; i < 5; i++) {
      a.record(outcome(v1.id, true, { durationMs: 20 }))
      a.record(outcome(v2.id, true, { durationMs: 10 }))
    }
    for (let i = 0; i < 20; i++) a.record(outcome(flaky.id, true, { peerId: 'p2' }))
    for (let i = 0; i < 10; i++) a.record(outcome(flaky.id, false, { peerId: 'p2' }))
    const before = a.snapshot()
    expect(before.ab).toMatchObject([{ name: 'summarize', status: 'promoted', decision: { decision: 'promoted' } }])
    expect(before.anomalies.map((f) => `${f.kind}:${f.id}`).sort()).toEqual([`agent:${flaky.id}`, 'user:ed25519:p2'])
    // Saved a moment after the change, without a flush.
    await expect.poll(() => store.state != null).toBe(true)
    a.stop()
    await a.flush()
    const saved = a.snapshot() // health checks may have run meanwhile: their counts are saved too

    const checks: string[] = []
    const b = service(store, checks)
    expect(b.snapshot().bandit).toEqual({}) // nothing before load
    await b.load()
    const after = b.snapshot()
    expect(after.bandit).toEqual(saved.bandit)
    expect(after.ab).toEqual(saved.ab)
    expect(after.anomalies).toEqual(saved.anomalies)
    expect(after.health).toEqual(saved.health)
    expect(b.agentFlagged(flaky.id)).toBe(true)
    expect(b.peerFlagged('p2')).toBe(true)
    // The promoted version keeps all the traffic; restored flags are health-checked again.
    for (let i = 0; i < 20; i++) expect(b.abChoose(CAP, v1, v2).use).toBe('challenger')
    await expect.poll(() => [...new Set(checks)].sort()).toEqual([`agent:${flaky.id}`, 'user:ed25519:p2'])
    // Learning goes on from the restored counts.
    b.record(outcome(v1.id, false))
    const arm = b.snapshot().bandit[CAP].find((x) => x.agentId === v1.id)
    expect(arm).toMatchObject({ successes: 5, failures: 1 })
    b.stop()
  })

  it('ignores a stored value that is not a learned state (starts afresh)', async () => {
    const store = new MemoryLearningStore()
    store.state = {
      v: 1,
      bandit: [['x', [['a', { s: -1, f: 0, ms: 0, msN: 0, cost: 0, costN: 0, at: 0 }]]]],
      ab: [],
      anomaly: [],
      health: { runs: 0, passed: 0, failed: 0 }
    }
    const l = service(store)
    await l.load()
    expect(l.snapshot().bandit).toEqual({})
    l.record(outcome(v1.id, true))
    await l.flush()
    const again = service(store)
    await again.load()
    expect(again.snapshot().bandit[CAP]).toMatchObject([{ agentId: v1.id, successes: 1, failures: 0 }])
    l.stop()
    again.stop()
  })
})
