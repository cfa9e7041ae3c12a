/**
 * Every routing term, constraint and strategy pinned by a test of its own: each test here fails
 * when the term it names is removed from the router or its sign is flipped.
 *
 * Conventions that make deletion visible: the expected winner is always listed LAST among agents
 * and its peer has the alphabetically LAST id, because on a tie the router keeps the earlier agent
 * and the alphabetically first peer. A term that no longer counts therefore hands the win to the
 * wrong candidate instead of leaving it to luck.
 *
 * Agent terms are checked twice: with `maxAlternatives: 1` the scan keeps one agent, so the scan's
 * score picks it; with the default 8 the final pair ranking (`scored`) picks it.
 */
import { describe, expect, it } from 'vitest'
import { createRouter, NoEligiblePeerError, type Router } from './router.ts'
import { DEFAULT_WEIGHTS, resolvePreferences, STRATEGIES, type RoutingPreferences } from './preferences.ts'
import type { RouteCriteria, ScoredRoute } from './router-types.ts'
import { InvalidTaskRequestError, NoEligibleAgentError, OrchestratorError } from '../errors.ts'
import { agent, catalogOf, peer } from '../test-fixtures.ts'
import type { AgentCandidate, PeerSnapshot } from '../components.ts'

const CAP = 'text-summarization'
const prefs = (p: RoutingPreferences = {}) => resolvePreferences(p, (m) => new InvalidTaskRequestError(m))

function routerOver(agents: AgentCandidate[], peers: PeerSnapshot[], rep: Record<string, number> = {}, k?: number): Router {
  return createRouter(
    { catalog: catalogOf(agents), peers: { peers: () => peers }, reputation: { agentReputation: (id) => rep[id] } },
    k === undefined ? {} : { maxAlternatives: k }
  )
}
const pick = (agents: AgentCandidate[], p: RoutingPreferences, opts: { peers?: PeerSnapshot[]; rep?: Record<string, number>; k?: number } = {}) =>
  routerOver(agents, opts.peers ?? [peer('p-only')], opts.rep, opts.k).route([CAP], prefs(p))
const pairs = (rs: ScoredRoute[]) => rs.map((r) => `${r.agent.name}@${r.peer.id}`)
const all = (d: { winner: ScoredRoute; alternatives: ScoredRoute[] }) => [d.winner, ...d.alternatives]

/** Balanced with every weight 0 but the one under test. */
const only = (w: Partial<Record<'cost_weight' | 'quality_weight' | 'speed_weight' | 'region_weight' | 'reputation_weight', number>>): RoutingPreferences => ({
  strategy: 'balanced',
  cost_weight: 0,
  quality_weight: 0,
  speed_weight: 0,
  region_weight: 0,
  reputation_weight: 0,
  ...w
})

