import { describe, expect, it } from 'vitest'
import { createRouter, NoEligiblePeerError } from './router.ts'
import { resolvePreferences, type RoutingPreferences } from './preferences.ts'
import { NoEligibleAgentError, InvalidTaskRequestError } from '../errors.ts'
import { agent, catalogOf, peer } from '../test-fixtures.ts'
import type { PeerSnapshot } from '../components.ts'

const cheap = agent('summarizer', ['text-summarization'], 0.1, { quality: 0.6 })
const premium = agent('summarizer-pro', ['text-summarization'], 0.5, { quality: 0.95 })
const broad = agent('textkit', ['text-summarization', 'keyword-extraction', 'sentiment-analysis', 'hashing'], 0.3, { quality: 0.7 })
const mid = agent('summarizer-mid', ['text-summarization', 'keyword-extraction'], 0.2, { quality: 0.8 })
const rep: Record<string, number> = { [cheap.id]: 4.6, [premium.id]: 3.9, [broad.id]: 4.1, [mid.id]: 2.0 }

const far = peer('12D3KooWFarAwayPeerAB', { rttMs: 80, freeWorkers: 4, region: 'us-east' })
const near = peer('12D3KooWNearbyPeerCD', { rttMs: 5, freeWorkers: 1, region: 'eu-west' })
const mid2 = peer('12D3KooWMiddlePeerEF', { rttMs: 30, freeWorkers: 2, region: 'ap-south' })

function setup(peers: PeerSnapshot[] = [far, near, mid2]) {
  return createRouter({ catalog: catalogOf([cheap, premium, broad, mid]), peers: { peers: () => peers }, reputation: { agentReputation: (id) => rep[id] } })
}
const prefs = (p: RoutingPreferences = {}) => resolvePreferences(p, (m) => new InvalidTaskRequestError(m))
const route = (p: RoutingPreferences, peers?: PeerSnapshot[]) => setup(peers).route(['text-summarization'], prefs(p))

describe('router strategies', () => {
  it('cost: cheapest eligible, with the reasoning sentence', () => {
    const d = route({ strategy: 'cost' })
    expect(d.winner.agent.name).toBe('summarizer')
    expect(d.reasoning).toBe('Chose summarizer@1.2.0 on peer 12D3…CD because it is the cheapest eligible (0.1 credits) with reputation 4.6')
    expect(d.winner.criteria.cost).toBe(1)
    expect(d.eligible).toBe(4)
  })

  it('quality: highest quality regardless of price', () => {
    const d = route({ strategy: 'quality' })
    expect(d.winner.agent.name).toBe('summarizer-pro')
    expect(d.reasoning).toMatch(/highest quality of 4 eligible \(0.95\) at 0.5 credits/)
  })

  it('speed: the peer with the lowest round trip', () => {
    const d = route({ strategy: 'speed' })
    expect(d.winner.peer.id).toBe(near.id)
    expect(d.reasoning).toMatch(/that peer answers fastest \(5 ms round trip\)/)
  })

  it('balanced: weights move the winner', () => {
    expect(route({ strategy: 'balanced', cost_weight: 1, quality_weight: 0, reputation_weight: 0, speed_weight: 0 }).winner.agent.name).toBe('summarizer')
    expect(route({ strategy: 'balanced', cost_weight: 0, quality_weight: 1, reputation_weight: 0, speed_weight: 0 }).winner.agent.name).toBe('summarizer-pro')
    const d = route({})
    expect(d.strategy).toBe('balanced')
    expect(d.reasoning).toMatch(/best balanced score \([\d.]+\) of 4 eligible, strongest on/)
    expect(Object.keys(d.winner.criteria).sort()).toEqual(['cost', 'load', 'quality', 'region', 'reputation', 'specialization', 'speed'])
  })

  it('specialist and generalist: narrow versus broad agents', () => {
    const s = route({ strategy: 'specialist' })
    expect(s.winner.agent.capabilities).toHaveLength(1)
    expect(s.winner.agent.name).toBe('summarizer') // ties on 1 capability broken by cost, quality and reputation
    expect(s.reasoning).toMatch(/most specialised eligible agent \(1 capability\)/)
    const g = route({ strategy: 'generalist' })
    expect(g.winner.agent.name).toBe('textkit')
    expect(g.reasoning).toMatch(/broadest eligible agent \(4 capabilities\)/)
  })

  it('geographic: a preferred region first, else the closest', () => {
    const d = route({ strategy: 'geographic', preferred_regions: ['ap-south'] })
    expect(d.winner.peer.id).toBe(mid2.id)
    expect(d.reasoning).toMatch(/in a preferred region \(ap-south\) at 30 ms round trip/)
    const none = route({ strategy: 'geographic', preferred_regions: ['mars'] })
    expect(none.winner.peer.id).toBe(near.id)
    expect(none.reasoning).toMatch(/no eligible peer is in a preferred region and this one is closest/)
  })

  it('load-balanced: the peer with most free workers', () => {
    const d = route({ strategy: 'load-balanced' })
    expect(d.winner.peer.id).toBe(far.id)
    expect(d.reasoning).toMatch(/most free workers \(4\)/)
  })

  it('round-robin: every eligible agent takes a turn', () => {
    const r = setup()
    const p = prefs({ strategy: 'round-robin' })
    const names = Array.from({ length: 8 }, () => r.route(['text-summarization'], p).winner.agent.name)
    expect(names.slice(0, 4).sort()).toEqual(['summarizer', 'summarizer-mid', 'summarizer-pro', 'textkit'])
    expect(names.slice(4)).toEqual(names.slice(0, 4))
    expect(r.route(['text-summarization'], p).reasoning).toMatch(/next in round-robin order \(turn 1 of 4 eligible agents\)/)
  })

  it('custom: the user function decides, and a throwing function scores nothing', () => {
    const d = route({ strategy: 'custom', custom_score: (c, c2) => (c.agent.name === 'summarizer-mid' && c.peer.region === 'us-east' ? 10 : 0.5 * c2.cost) })
    expect([d.winner.agent.name, d.winner.peer.id]).toEqual(['summarizer-mid', far.id])
    expect(d.reasoning).toMatch(/highest custom score \(10\)/)
    expect(() =>
      route({
        strategy: 'custom',
        custom_score: () => {
          throw new Error('x')
        }
      })
    ).toThrow(NoEligibleAgentError)
    expect(() => prefs({ strategy: 'custom' })).toThrow(/custom_score/)
  })
})

