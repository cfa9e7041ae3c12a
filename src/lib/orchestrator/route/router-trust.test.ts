/**
 * The router reads trust (issue 12 "The router uses it"): each test fails when the input it names
 * (userScore, agentQuality, agentRunMs, agentOutcomes) is ignored, or when unknown counts as zero.
 * Same conventions as router-weights.test.ts: the expected winner is listed last, on the peer whose
 * id sorts last, so a term that stops counting hands the win to the wrong candidate.
 */
import { describe, expect, it } from 'vitest'
import { createRouter } from './router.ts'
import { resolvePreferences, type RoutingPreferences } from './preferences.ts'
import { InvalidTaskRequestError, NoEligibleAgentError } from '../errors.ts'
import { agent, catalogOf, peer } from '../test-fixtures.ts'
import type { AgentCandidate, PeerSnapshot, RoutingTrust } from '../components.ts'

const CAP = 'text-summarization'
const prefs = (p: RoutingPreferences = {}) => resolvePreferences(p, (m) => new InvalidTaskRequestError(m))

/** A trust stub: maps by agent id / peer id; anything absent is unknown. */
function trustOf(t: {
  quality?: Record<string, number>
  runMs?: Record<string, number>
  outcomes?: Record<string, { valid: number; invalid: number }>
  users?: Record<string, number>
  userOnAgent?: Record<string, number>
}): RoutingTrust {
  return {
    userScore: (peerId, agentId) => (agentId !== undefined ? t.userOnAgent?.[`${peerId}/${agentId}`] : undefined) ?? t.users?.[peerId] ?? 0.5,
    agentQuality: (id) => t.quality?.[id],
    agentRunMs: (id) => t.runMs?.[id],
    agentOutcomes: (id) => t.outcomes?.[id]
  }
}

function route(agents: AgentCandidate[], peers: PeerSnapshot[], routing: RoutingTrust | undefined, p: RoutingPreferences) {
  return createRouter({ catalog: catalogOf(agents), peers: { peers: () => peers }, ...(routing != null ? { routing } : {}) }).route([CAP], prefs(p))
}

const only = (w: Partial<Record<'cost_weight' | 'quality_weight' | 'speed_weight' | 'region_weight' | 'reputation_weight', number>>): RoutingPreferences => ({
  strategy: 'balanced',
  cost_weight: 0,
  quality_weight: 0,
  speed_weight: 0,
  region_weight: 0,
  reputation_weight: 0,
  ...w
})

describe('min_reputation on a fresh tab (unknown is a prior, not zero)', () => {
  const fresh = trustOf({})
  const bundled = [agent('a', [CAP], 0.1), agent('b', [CAP], 0.2)]
  const registry = [agent('n', [CAP], 0.1, { bundled: false, holders: ['p1'] })]

  it('nothing known: min_reputation 0.4 refuses no agent, bundled or from a new author', () => {
    expect(route(bundled, [peer('p1')], fresh, { min_reputation: 0.4 }).eligible).toBe(2)
    expect(route(registry, [peer('p1')], fresh, { min_reputation: 0.4 }).eligible).toBe(1)
    // 5 x the prior mean: 4.5 for an agent the catalog vouches for.
    expect(route(bundled, [peer('p1')], fresh, { min_reputation: 4.5 }).winner.reputation).toBe(4.5)
  })

  it("agentOutcomes: an agent's verified wrong results bring it below min_reputation; verified good ones lift a new author's agent", () => {
    const liar = trustOf({ outcomes: { [bundled[0].id]: { valid: 0, invalid: 20 } } })
    // Beta(9, 1 + 20): 5 x 9/30 = 1.5.
    const d = route(bundled, [peer('p1')], liar, { min_reputation: 2 })
    expect(d.eligible).toBe(1)
    expect(d.winner.agent.name).toBe('b')
    expect(() => route([bundled[0]], [peer('p1')], liar, { min_reputation: 2 })).toThrow(NoEligibleAgentError)
    // Beta(1 + 30, 3): 5 x 31/34 = 4.56 for the new author's agent, trusted now.
    const good = trustOf({ outcomes: { [registry[0].id]: { valid: 30, invalid: 0 } } })
    const r = route(registry, [peer('p1')], good, { min_reputation: 4.5 })
    expect(r.winner.reputation).toBeCloseTo((5 * 31) / 34, 9)
    expect(r.winner.trust).toBeCloseTo(31 / 34, 9)
  })

  it('agentOutcomes: verified outcomes move the reputation term of balanced', () => {
    const agents = [agent('checked-bad', [CAP], 0.1), agent('unchecked', [CAP], 0.1)]
    const t = trustOf({ outcomes: { [agents[0].id]: { valid: 2, invalid: 8 } } })
    expect(route(agents, [peer('p1')], t, only({ reputation_weight: 1 })).winner.agent.name).toBe('unchecked')
    const agents2 = [agent('unchecked', [CAP], 0.1), agent('checked-good', [CAP], 0.1)]
    const t2 = trustOf({ outcomes: { [agents2[1].id]: { valid: 50, invalid: 0 } } })
    expect(route(agents2, [peer('p1')], t2, only({ reputation_weight: 1 })).winner.agent.name).toBe('checked-good')
  })
})