describe.each([1, 8])('agent terms decide the agent (maxAlternatives %i)', (k) => {
  const a = (name: string, price: number, quality: number, caps = [CAP]) => agent(name, caps, price, { quality })

  it('cost: the cheaper agent wins, and not because of list order', () => {
    const agents = [a('pricey', 0.9, 0.5), a('mid', 0.5, 0.5), a('cheap', 0.1, 0.5)]
    expect(pick(agents, only({ cost_weight: 1 }), { k }).winner.agent.name).toBe('cheap')
  })

  it('quality: the better agent wins', () => {
    const agents = [a('poor', 0.1, 0.2), a('good', 0.1, 0.9)]
    expect(pick(agents, only({ quality_weight: 1 }), { k }).winner.agent.name).toBe('good')
  })

  it('quality: an agent with no stated quality counts 0.5', () => {
    const unknown = agent('unknown', [CAP], 0.1)
    expect(pick([a('low', 0.1, 0.4), unknown], only({ quality_weight: 1 }), { k }).winner.agent.name).toBe('unknown')
    expect(pick([unknown, a('high', 0.1, 0.6)], only({ quality_weight: 1 }), { k }).winner.agent.name).toBe('high')
  })

  it('reputation: the better reputed agent wins', () => {
    const agents = [a('doubtful', 0.1, 0.5), a('trusted', 0.1, 0.5)]
    const rep = { [agents[0].id]: 1.5, [agents[1].id]: 4.5 }
    expect(pick(agents, only({ reputation_weight: 1 }), { k, rep }).winner.agent.name).toBe('trusted')
  })

  it('reputation: an agent with no reputation counts its prior mean x 5 (4.5 vouched for, 1.25 from a new author), not zero', () => {
    const agents = [a('known-low', 0.1, 0.5), a('unknown', 0.1, 0.5)]
    expect(pick(agents, only({ reputation_weight: 1 }), { k, rep: { [agents[0].id]: 4.4 } }).winner.agent.name).toBe('unknown')
    const agents2 = [a('unknown', 0.1, 0.5), a('known-high', 0.1, 0.5)]
    expect(pick(agents2, only({ reputation_weight: 1 }), { k, rep: { [agents2[1].id]: 4.6 } }).winner.agent.name).toBe('known-high')
    const d = pick(agents2, only({ reputation_weight: 1 }), { k })
    expect(all(d).map((r) => r.reputation)).toEqual(all(d).map(() => 4.5))
  })

  it('prefer_specialists: the narrower agent wins, and only when asked', () => {
    const agents = [a('broad', 0.1, 0.5, [CAP, 'hashing', 'keyword-extraction']), a('narrow', 0.1, 0.5)]
    expect(pick(agents, { ...only({}), prefer_specialists: true }, { k }).winner.agent.name).toBe('narrow')
    expect(pick(agents, { ...only({}), prefer_specialists: false }, { k }).winner.agent.name).toBe('broad')
  })

  it('specialist strategy: fewest capabilities wins over price, quality and reputation', () => {
    const agents = [a('broad', 0.1, 1, [CAP, 'hashing']), a('narrow', 0.9, 0.1)]
    expect(pick(agents, { strategy: 'specialist' }, { k, rep: { [agents[0].id]: 5 } }).winner.agent.name).toBe('narrow')
  })

  it('generalist strategy: most capabilities wins over price, quality and reputation', () => {
    const agents = [a('narrow', 0.1, 1), a('mid', 0.5, 0.5, [CAP, 'hashing']), a('broad', 0.9, 0.1, [CAP, 'hashing', 'keyword-extraction'])]
    expect(pick(agents, { strategy: 'generalist' }, { k, rep: { [agents[0].id]: 5 } }).winner.agent.name).toBe('broad')
  })

  it('cost strategy: price wins over quality and reputation together', () => {
    // Without the cost weight the tie-breakers (quality + reputation) would pick "premium".
    const agents = [a('premium', 0.9, 1), a('budget', 0.1, 0.5)]
    expect(pick(agents, { strategy: 'cost' }, { k, rep: { [agents[0].id]: 5, [agents[1].id]: 0 } }).winner.agent.name).toBe('budget')
  })

  it('quality strategy: quality wins over price and reputation together', () => {
    const agents = [a('cheap', 0.1, 0.5), a('best', 0.9, 1)]
    expect(pick(agents, { strategy: 'quality' }, { k, rep: { [agents[0].id]: 5, [agents[1].id]: 0 } }).winner.agent.name).toBe('best')
  })

  it.each(['cost', 'quality', 'specialist', 'generalist', 'geographic', 'load-balanced', 'speed'] as const)(
    '%s strategy: ties go to the cheaper, then better, then better reputed agent',
    (strategy) => {
      const cheaper = [a('dear', 0.5, 0.5), a('cheaper', 0.4, 0.5)]
      expect(pick(cheaper, { strategy }, { k }).winner.agent.name).toBe('cheaper')
      const better = [a('plain', 0.5, 0.5), a('better', 0.5, 0.6)]
      expect(pick(better, { strategy }, { k }).winner.agent.name).toBe('better')
      const reputed = [a('plain', 0.5, 0.5), a('reputed', 0.5, 0.5)]
      expect(pick(reputed, { strategy }, { k, rep: { [reputed[0].id]: 3, [reputed[1].id]: 4 } }).winner.agent.name).toBe('reputed')
    }
  )
})

