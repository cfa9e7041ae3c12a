/**
 * The balanced strategy's bandit: Thompson sampling converges on a simulated population of agents
 * (the real router, the real learning service, outcomes drawn with a seeded source), and cost and
 * latency still count. The other strategies ignore it.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createRouter } from './router.ts'
import { resolvePreferences, type RoutingPreferences } from './preferences.ts'
import { routeLearning } from './learning.ts'
import { sampleBeta, ThompsonBandit } from './bandit.ts'
import { InvalidTaskRequestError } from '../errors.ts'
import { agent, catalogOf, peer } from '../test-fixtures.ts'
import { outcome, seeded } from './learning-fixtures.ts'

const CAP = 'text-summarization'
const prefs = (p: RoutingPreferences = {}) => resolvePreferences(p, (m) => new InvalidTaskRequestError(m))

interface Sim {
  /** Chance each result is accepted. */
  p: number
  price?: number
  ms?: number
}

/** Route `rounds` steps over the population under `strategy`; each outcome teaches learning. Returns the index picked each round. */
function simulate(pop: Sim[], rounds: number, seed: number, p: RoutingPreferences = {}): number[] {
  const rng = seeded(seed)
  const agents = pop.map((s, i) => agent(`agent-${i}`, [CAP], s.price ?? 0.1))
  const learning = routeLearning({ random: rng })()
  const r = createRouter({ catalog: catalogOf(agents), peers: { peers: () => [peer('p1')] }, learning })
  const picks: number[] = []
  const pr = prefs(p)
  for (let t = 0; t < rounds; t++) {
    const d = r.route([CAP], pr)
    const i = agents.indexOf(d.winner.agent)
    picks.push(i)
    const s = pop[i]
    learning.record(outcome(d.winner.agent.id, rng() < s.p, { durationMs: s.ms ?? 10, cost: s.price ?? 0.1 }))
  }
  return picks
}

const share = (picks: number[], i: number) => picks.filter((x) => x === i).length / picks.length

describe('sampleBeta', () => {
  it('draws with the Beta mean and variance (seeded)', () => {
    for (const [a, b] of [
      [2, 5],
      [0.5, 0.5],
      [30, 3]
    ]) {
      const rng = seeded(7)
      const xs = Array.from({ length: 20_000 }, () => sampleBeta(a, b, rng))
      const mean = xs.reduce((s, x) => s + x, 0) / xs.length
      const v = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length
      expect(mean).toBeCloseTo(a / (a + b), 2)
      expect(v).toBeCloseTo((a * b) / ((a + b) ** 2 * (a + b + 1)), 2)
      expect(xs.every((x) => x >= 0 && x <= 1)).toBe(true)
    }
  })

  it('a broken source gives a number in [0, 1], never a hang', () => {
    expect(sampleBeta(2, 3, () => 0)).toBeGreaterThanOrEqual(0)
    expect(sampleBeta(2, 3, () => 0.999999999)).toBeLessThanOrEqual(1)
  })
})

describe('Thompson sampling in the balanced strategy', () => {
  it('converges on the best agent of a simulated population: most of the late traffic, regret falling', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        fc.array(fc.double({ min: 0.05, max: 0.7, noNaN: true }), { minLength: 2, maxLength: 6 }),
        fc.nat(),
        (seed, others, at) => {
          // The best agent (0.95) at a random place among worse ones (at most 0.7).
          const best = at % (others.length + 1)
          const ps = [...others.slice(0, best), 0.95, ...others.slice(best)]
          const picks = simulate(
            ps.map((p) => ({ p })),
            600,
            seed
          )
          const regret = (from: number, to: number) => picks.slice(from, to).reduce((s, i) => s + (0.95 - ps[i]), 0)
          expect(share(picks.slice(-200), best)).toBeGreaterThanOrEqual(0.8)
          expect(regret(400, 600)).toBeLessThan(regret(0, 200))
        }
      ),
      { numRuns: 8 }
    )
  })

  it('explores: every agent is tried early, including one listed last', () => {
    const picks = simulate([{ p: 0.9 }, { p: 0.9 }, { p: 0.9 }, { p: 0.9 }], 80, 11)
    for (let i = 0; i < 4; i++) expect(picks.includes(i)).toBe(true)
  })

  it('cost still counts: at equal success the cheaper agent takes most of the traffic', () => {
    const picks = simulate(
      [
        { p: 0.9, price: 1 },
        { p: 0.9, price: 0.1 }
      ],
      400,
      5
    )
    expect(share(picks.slice(-200), 1)).toBeGreaterThan(0.8)
  })

  it('latency still counts: at equal success and price the faster agent takes most of the traffic', () => {
    const picks = simulate(
      [
        { p: 0.9, ms: 400 },
        { p: 0.9, ms: 20 }
      ],
      400,
      9
    )
    expect(share(picks.slice(-200), 1)).toBeGreaterThan(0.8)
  })

  it('the other strategies ignore it: quality keeps the stated best whatever the outcomes', () => {
    const agents = [agent('stated-worse', [CAP], 0.1, { quality: 0.4 }), agent('stated-better', [CAP], 0.1, { quality: 0.8 })]
    const learning = routeLearning({ random: seeded(3) })()
    for (let i = 0; i < 50; i++) {
      learning.record(outcome(agents[1].id, false))
      learning.record(outcome(agents[0].id, true))
    }
    const r = createRouter({ catalog: catalogOf(agents), peers: { peers: () => [peer('p1')] }, learning })
    for (let i = 0; i < 20; i++) expect(r.route([CAP], prefs({ strategy: 'quality' })).winner.agent.name).toBe('stated-better')
    // ...and balanced follows the outcomes.
    const balanced = Array.from({ length: 50 }, () => r.route([CAP], prefs()).winner.agent.name)
    expect(balanced.filter((n) => n === 'stated-worse').length).toBeGreaterThan(40)
  })

  it('learned state: arms per capability with successes, failures, mean, run time and cost', () => {
    const b = new ThompsonBandit({ random: seeded(1) })
    b.record(CAP, 'x', true, 10, 0.5)
    b.record(CAP, 'x', true, 20, 0.5)
    b.record(CAP, 'x', false, undefined, 0.5)
    b.record(CAP, 'y', false, Number.NaN, -1)
    const arms = b.arms(CAP)
    expect(arms[0]).toMatchObject({ agentId: 'x', successes: 2, failures: 1, mean: 3 / 5, meanMs: 12, meanCost: 0.5 })
    expect(arms[1]).toMatchObject({ agentId: 'y', successes: 0, failures: 1 })
    expect(arms[1].meanMs).toBeUndefined()
    expect(Object.keys(b.snapshot())).toEqual([CAP])
  })

  it('memory is bounded: the least recently used capability and arm are forgotten', () => {
    const b = new ThompsonBandit({ maxCapabilities: 2, maxArms: 2 })
    b.record('c1', 'a', true)
    b.record('c2', 'a', true)
    b.record('c1', 'b', true)
    b.record('c3', 'a', true)
    expect(Object.keys(b.snapshot()).sort()).toEqual(['c1', 'c3'])
    b.record('c1', 'c', true)
    expect(
      b
        .arms('c1')
        .map((a) => a.agentId)
        .sort()
    ).toEqual(['b', 'c'])
  })
})
