/**
 * Anomaly detection: departures of an agent's or a user's failure rate, latency or disagreement
 * rate from its own history are flagged (and steady noise is not); through the router, a flagged
 * agent or user is routed around while another is eligible, and a passed health check (a
 * known-answer run) clears it; a failed one keeps it flagged and is retried.
 */
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { AnomalyDetector } from './anomaly.ts'
import { createRouter } from './router.ts'
import { resolvePreferences } from './preferences.ts'
import { routeLearning, type HealthTarget } from './learning.ts'
import { InvalidTaskRequestError } from '../errors.ts'
import { agent, catalogOf, peer } from '../test-fixtures.ts'
import { outcome, seeded } from './learning-fixtures.ts'

const CAP = 'text-summarization'
const prefs = () => resolvePreferences({ strategy: 'cost' }, (m) => new InvalidTaskRequestError(m))

describe('AnomalyDetector', () => {
  const feed = (d: AnomalyDetector, n: number, f: (i: number) => { failed: boolean; ms?: number; disagreed?: boolean }) => {
    let flag: ReturnType<AnomalyDetector['record']>
    for (let i = 0; i < n; i++) flag ??= d.record('agent', 'x', f(i), i)
    return flag
  }

  it('flags a failure rate that rises from its history (and says by how much)', () => {
    const d = new AnomalyDetector()
    const rng = seeded(1)
    expect(feed(d, 100, () => ({ failed: rng() < 0.05, ms: 10 }))).toBeUndefined()
    const flag = feed(d, 30, () => ({ failed: rng() < 0.7, ms: 10 }))
    expect(flag).toMatchObject({ kind: 'agent', id: 'x', metric: 'failure' })
    // Raised as soon as the window departs enough, before it is full of the new rate.
    expect(flag?.baseline).toBeLessThan(0.1)
    expect(flag?.recent).toBeGreaterThanOrEqual((flag?.baseline ?? 1) + 0.3)
    expect(flag?.z).toBeGreaterThanOrEqual(4)
    expect(d.flagged('agent', 'x')).toBe(true)
    expect(d.flagged('user', 'x')).toBe(false)
  })

  it('flags latency that departs from its own history (robust z-score), not a slow but steady agent', () => {
    const d = new AnomalyDetector()
    const rng = seeded(2)
    expect(feed(d, 100, () => ({ failed: false, ms: 500 + rng() * 100 }))).toBeUndefined()
    const flag = feed(d, 30, () => ({ failed: false, ms: 2000 + rng() * 100 }))
    expect(flag).toMatchObject({ metric: 'latency' })
    expect(flag?.baseline).toBeGreaterThan(500)
    expect(flag?.baseline).toBeLessThan(600)
    expect(flag?.recent).toBeGreaterThanOrEqual(2 * (flag?.baseline ?? Infinity))
    // The same 2 s is the steady history of another agent: no flag.
    const steady = new AnomalyDetector()
    for (let i = 0; i < 200; i++) expect(steady.record('agent', 'slow', { failed: false, ms: 2000 + rng() * 100 })).toBeUndefined()
  })

  it('flags a disagreement rate that rises (outvoted results), counting only compared results', () => {
    const d = new AnomalyDetector()
    const rng = seeded(3)
    feed(d, 80, () => ({ failed: false, ms: 10, disagreed: false }))
    const flag = feed(d, 30, (i) => (i % 2 === 0 ? { failed: true, disagreed: true } : { failed: rng() < 0.2, ms: 10, disagreed: false }))
    expect(flag?.metric).toMatch(/failure|disagreement/)
    const only = new AnomalyDetector({ minRateJump: 0.3 })
    // Failures that are not disagreements (timeouts, history full of them) do not count as disagreement.
    for (let i = 0; i < 80; i++) only.record('user', 'u', { failed: i % 2 === 0, ms: 10, disagreed: i % 2 === 0 ? undefined : false })
    let f: ReturnType<AnomalyDetector['record']>
    for (let i = 0; i < 30; i++) f ??= only.record('user', 'u', { failed: i % 2 === 0, disagreed: i % 2 === 0 })
    expect(f?.metric).toBe('disagreement')
  })

  it('steady noise is never flagged (seeded property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.double({ min: 0, max: 0.1, noNaN: true }),
        fc.integer({ min: 5, max: 5000 }),
        (seed, p, base) => {
          const rng = seeded(seed)
          const d = new AnomalyDetector()
          for (let i = 0; i < 400; i++) {
            const failed = rng() < p
            expect(d.record('agent', 'x', { failed, ms: failed ? undefined : base * (1 + rng() * 0.5), disagreed: failed ? undefined : false })).toBeUndefined()
          }
        }
      ),
      { numRuns: 20 }
    )
  })

  it('clear drops the window that raised the flag and keeps the history', () => {
    const d = new AnomalyDetector({ window: 10, minHistory: 20 })
    for (let i = 0; i < 40; i++) d.record('agent', 'x', { failed: false, ms: 10 })
    let flag: ReturnType<AnomalyDetector['record']>
    for (let i = 0; i < 10; i++) flag ??= d.record('agent', 'x', { failed: true })
    expect(flag?.metric).toBe('failure')
    d.checked('agent', 'x', false)
    expect(d.flag('agent', 'x')).toMatchObject({ checks: 1, lastCheck: 'failed' })
    expect(d.clear('agent', 'x')).toBe(true)
    expect(d.flagged('agent', 'x')).toBe(false)
    expect(d.clear('agent', 'x')).toBe(false)
    // Healthy again: no flag from the old window; the history still judges new departures.
    for (let i = 0; i < 20; i++) expect(d.record('agent', 'x', { failed: false, ms: 10 })).toBeUndefined()
  })
})