describe('peer terms decide the peer', () => {
  const one = [agent('solo', [CAP], 0.1)]

  it('speed: the peer with the lowest round trip wins', () => {
    const peers = [peer('a-slow', { rttMs: 90 }), peer('b-fast', { rttMs: 10 })]
    expect(pick(one, only({ speed_weight: 1 }), { peers }).winner.peer.id).toBe('b-fast')
  })

  it('speed: criterion is 1 - rtt / slowest rtt, an unknown round trip counts 0.5, all-zero round trips count 1', () => {
    const peers = [peer('a', { rttMs: 100 }), peer('b', { rttMs: 25 }), peer('c', { rttMs: undefined })]
    const d = pick(one, only({ speed_weight: 1 }), { peers })
    const speed = Object.fromEntries(all(d).map((r) => [r.peer.id, r.criteria.speed]))
    expect(speed).toEqual({ a: 0, b: 0.75, c: 0.5 })
    expect(d.winner.peer.id).toBe('b')
    expect(pick(one, only({ speed_weight: 1 }), { peers: [peer('z', { rttMs: 0 })] }).winner.criteria.speed).toBe(1)
    // An unknown round trip (0.5) beats a known slow one (0) and loses to a known fast one (0.75).
    const mixed = [peer('a-slow', { rttMs: 80 }), peer('b-unknown', { rttMs: undefined }), peer('c-fast', { rttMs: 20 })]
    expect(pairs(all(pick(one, only({ speed_weight: 1 }), { peers: mixed })))).toEqual(['solo@c-fast', 'solo@b-unknown', 'solo@a-slow'])
  })

  it('region: a peer in a preferred region wins; one without a region or elsewhere does not', () => {
    const peers = [peer('a-none'), peer('b-elsewhere', { region: 'us-east' }), peer('c-home', { region: 'eu-west' })]
    const d = pick(one, { ...only({ region_weight: 1 }), preferred_regions: ['ap-south', 'eu-west'] }, { peers })
    expect(d.winner.peer.id).toBe('c-home')
    expect(Object.fromEntries(all(d).map((r) => [r.peer.id, r.criteria.region]))).toEqual({ 'a-none': 0, 'b-elsewhere': 0, 'c-home': 1 })
    // No preferred regions: nobody scores the region.
    expect(pick(one, only({ region_weight: 1 }), { peers }).winner.criteria.region).toBe(0)
  })

  it('load: the peer with the most free workers wins; criterion is free / most free', () => {
    const peers = [peer('a-busy', { freeWorkers: 1 }), peer('b-idle', { freeWorkers: 4 }), peer('c-half', { freeWorkers: 2 })]
    const d = pick(one, { strategy: 'load-balanced' }, { peers })
    expect(pairs(all(d))).toEqual(['solo@b-idle', 'solo@c-half', 'solo@a-busy'])
    expect(Object.fromEntries(all(d).map((r) => [r.peer.id, r.criteria.load]))).toEqual({ 'a-busy': 0.25, 'b-idle': 1, 'c-half': 0.5 })
  })

  it('speed strategy: a faster peer beats a cheaper agent (another agent on the fast peer comes before the same agent on the slow one)', () => {
    const agents = [agent('dear', [CAP], 0.9), agent('cheap', [CAP], 0.1)]
    const peers = [peer('a-slow', { rttMs: 100 }), peer('b-fast', { rttMs: 10 })]
    expect(pairs(all(pick(agents, { strategy: 'speed' }, { peers })))).toEqual(['cheap@b-fast', 'dear@b-fast', 'cheap@a-slow', 'dear@a-slow'])
  })

  it('speed as a tie-breaker ranks below the agent tie-breakers', () => {
    // cost strategy, equal prices: the quality tie (0.001 x 0.5) outweighs the speed tie (0.0001 x 1).
    const agents = [agent('plain', [CAP], 0.5, { quality: 0.4 }), agent('better', [CAP], 0.5, { quality: 0.9 })]
    const peers = [peer('a-slow', { rttMs: 100 }), peer('b-fast', { rttMs: 10 })]
    expect(pairs(all(pick(agents, { strategy: 'cost' }, { peers })))).toEqual(['better@b-fast', 'better@a-slow', 'plain@b-fast', 'plain@a-slow'])
  })

  it('geographic strategy: region first, then speed with half its weight, both above the agent tie-breakers', () => {
    const agents = [agent('dear', [CAP], 0.9), agent('cheap', [CAP], 0.1)]
    const peers = [
      peer('a-fast-away', { rttMs: 5, region: 'us-east' }),
      peer('b-slow-home', { rttMs: 100, region: 'eu-west' }),
      peer('c-mid-home', { rttMs: 50, region: 'eu-west' })
    ]
    const d = pick(agents, { strategy: 'geographic', preferred_regions: ['eu-west'] }, { peers })
    expect(pairs(all(d))).toEqual(['cheap@c-mid-home', 'dear@c-mid-home', 'cheap@b-slow-home', 'dear@b-slow-home', 'cheap@a-fast-away', 'dear@a-fast-away'])
    // Region 1 + speed 0.5 x 0.5 + tie-breakers (cost 1, quality 0.5, reputation 0.9 = the prior mean; speed 0.5 x 0.0001).
    expect(d.winner.score).toBeCloseTo(1 + 0.5 * 0.5 + 0.001 * (1 + 0.5 + 0.9) + 0.0001 * 0.5, 9)
  })

  it('load-balanced strategy: free workers beat a cheaper agent', () => {
    const agents = [agent('dear', [CAP], 0.9), agent('cheap', [CAP], 0.1)]
    const peers = [peer('a-busy', { freeWorkers: 1, rttMs: 1 }), peer('b-idle', { freeWorkers: 8, rttMs: 100 })]
    expect(pairs(all(pick(agents, { strategy: 'load-balanced' }, { peers })))).toEqual(['cheap@b-idle', 'dear@b-idle', 'cheap@a-busy', 'dear@a-busy'])
  })

  it('balanced: speed and region weights move the peer', () => {
    const peers = [peer('a-far-home', { rttMs: 100, region: 'eu-west' }), peer('b-near-away', { rttMs: 10, region: 'us-east' })]
    const p = { preferred_regions: ['eu-west'] }
    expect(pick(one, { ...only({ speed_weight: 1, region_weight: 0.5 }), ...p }, { peers }).winner.peer.id).toBe('b-near-away')
    expect(pick(one, { ...only({ speed_weight: 0.5, region_weight: 1 }), ...p }, { peers }).winner.peer.id).toBe('a-far-home')
  })
})