describe('router constraints', () => {
  it('max_cost, min_quality and min_reputation filter, and the error counts why', () => {
    expect(route({ strategy: 'quality', max_cost: 0.35 }).winner.agent.name).toBe('summarizer-mid')
    expect(route({ strategy: 'cost', min_quality: 0.75 }).winner.agent.name).toBe('summarizer-mid')
    expect(route({ strategy: 'cost', min_quality: 0.75, min_reputation: 3 }).winner.agent.name).toBe('summarizer-pro')
    expect(() => route({ max_cost: 0.05, min_reputation: 4.9 })).toThrow(
      'No agent for text-summarization meets the constraints (4 over the 0.05 credit budget): relax the preferences'
    )
    expect(() => route({ min_quality: 0.99 })).toThrow(/4 below min_quality 0.99/)
  })

  it('max_latency excludes slow and unknown peers; no peer left is its own error', () => {
    const d = route({ strategy: 'load-balanced', max_latency: 40 })
    expect(d.winner.peer.id).toBe(mid2.id)
    expect([d.winner, ...d.alternatives].every((r) => r.peer.id !== far.id)).toBe(true)
    expect(() => route({ max_latency: 1 })).toThrow(NoEligiblePeerError)
    expect(() => route({ max_latency: 100 }, [peer('x', { rttMs: undefined })])).toThrow(/within 100 ms/)
  })

  it('skips full and non-donating peers', () => {
    const d = route({ strategy: 'speed' }, [{ ...near, freeWorkers: 0 }, { ...mid2, donating: false }, far])
    expect(d.winner.peer.id).toBe(far.id)
  })

  it('no agent for a capability names it', () => {
    expect(() => setup().route(['image-resize'], prefs())).toThrow('No agent offers capability image-resize: publish one or remove the step')
  })

  it('multi-capability steps need agents offering all of them', () => {
    const d = setup().route(['text-summarization', 'keyword-extraction'], prefs({ strategy: 'cost' }))
    expect(d.winner.agent.name).toBe('summarizer-mid')
    expect(d.eligible).toBe(2)
  })

  it('fallback chain comes right after the winner, and alternatives cover other peers', () => {
    const d = route({ strategy: 'cost', fallback_chain: ['textkit', premium.id] })
    expect(d.winner.agent.name).toBe('summarizer')
    expect(d.alternatives.slice(0, 2).map((a) => a.agent.name)).toEqual(['textkit', 'summarizer-pro'])
    expect(d.alternatives.some((a) => a.agent.name === 'summarizer' && a.peer.id !== d.winner.peer.id)).toBe(true)
  })

  it('excluded agents and peers are skipped (re-dispatch)', () => {
    const r = setup()
    const d = r.route(['text-summarization'], prefs({ strategy: 'cost' }), { excludeAgents: new Set([cheap.id]), excludePeers: new Set([near.id]) })
    expect(d.winner.agent.name).toBe('summarizer-mid')
    expect(d.winner.peer.id).not.toBe(near.id)
  })

  it('picks the best of 10,000 agents (the top-k scan keeps the true best)', () => {
    // Speed is measured by bench/ (bench-selection), never asserted in a test.
    const many = Array.from({ length: 10_000 }, (_, i) =>
      agent(`a${i}`, ['text-summarization'], ((i * 7919) % 1000) / 100, { id: i.toString(16).padStart(64, '0'), quality: (i % 97) / 97 })
    )
    const r = createRouter({ catalog: { list: () => many, version: () => 1 }, peers: { peers: () => [near, far, mid2] } })
    const cheapest = r.route(['text-summarization'], prefs({ strategy: 'cost' }))
    expect(cheapest.winner.agent.price).toBe(0)
    const best = r.route(['text-summarization'], prefs({ strategy: 'quality' }))
    expect(best.winner.agent.quality).toBe(Math.max(...many.map((a) => a.quality ?? 0)))
  })
})
