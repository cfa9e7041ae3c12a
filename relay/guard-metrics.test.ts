import { describe, expect, it } from 'vitest'
import { relayMetrics } from './metrics.ts'

// Issue 11: bench:hostile read only the victim tab's blocks, so the rows whose victim is the
// relay (hop bomb, admission flood) said "blocked 0" whatever the relay did. The relay's blocks
// and refusals are now counters on GET /metrics, read at each scrape from its own counts.
describe('relay guard counters on /metrics', () => {
  it('exports what the relay blocked, refused (by reason) and evicted, as they grow', async () => {
    const m = relayMetrics()
    const counts = { blocked: 0, refused: { perAddress: 0, full: 0, rate: 0, unproven: 0, pending: 0, roster: 0 }, evicted: 0, squatters: 0, gossipStrikes: 0 }
    m.bind({ peers: () => 0, reservations: () => 0, guard: () => counts })
    expect((await m.scrape()).body).toMatch(/^zerostate_relay_peers_blocked_total 0$/m)
    counts.blocked = 2
    counts.refused = { perAddress: 3, full: 1, rate: 4, unproven: 8, pending: 5, roster: 6 }
    counts.evicted = 7
    counts.squatters = 9
    counts.gossipStrikes = 10
    const body = (await m.scrape()).body
    expect(body).toMatch(/^zerostate_relay_peers_blocked_total 2$/m)
    expect(body).toMatch(/^zerostate_relay_refused_total\{reason="per-address"\} 3$/m)
    expect(body).toMatch(/^zerostate_relay_refused_total\{reason="full"\} 1$/m)
    expect(body).toMatch(/^zerostate_relay_refused_total\{reason="rate"\} 4$/m)
    expect(body).toMatch(/^zerostate_relay_refused_total\{reason="unproven"\} 8$/m)
    expect(body).toMatch(/^zerostate_relay_refused_total\{reason="pending"\} 5$/m)
    expect(body).toMatch(/^zerostate_relay_refused_total\{reason="roster"\} 6$/m)
    expect(body).toMatch(/^zerostate_relay_reservations_evicted_total 7$/m)
    expect(body).toMatch(/^zerostate_relay_squatters_blocked_total 9$/m)
    expect(body).toMatch(/^zerostate_relay_gossip_strikes_total 10$/m)
    // A second scrape does not add them up again.
    expect((await m.scrape()).body).toMatch(/^zerostate_relay_peers_blocked_total 2$/m)
  })
})