describe('scores are the documented weighted sums', () => {
  const agents = [
    agent('a-broad', [CAP, 'hashing', 'keyword-extraction', 'sentiment-analysis'], 0.2, { quality: 0.7 }),
    agent('b-mid', [CAP, 'hashing'], 0.6, { quality: 0.9 }),
    agent('c-narrow', [CAP], 1, { quality: 0.3 })
  ]
  const rep = { [agents[0].id]: 4, [agents[1].id]: 1 }
  const peers = [peer('p1', { rttMs: 40, region: 'eu-west', freeWorkers: 1 }), peer('p2', { rttMs: 10, freeWorkers: 4 })]
  type W = Record<keyof RouteCriteria | 'gen', number>
  const zero: W = { cost: 0, quality: 0, speed: 0, region: 0, reputation: 0, load: 0, specialization: 0, gen: 0 }
  const tie = { cost: 0.001, quality: 0.001, reputation: 0.001, speed: 0.0001 }
  const expected: Record<Exclude<(typeof STRATEGIES)[number], 'round-robin' | 'custom'>, W> = {
    cost: { ...zero, ...tie, cost: 1.001 },
    quality: { ...zero, ...tie, quality: 1.001 },
    speed: { ...zero, ...tie, speed: 1.0001 },
    specialist: { ...zero, ...tie, specialization: 1 },
    generalist: { ...zero, ...tie, gen: 1 },
    geographic: { ...zero, ...tie, region: 1, speed: 0.5001 },
    'load-balanced': { ...zero, ...tie, load: 1 },
    balanced: { ...zero, ...DEFAULT_WEIGHTS }
  }
  const sum = (w: W, c: RouteCriteria) =>
    w.cost * c.cost +
    w.quality * c.quality +
    w.speed * c.speed +
    w.region * c.region +
    w.reputation * c.reputation +
    w.load * c.load +
    w.specialization * c.specialization +
    w.gen * (1 - c.specialization)

  it('every pair carries its criteria', () => {
    const d = pick(agents, { preferred_regions: ['eu-west'] }, { peers, rep })
    const byPair = Object.fromEntries(all(d).map((r) => [`${r.agent.name}@${r.peer.id}`, r.criteria]))
    expect(byPair['a-broad@p1']).toEqual({ cost: 1, quality: 0.7, speed: 0, region: 1, reputation: 0.8, load: 0.25, specialization: 0.25 })
    expect(byPair['b-mid@p2']).toEqual({ cost: 0.5, quality: 0.9, speed: 0.75, region: 0, reputation: 0.2, load: 1, specialization: 0.5 })
    // c-narrow has no reputation: its prior mean (0.9, vouched for by the catalog) counts.
    expect(byPair['c-narrow@p2']).toEqual({ cost: 0, quality: 0.3, speed: 0.75, region: 0, reputation: 0.9, load: 1, specialization: 1 })
    expect(all(d).map((r) => r.reputation)).toEqual(all(d).map((r) => rep[r.agent.id] ?? 4.5))
  })

  it.each(Object.keys(expected) as Array<keyof typeof expected>)('%s: score = its weights x criteria, pairs sorted by it', (strategy) => {
    const d = pick(agents, { strategy, preferred_regions: ['eu-west'] }, { peers, rep })
    expect(all(d)).toHaveLength(6)
    for (const r of all(d)) expect(r.score).toBeCloseTo(sum(expected[strategy], r.criteria), 12)
    const scores = all(d).map((r) => r.score)
    expect(scores).toEqual([...scores].sort((x, y) => y - x))
  })

  it('balanced: given weights replace the defaults, and prefer_specialists adds 0.2 x specialization', () => {
    const w = { cost_weight: 0.1, quality_weight: 0.2, speed_weight: 0.3, region_weight: 0.4, reputation_weight: 0.5 }
    const d = pick(agents, { ...w, preferred_regions: ['eu-west'], prefer_specialists: true }, { peers, rep })
    const weights: W = { ...zero, cost: 0.1, quality: 0.2, speed: 0.3, region: 0.4, reputation: 0.5, specialization: 0.2 }
    for (const r of all(d)) expect(r.score).toBeCloseTo(sum(weights, r.criteria), 12)
  })

  it('balanced defaults are cost, quality and reputation 0.25, speed 0.2, region 0.05', () => {
    expect(DEFAULT_WEIGHTS).toEqual({ cost: 0.25, quality: 0.25, speed: 0.2, region: 0.05, reputation: 0.25 })
  })

  it('cost is 1 when every eligible agent costs the same', () => {
    const same = [agent('x', [CAP], 0.3), agent('y', [CAP], 0.3)]
    expect(all(pick(same, { strategy: 'cost' })).map((r) => r.criteria.cost)).toEqual([1, 1])
  })
})