describe('anomalies in routing', () => {
  const good = agent('a-cheap-flaky', [CAP], 0.1)
  const backup = agent('b-dearer', [CAP], 0.5)
  const small = { window: 10, minHistory: 20 }

  it('a flagged agent is routed around while another is eligible; a passed health check clears it', async () => {
    const checks: HealthTarget[] = []
    let pass = false
    // Every run is this profile's own (only the agent is judged here; users have their own test).
    const learning = routeLearning({ anomaly: small, healthDelayMs: 60_000 })({
      users: { userOf: () => 'user:me' },
      self: 'user:me',
      health: async (t) => {
        checks.push(t)
        return pass
      }
    })
    const r = createRouter({ catalog: catalogOf([good, backup]), peers: { peers: () => [peer('p1')] }, learning })
    for (let i = 0; i < 30; i++) learning.record(outcome(good.id, true))
    expect(r.route([CAP], prefs()).winner.agent.id).toBe(good.id)
    for (let i = 0; i < 10; i++) learning.record(outcome(good.id, false))
    expect(learning.agentFlagged(good.id)).toBe(true)
    const d = r.route([CAP], prefs())
    expect(d.winner.agent.id).toBe(backup.id)
    expect(d.alternatives.map((x) => x.agent.id)).toContain(good.id)
    // Alone, it is still routed (flagged, not refused), and the reasoning says so.
    const alone = r.route([CAP], prefs(), { onlyAgents: new Set([good.id]) })
    expect(alone.winner.agent.id).toBe(good.id)
    expect(alone.reasoning).toMatch(/anomaly detection flagged it/)
    expect(learning.snapshot().anomalies).toMatchObject([{ kind: 'agent', id: good.id, metric: 'failure' }])
    // A failed known-answer run keeps the flag.
    expect(await learning.checkHealth('agent', good.id)).toBe(false)
    expect(checks[0]).toEqual({ kind: 'agent', id: good.id, agents: [good.id], peers: [] })
    expect(r.route([CAP], prefs()).winner.agent.id).toBe(backup.id)
    // A passed one clears it: routed to again.
    pass = true
    expect(await learning.checkHealth('agent', good.id)).toBe(true)
    expect(learning.agentFlagged(good.id)).toBe(false)
    expect(r.route([CAP], prefs()).winner.agent.id).toBe(good.id)
    expect(learning.snapshot()).toMatchObject({ anomalies: [], health: { runs: 2, passed: 1, failed: 1 } })
    learning.stop()
  })

  it('the health check runs by itself after a flag and is retried until it passes', async () => {
    vi.useFakeTimers()
    try {
      let calls = 0
      const learning = routeLearning({ anomaly: small, healthDelayMs: 1000 })({
        users: { userOf: () => 'user:me' },
        self: 'user:me',
        health: async () => ++calls >= 3
      })
      for (let i = 0; i < 30; i++) learning.record(outcome(good.id, true))
      for (let i = 0; i < 10; i++) learning.record(outcome(good.id, false))
      expect(learning.agentFlagged(good.id)).toBe(true)
      await vi.advanceTimersByTimeAsync(999)
      expect(calls).toBe(0)
      await vi.advanceTimersByTimeAsync(1) // first check at 1 s: fails
      expect(calls).toBe(1)
      await vi.advanceTimersByTimeAsync(2000) // retried after 2 s: fails
      expect(calls).toBe(2)
      expect(learning.agentFlagged(good.id)).toBe(true)
      await vi.advanceTimersByTimeAsync(4000) // after 4 s: passes
      expect(calls).toBe(3)
      expect(learning.agentFlagged(good.id)).toBe(false)
      await vi.advanceTimersByTimeAsync(60_000)
      expect(calls).toBe(3)
      learning.stop()
    } finally {
      vi.useRealTimers()
    }
  })

  it("a flagged user's peers are routed around; the health check gets its peers and agents", async () => {
    const users: Record<string, string> = { 'a-liar-1': 'user:liar', 'a-liar-2': 'user:liar', 'b-honest': 'user:honest' }
    const targets: HealthTarget[] = []
    const learning = routeLearning({ anomaly: small, healthDelayMs: 60_000 })({
      users: { userOf: (p) => users[p] ?? `peer:${p}` },
      self: 'user:me',
      health: async (t) => {
        targets.push(t)
        return true
      }
    })
    const peers = [peer('a-liar-1', { rttMs: 1 }), peer('a-liar-2', { rttMs: 1 }), peer('b-honest', { rttMs: 50 })]
    const r = createRouter({ catalog: catalogOf([good]), peers: { peers: () => peers }, learning })
    const speed = resolvePreferences({ strategy: 'speed' }, (m) => new InvalidTaskRequestError(m))
    expect(r.route([CAP], speed).winner.peer.id).toBe('a-liar-1')
    for (let i = 0; i < 30; i++) learning.record(outcome(good.id, true, { peerId: i % 2 === 0 ? 'a-liar-1' : 'a-liar-2' }))
    // Outvoted by other users' replicas, over and over.
    for (let i = 0; i < 10; i++) learning.record(outcome(good.id, false, { peerId: 'a-liar-2', errorName: 'InvalidOutputError' }))
    expect(learning.peerFlagged('a-liar-1')).toBe(true)
    expect(learning.peerFlagged('b-honest')).toBe(false)
    // The liar's outvoted results are not the agent's fault: the agent is not flagged.
    expect(learning.agentFlagged(good.id)).toBe(false)
    const d = r.route([CAP], speed)
    expect(d.winner.peer.id).toBe('b-honest')
    expect([d.winner, ...d.alternatives].map((x) => x.peer.id)).toEqual(['b-honest'])
    // With only the flagged user's peers, they are still used.
    expect(r.route([CAP], speed, { peers: peers.slice(0, 2) }).winner.peer.id).toBe('a-liar-1')
    expect(await learning.checkHealth('user', 'user:liar')).toBe(true)
    expect(targets[0]).toEqual({ kind: 'user', id: 'user:liar', agents: [good.id], peers: ['a-liar-2', 'a-liar-1'] })
    expect(r.route([CAP], speed).winner.peer.id).toBe('a-liar-1')
    learning.stop()
  })

  it("this profile's own runs are not judged as a user's, and cancelled steps teach nothing", () => {
    const learning = routeLearning({ anomaly: small })({ users: { userOf: () => 'user:me' }, self: 'user:me' })
    for (let i = 0; i < 30; i++) learning.record(outcome(good.id, true))
    for (let i = 0; i < 10; i++) learning.record(outcome(good.id, false))
    expect(learning.snapshot().anomalies.map((f) => f.kind)).toEqual(['agent'])
    const fresh = routeLearning({ anomaly: small })()
    for (let i = 0; i < 30; i++) fresh.record(outcome(good.id, true))
    for (let i = 0; i < 10; i++) fresh.record(outcome(good.id, false, { errorName: 'TaskCancelledError' }))
    expect(fresh.agentFlagged(good.id)).toBe(false)
    expect(fresh.snapshot().bandit[CAP][0]).toMatchObject({ successes: 30, failures: 0 })
  })
})