describe('quality is the verified success rate (agentQuality)', () => {
  it('beats the catalog figure under the quality strategy and in min_quality', () => {
    const agents = [agent('claims-high', [CAP], 0.1, { quality: 0.95 }), agent('verified-good', [CAP], 0.1, { quality: 0.5 })]
    const t = trustOf({ quality: { [agents[0].id]: 0.3, [agents[1].id]: 0.9 } })
    const d = route(agents, [peer('p1')], t, { strategy: 'quality' })
    expect(d.winner.agent.name).toBe('verified-good')
    expect(d.winner.criteria.quality).toBe(0.9)
    expect(route(agents, [peer('p1')], t, { strategy: 'cost', min_quality: 0.8 }).eligible).toBe(1)
    // Without trust the catalog's figure rules (the test above would fail if agentQuality were ignored).
    expect(route(agents, [peer('p1')], undefined, { strategy: 'quality' }).winner.agent.name).toBe('claims-high')
  })

  it('unchecked agents keep the catalog figure', () => {
    const agents = [agent('checked', [CAP], 0.1, { quality: 0.9 }), agent('unchecked', [CAP], 0.1, { quality: 0.7 })]
    const t = trustOf({ quality: { [agents[0].id]: 0.6 } })
    expect(route(agents, [peer('p1')], t, { strategy: 'quality' }).winner.agent.name).toBe('unchecked')
  })
})

describe('latency is the measured run time plus the round trip (agentRunMs)', () => {
  it('speed: a fast agent on a slower peer beats a slow agent on the fastest peer', () => {
    const agents = [agent('slow-agent', [CAP], 0.1), agent('fast-agent', [CAP], 0.1)]
    const peers = [peer('a-near', { rttMs: 5 }), peer('b-far', { rttMs: 60 })]
    const t = trustOf({ runMs: { [agents[0].id]: 400, [agents[1].id]: 20 } })
    const d = route(agents, peers, t, { strategy: 'speed' })
    // fast-agent@a-near (25 ms), fast-agent@b-far (80), slow-agent@a-near (405), slow-agent@b-far (460).
    expect([d.winner, ...d.alternatives].map((r) => `${r.agent.name}@${r.peer.id}`)).toEqual([
      'fast-agent@a-near',
      'fast-agent@b-far',
      'slow-agent@a-near',
      'slow-agent@b-far'
    ])
    // One scale: speed = 1 - (run + rtt) / (max run + max rtt).
    expect(d.winner.criteria.speed).toBeCloseTo(1 - 25 / 460, 12)
    expect(d.alternatives[0].criteria.speed).toBeCloseTo(1 - 80 / 460, 12)
    // The round trip alone (agentRunMs ignored) would rank slow-agent@a-near first (earlier in the list, same peer).
  })

  it("an agent never timed counts the mean of those timed; the catalog's avgMs counts when trust has none", () => {
    const agents = [agent('timed-slow', [CAP], 0.1), agent('catalog-fast', [CAP], 0.1, { avgMs: 10 }), agent('untimed', [CAP], 0.1)]
    const t = trustOf({ runMs: { [agents[0].id]: 200 } })
    const d = route(agents, [peer('p1')], t, { strategy: 'speed' })
    expect([d.winner, ...d.alternatives].map((r) => r.agent.name)).toEqual(['catalog-fast', 'untimed', 'timed-slow'])
    // untimed = mean(200, 10) = 105 ms.
    expect(d.alternatives[0].criteria.speed).toBeCloseTo(1 - (105 + 10) / (200 + 10), 12)
  })

  it('balanced: the speed weight sees run time', () => {
    const agents = [agent('slow', [CAP], 0.1), agent('quick', [CAP], 0.1)]
    const t = trustOf({ runMs: { [agents[0].id]: 300, [agents[1].id]: 30 } })
    expect(route(agents, [peer('p1')], t, only({ speed_weight: 1 })).winner.agent.name).toBe('quick')
  })
})

describe('the user behind the peer weighs in the reputation term (userScore, shared statements included)', () => {
  it('balanced: the peer of the better reputed user wins, per agent where trust knows it', () => {
    const one = [agent('solo', [CAP], 0.1)]
    const peers = [peer('a-liar', { rttMs: 10 }), peer('b-honest', { rttMs: 10 })]
    const t = trustOf({ users: { 'a-liar': 0.1, 'b-honest': 0.9 } })
    const d = route(one, peers, t, only({ reputation_weight: 1 }))
    expect(d.winner.peer.id).toBe('b-honest')
    // Half the agent's reputation (4.5 / 5) and half the user's.
    expect(d.winner.criteria.reputation).toBeCloseTo((0.9 + 0.9) / 2, 12)
    expect(d.alternatives[0].criteria.reputation).toBeCloseTo((0.9 + 0.1) / 2, 12)
    // The user's score on this very agent counts in the final ranking.
    const perAgent = trustOf({
      users: { 'a-good-here': 0.4, 'b-bad-here': 0.6 },
      userOnAgent: { [`a-good-here/${one[0].id}`]: 0.95, [`b-bad-here/${one[0].id}`]: 0.2 }
    })
    const d2 = route(one, [peer('a-good-here'), peer('b-bad-here')], perAgent, only({ reputation_weight: 1 }))
    expect(d2.winner.peer.id).toBe('a-good-here')
  })

  it('the balanced default ranks a liar user below an honest one at equal round trip', () => {
    const one = [agent('solo', [CAP], 0.1)]
    const peers = [peer('a-liar'), peer('b-honest')]
    expect(route(one, peers, trustOf({ users: { 'a-liar': 0.2, 'b-honest': 0.8 } }), {}).winner.peer.id).toBe('b-honest')
  })
})