describe('hard constraints', () => {
  const agents = [agent('a', [CAP], 0.1, { quality: 0.5 }), agent('b', [CAP], 0.3, { quality: 0.7 }), agent('c', [CAP], 0.5, { quality: 0.9 })]
  const rep = { [agents[0].id]: 4, [agents[1].id]: 3 }
  const names = (d: { winner: ScoredRoute; alternatives: ScoredRoute[] }) => [...new Set(all(d).map((r) => r.agent.name))].sort()

  it('max_cost: an agent priced at the budget is eligible, above it is not', () => {
    const d = pick(agents, { strategy: 'quality', max_cost: 0.3 })
    expect(d.winner.agent.name).toBe('b')
    expect(names(d)).toEqual(['a', 'b'])
    expect(d.eligible).toBe(2)
    expect(d.considered).toBe(3)
  })

  it("a per-call budget overrides max_cost (the task's remaining money)", () => {
    const r = routerOver(agents, [peer('p')])
    expect(r.route([CAP], prefs({ strategy: 'quality', max_cost: 1 }), { budget: 0.1 }).winner.agent.name).toBe('a')
    expect(r.route([CAP], prefs({ strategy: 'quality', max_cost: 0.1 }), { budget: 1 }).winner.agent.name).toBe('c')
  })

  it('min_quality: at the bound is eligible, below is not, unknown counts 0.5', () => {
    const d = pick(agents, { strategy: 'cost', min_quality: 0.7 })
    expect(d.winner.agent.name).toBe('b')
    expect(names(d)).toEqual(['b', 'c'])
    expect(pick([agent('unknown', [CAP], 0.1), ...agents], { strategy: 'cost', min_quality: 0.5 }).eligible).toBe(4)
    expect(pick([agent('unknown', [CAP], 0.1), ...agents], { strategy: 'cost', min_quality: 0.51 }).eligible).toBe(2)
  })

  it('min_reputation: at the bound is eligible, below is not, unknown counts its prior mean (not zero)', () => {
    // c has no reputation: vouched for (bundled prior Beta(9, 1)), it counts 4.5.
    const d = pick(agents, { strategy: 'quality', min_reputation: 3 }, { rep })
    expect(d.winner.agent.name).toBe('c')
    expect(names(d)).toEqual(['a', 'b', 'c'])
    expect(pick(agents, { strategy: 'quality', min_reputation: 3.5 }, { rep }).eligible).toBe(2)
    expect(pick(agents, { strategy: 'quality', min_reputation: 4.5 }, { rep }).eligible).toBe(1)
    // A new author's agent counts its prior mean 0.25 x 5 = 1.25: eligible at 1.25, not above.
    const fresh = [agent('fresh', [CAP], 0.1, { bundled: false, holders: ['p-only'] })]
    expect(pick(fresh, { min_reputation: 1.25 }).eligible).toBe(1)
    expect(() => pick(fresh, { min_reputation: 1.3 })).toThrow(/1 below min_reputation 1.3/)
  })

  it('max_latency: a peer at the bound is eligible, a slower or unknown one is not', () => {
    const peers = [peer('a-at', { rttMs: 50 }), peer('b-over', { rttMs: 51 }), peer('c-unknown', { rttMs: undefined })]
    const d = pick(agents, { strategy: 'load-balanced', max_latency: 50 }, { peers })
    expect([...new Set(all(d).map((r) => r.peer.id))]).toEqual(['a-at'])
    expect(() => pick(agents, { max_latency: 49 }, { peers })).toThrow(NoEligiblePeerError)
  })

  it('full and non-donating peers are skipped', () => {
    const peers = [peer('a-full', { freeWorkers: 0 }), peer('b-off', { donating: false }), peer('c-ok')]
    expect([...new Set(all(pick(agents, {}, { peers })).map((r) => r.peer.id))]).toEqual(['c-ok'])
    expect(() => pick(agents, {}, { peers: peers.slice(0, 2) })).toThrow(NoEligiblePeerError)
  })

  it('excluded agents, excluded peers and onlyAgents filter', () => {
    const r = routerOver(agents, [peer('p1'), peer('p2')])
    const d = r.route([CAP], prefs({ strategy: 'cost' }), { excludeAgents: new Set([agents[0].id]), excludePeers: new Set(['p1']) })
    expect(names(d)).toEqual(['b', 'c'])
    expect(all(d).every((x) => x.peer.id === 'p2')).toBe(true)
    const named = r.route([CAP], prefs({ strategy: 'cost' }), { onlyAgents: new Set([agents[2].id]) })
    expect(names(named)).toEqual(['c'])
    expect(named.eligible).toBe(1)
    expect(() => r.route([CAP], prefs(), { onlyAgents: new Set(['nope']) })).toThrow(/the named agent is not among them/)
    expect(() => r.route([CAP], prefs(), { excludeAgents: new Set(agents.map((a) => a.id)) })).toThrow(/3 already failed/)
  })

  it('the error counts each reason', () => {
    const ex = (p: RoutingPreferences) => {
      try {
        pick(agents, p, { rep })
      } catch (e) {
        expect(e).toBeInstanceOf(NoEligibleAgentError)
        return (e as Error).message
      }
      throw new Error('routed')
    }
    expect(ex({ max_cost: 0.2, min_quality: 0.95 })).toBe(
      'No agent for text-summarization meets the constraints (2 over the 0.2 credit budget, 1 below min_quality 0.95): relax the preferences'
    )
    expect(ex({ min_reputation: 4.6 })).toBe('No agent for text-summarization meets the constraints (3 below min_reputation 4.6): relax the preferences')
  })

  it('constraints hold for the alternatives, fallback chain and round-robin too', () => {
    const cheapOnly = { max_cost: 0.3, min_quality: 0.6, min_reputation: 3 }
    expect(names(pick(agents, { strategy: 'cost', ...cheapOnly }, { rep }))).toEqual(['b'])
    expect(names(pick(agents, { strategy: 'cost', ...cheapOnly, fallback_chain: ['a', 'c'] }, { rep }))).toEqual(['b'])
    const rr = routerOver(agents, [peer('p')], rep)
    const seen = Array.from({ length: 3 }, () => rr.route([CAP], prefs({ strategy: 'round-robin', ...cheapOnly })).winner.agent.name)
    expect(seen).toEqual(['b', 'b', 'b'])
  })

  it('multi-capability steps: only agents with every capability; the rarest capability is scanned', () => {
    const ks = agent('keywords', ['keyword-extraction'], 0.01)
    const both = agent('both', [CAP, 'keyword-extraction'], 0.9)
    const r = routerOver([...agents, ks, both], [peer('p')])
    const d = r.route([CAP, 'keyword-extraction'], prefs({ strategy: 'cost' }))
    expect(names(d)).toEqual(['both'])
    expect(d.considered).toBe(2) // keyword-extraction has 2 agents, text-summarization 4
    expect(r.route(['keyword-extraction', CAP], prefs({ strategy: 'cost' })).considered).toBe(2)
  })

  it('a step with no capability and a capability nobody offers are NoEligibleAgentError', () => {
    const r = routerOver(agents, [peer('p')])
    expect(() => r.route([], prefs())).toThrow(NoEligibleAgentError)
    expect(() => r.route([], prefs())).toThrow('A step names no capability: give it at least one')
    expect(() => r.route(['nothing'], prefs())).toThrow(NoEligibleAgentError)
  })
})

describe('survivors of the mutation run', () => {
  it('the scan normalises cost by the price span before mixing it with quality (maxAlternatives 1)', () => {
    const agents = [agent('dear', [CAP], 0.2, { quality: 0.9 }), agent('cheap', [CAP], 0.1, { quality: 0.5 })]
    expect(pick(agents, only({ cost_weight: 1, quality_weight: 1 }), { k: 1 }).winner.agent.name).toBe('cheap')
  })

  it('the top-k scan keeps the k best, not the first ones that fit', () => {
    // Cost order of arrival: 2nd best, worst, best, 3rd best; with k = 2 the best two must survive.
    const agents = [agent('second', [CAP], 0.2), agent('worst', [CAP], 0.9), agent('best', [CAP], 0.1), agent('third', [CAP], 0.3)]
    const d = pick(agents, { strategy: 'cost' }, { k: 2 })
    expect(all(d).map((r) => r.agent.name)).toEqual(['best', 'second'])
    const d3 = pick(agents, { strategy: 'cost' }, { k: 3 })
    expect(all(d3).map((r) => r.agent.name)).toEqual(['best', 'second', 'third'])
  })

  it('capabilities offered only by different agents: "no agent offers" them together', () => {
    const r = routerOver([agent('s', [CAP], 0.1), agent('h', ['hashing'], 0.1)], [peer('p')])
    expect(() => r.route([CAP, 'hashing'], prefs())).toThrow('No agent offers text-summarization + hashing: publish one or remove the step')
    expect(() => r.route([CAP, 'hashing'], prefs(), { onlyAgents: new Set(['x']) })).toThrow(/\(the named agent is not among them\)/)
  })
})

describe('fallback_chain', () => {
  const agents = [agent('a', [CAP], 0.1), agent('b', [CAP], 0.2), agent('c', [CAP], 0.3), agent('d', [CAP], 0.4)]
  const peers = [peer('p1', { rttMs: 50 }), peer('p2', { rttMs: 10 })]

  it('puts the chain, by name or id, in its order, right after the winner, on the best peer', () => {
    const d = pick(agents, { strategy: 'cost', fallback_chain: ['d', agents[2].id] }, { peers })
    expect(d.winner.agent.name).toBe('a')
    expect(pairs(d.alternatives.slice(0, 2))).toEqual(['d@p2', 'c@p2'])
    // The rest keep their order, without repeating a chained pair.
    const rest = pairs(d.alternatives.slice(2))
    expect(rest).not.toContain('d@p2')
    expect(rest).not.toContain('c@p2')
    expect(rest).toContain('c@p1')
    expect(new Set(pairs(d.alternatives)).size).toBe(d.alternatives.length)
  })

  it('skips the winner, ineligible and unknown names, and repeats', () => {
    const d = pick(agents, { strategy: 'cost', max_cost: 0.3, fallback_chain: ['a', 'd', 'nobody', 'c', 'c'] }, { peers })
    expect(d.winner.agent.name).toBe('a')
    expect(pairs(d.alternatives.slice(0, 2))).toEqual(['c@p2', 'a@p1'])
    expect(d.alternatives.filter((r) => r.agent.name === 'c' && r.peer.id === 'p2')).toHaveLength(1)
  })

  it('without a chain the alternatives are by score', () => {
    const d = pick(agents, { strategy: 'cost' }, { peers })
    const scores = d.alternatives.map((r) => r.score)
    expect(scores).toEqual([...scores].sort((x, y) => y - x))
    expect(pairs(d.alternatives.slice(0, 2))).toEqual(['a@p1', 'b@p2'])
  })
})

describe('round-robin', () => {
  const agents = [agent('a', [CAP], 0.1), agent('b', [CAP], 0.2), agent('c', [CAP], 0.3)]

  it('each call moves to the next eligible agent and the next peer, alternatives following in order', () => {
    const r = routerOver(agents, [peer('p1', { rttMs: 5 }), peer('p2', { rttMs: 9 })])
    const p = prefs({ strategy: 'round-robin' })
    const seen = Array.from({ length: 4 }, () => {
      const d = r.route([CAP], p)
      return `${pairs(all(d)).join(' ')} | ${d.reasoning.replace(/.*\(turn/, 'turn')}`
    })
    expect(seen).toEqual([
      'a@p1 b@p1 c@p1 | turn 1 of 3 eligible agents)',
      'b@p2 c@p2 | turn 2 of 3 eligible agents)',
      'c@p1 | turn 3 of 3 eligible agents)',
      'a@p2 b@p2 c@p2 | turn 1 of 3 eligible agents)'
    ])
  })

  it('keeps a turn per capability set', () => {
    const r = routerOver([...agents, agent('h', ['hashing'], 0.1), agent('i', ['hashing'], 0.1)], [peer('p')])
    const p = prefs({ strategy: 'round-robin' })
    expect(r.route([CAP], p).winner.agent.name).toBe('a')
    expect(r.route(['hashing'], p).winner.agent.name).toBe('h')
    expect(r.route([CAP], p).winner.agent.name).toBe('b')
    expect(r.route(['hashing'], p).winner.agent.name).toBe('i')
  })

  it('skips ineligible agents', () => {
    const r = routerOver(agents, [peer('p')])
    const p = prefs({ strategy: 'round-robin', max_cost: 0.2 })
    expect(Array.from({ length: 3 }, () => r.route([CAP], p).winner.agent.name)).toEqual(['a', 'b', 'a'])
  })
})

describe('custom_score', () => {
  const agents = [agent('a', [CAP], 0.1, { quality: 0.9 }), agent('b', [CAP], 0.5, { quality: 0.2 })]
  const peers = [peer('p1', { rttMs: 10, region: 'eu' }), peer('p2', { rttMs: 40 })]

  it('the highest value wins, pairs sorted by it, and the function sees the candidate and its criteria', () => {
    const seen: string[] = []
    const d = pick(
      agents,
      {
        strategy: 'custom',
        preferred_regions: ['eu'],
        custom_score: (c, k) => {
          seen.push(`${c.agent.name}@${c.peer.id}:${k.cost}/${k.region}/${c.reputation}`)
          return (1 - k.quality) * 10 + k.speed
        }
      },
      { peers, rep: { [agents[1].id]: 2 } }
    )
    expect(seen.sort()).toEqual(['a@p1:1/1/4.5', 'a@p2:1/0/4.5', 'b@p1:0/1/2', 'b@p2:0/0/2'])
    expect(pairs(all(d))).toEqual(['b@p1', 'b@p2', 'a@p1', 'a@p2'])
    expect(d.winner.score).toBeCloseTo(8 + 0.75, 12)
  })

  it('pairs scored NaN, Infinity or by a throw are left out; none left is NoEligibleAgentError', () => {
    const d = pick(
      agents,
      { strategy: 'custom', custom_score: (c, k) => (c.peer.id === 'p2' ? Number.NaN : c.agent.name === 'a' ? Infinity : k.speed) },
      { peers }
    )
    expect(pairs(all(d))).toEqual(['b@p1'])
    const thrower = () => {
      throw new Error('x')
    }
    expect(() => pick(agents, { strategy: 'custom', custom_score: (c) => (c.agent.name === 'a' ? thrower() : 1) }, { peers }).winner.agent.name).not.toThrow()
    expect(() => pick(agents, { strategy: 'custom', custom_score: () => -Infinity }, { peers })).toThrow(/gave no finite score/)
  })

  it('only eligible pairs are scored, and at most maxAlternatives pairs are kept', () => {
    const scored: string[] = []
    const d = routerOver(agents, peers, {}, 2).route(
      [CAP],
      prefs({
        strategy: 'custom',
        max_cost: 0.2,
        custom_score: (c) => {
          scored.push(c.agent.name)
          return c.peer.id === 'p2' ? 1 : 0
        }
      })
    )
    expect(new Set(scored)).toEqual(new Set(['a']))
    expect(pairs(all(d))).toEqual(['a@p2', 'a@p1'])
    expect(
      routerOver([...agents, agent('c', [CAP], 0.3)], peers, {}, 2).route([CAP], prefs({ strategy: 'custom', custom_score: () => 1 })).alternatives
    ).toHaveLength(1)
  })

  it('the router refuses the custom strategy without a function', () => {
    const r = routerOver(agents, peers)
    expect(() => r.route([CAP], { ...prefs(), strategy: 'custom' })).toThrow(OrchestratorError)
    expect(() => r.route([CAP], { ...prefs(), strategy: 'custom' })).toThrow('The custom strategy needs a custom_score function')
  })
})

describe('alternatives and the catalog index', () => {
  it('keeps at most maxAlternatives pairs (1..8), best first', () => {
    const agents = Array.from({ length: 12 }, (_, i) => agent(`x${String(i).padStart(2, '0')}`, [CAP], i / 10))
    const peers = [peer('p1'), peer('p2'), peer('p3')]
    expect(all(pick(agents, { strategy: 'cost' }, { peers, k: 3 }))).toHaveLength(3)
    expect(all(pick(agents, { strategy: 'cost' }, { peers, k: 0 }))).toHaveLength(1)
    expect(all(pick(agents, { strategy: 'cost' }, { peers, k: 50 }))).toHaveLength(8)
    expect(all(pick(agents, { strategy: 'cost' }, { peers }))).toHaveLength(8)
    // k agents x min(k, peers) peers are ranked: the 3 cheapest agents each on the 3 peers come first.
    expect(
      all(pick(agents, { strategy: 'cost' }, { peers, k: 3 }))
        .map((r) => r.agent.name)
        .sort()
    ).toEqual(['x00', 'x00', 'x00'])
  })

  it('re-reads the catalog when its version changes, and every time when it has none', () => {
    const agents = [agent('old', [CAP], 0.1)]
    const cat = catalogOf(agents)
    const r = createRouter({ catalog: cat, peers: { peers: () => [peer('p')] } })
    expect(r.route([CAP], prefs({ strategy: 'cost' })).winner.agent.name).toBe('old')
    agents.push(agent('new', [CAP], 0.01))
    expect(r.route([CAP], prefs({ strategy: 'cost' })).winner.agent.name).toBe('new')
    let list = [agent('first', [CAP], 0.1)]
    const unversioned = createRouter({ catalog: { list: () => list }, peers: { peers: () => [peer('p')] } })
    expect(unversioned.route([CAP], prefs()).winner.agent.name).toBe('first')
    list = [agent('second', [CAP], 0.1)]
    expect(unversioned.route([CAP], prefs()).winner.agent.name).toBe('second')
  })

  it('a stable version keeps the index (the catalog is not listed again)', () => {
    let lists = 0
    const agents = [agent('a', [CAP], 0.1)]
    const r = createRouter({
      catalog: {
        list: () => {
          lists++
          return agents
        },
        version: () => 7
      },
      peers: { peers: () => [peer('p')] }
    })
    for (let i = 0; i < 3; i++) r.route([CAP], prefs())
    expect(lists).toBe(1)
  })

  it('routes over the given peers instead of the directory', () => {
    const r = routerOver([agent('a', [CAP], 0.1)], [peer('dir')])
    expect(r.route([CAP], prefs(), { peers: [peer('given')] }).winner.peer.id).toBe('given')
  })
})

describe('preferences', () => {
  it('the ten strategies', () => {
    expect([...STRATEGIES]).toEqual([
      'cost',
      'quality',
      'speed',
      'balanced',
      'specialist',
      'generalist',
      'geographic',
      'load-balanced',
      'round-robin',
      'custom'
    ])
  })

  it('defaults: balanced, retry 3 attempts from 100 ms doubling', () => {
    expect(prefs()).toEqual({ strategy: 'balanced', retry_policy: { max_attempts: 3, backoff_ms: 100, backoff_multiplier: 2 } })
    expect(prefs({ retry_policy: { max_attempts: 5 } }).retry_policy).toEqual({ max_attempts: 5, backoff_ms: 100, backoff_multiplier: 2 })
  })

  it.each<[RoutingPreferences, RegExp]>([
    [{ strategy: 'fastest' as never }, /strategy/],
    [{ cost_weight: 1.5 }, /cost_weight/],
    [{ quality_weight: -0.1 }, /quality_weight/],
    [{ speed_weight: Number.NaN }, /speed_weight/],
    [{ max_cost: -1 }, /max_cost/],
    [{ max_cost: Infinity }, /max_cost/],
    [{ min_quality: 1.1 }, /min_quality/],
    [{ min_reputation: 6 }, /min_reputation/],
    [{ max_latency: -5 }, /max_latency/],
    [{ preferred_regions: Array(33).fill('x') }, /preferred_regions/],
    [{ fallback_chain: Array(17).fill('x') }, /fallback_chain/],
    [{ retry_policy: { max_attempts: 0 } }, /retry_policy\.max_attempts/],
    [{ retry_policy: { max_attempts: 21 } }, /retry_policy\.max_attempts/],
    [{ retry_policy: { max_attempts: 1.5 } }, /retry_policy\.max_attempts/],
    [{ retry_policy: { backoff_ms: -1 } }, /retry_policy\.backoff_ms/],
    [{ retry_policy: { backoff_multiplier: 0.5 } }, /retry_policy\.backoff_multiplier/]
  ])('rejects %j', (p, path) => {
    expect(() => prefs(p)).toThrow(InvalidTaskRequestError)
    expect(() => prefs(p)).toThrow(path)
    expect(() => prefs(p)).toThrow(/^The routing preferences are not valid: /)
  })

  it('keeps custom_score as given and asks for one with the custom strategy', () => {
    const fn = () => 1
    expect(prefs({ strategy: 'custom', custom_score: fn }).custom_score).toBe(fn)
    expect('custom_score' in prefs({})).toBe(false)
    expect(() => prefs({ strategy: 'custom' })).toThrow(InvalidTaskRequestError)
    expect(() => prefs({ strategy: 'custom', custom_score: 1 as never })).toThrow(/needs preferences.custom_score, a function/)
  })
})
