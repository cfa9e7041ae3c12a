/**
 * Issue 11 items 4 and 6, the routing side: a capability taken over by 512
 * entries from two throwaway keys at price 0, and a donor that says it has
 * 1,024 free workers. The router must not route to agents nobody holds, must
 * rank new authors below trusted agents under every strategy, and must count
 * the capacity a donor has shown, not the capacity it claims.
 */
import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from '../dispatch/index.ts'
import { createOrchestrator } from '../index.ts'
import { donorService } from '../donor/index.ts'
import { InvalidTaskRequestError, NoEligibleAgentError } from '../errors.ts'
import { agent, catalogOf, fnExecutor, peer } from '../test-fixtures.ts'
import type { AgentCandidate, PeerSnapshot } from '../components.ts'
import { createRouter } from './router.ts'
import { resolvePreferences, type RoutingPreferences, type Strategy } from './preferences.ts'
import { CapacityBook, UNOBSERVED_CAPACITY } from './capacity.ts'
import { PeerWindows } from './peer-windows.ts'
import { BUNDLED_PRIOR, NEW_AUTHOR_PRIOR, betaMean, type AgentTrust } from './trust.ts'

const honest = agent('hasher', ['hashing'], 0.5, { bundled: true, quality: 0.5 })
const keys = ['ed25519:throwaway-one', 'ed25519:throwaway-two']
/** 512 valid entries from two fresh keys, claiming hashing at price 0, "held" by the hostile donor. */
const takeover: AgentCandidate[] = Array.from({ length: 512 }, (_, i) =>
  agent(`cheap-hash-${i}`, ['hashing'], 0, { bundled: false, author: keys[i % 2], holders: ['evil'], quality: 1 })
)
const honestPeer = peer('honest', { rttMs: 20, freeWorkers: 8 })
const evilPeer = peer('evil', { rttMs: 1, freeWorkers: 1024 })
const prefs = (p: RoutingPreferences = {}) => resolvePreferences(p, (m) => new InvalidTaskRequestError(m))
const STRATEGIES: Strategy[] = ['balanced', 'cost', 'speed', 'quality', 'specialist', 'generalist', 'load-balanced', 'round-robin', 'geographic']

describe('capability takeover with throwaway keys (issue 11 item 4)', () => {
  it('under every strategy the trusted, held agent outranks 512 free entries by new authors', () => {
    const router = createRouter({ catalog: catalogOf([...takeover, honest]), peers: { peers: () => [honestPeer, evilPeer] } })
    for (const strategy of STRATEGIES) {
      const d = router.route(['hashing'], prefs({ strategy }))
      expect(d.winner.agent.id, strategy).toBe(honest.id)
      // Every alternative on every peer with the trusted agent comes before any new author's entry.
      const ranked = [d.winner, ...d.alternatives]
      const firstUntrusted = ranked.findIndex((r) => r.agent.id !== honest.id)
      if (firstUntrusted >= 0)
        expect(
          ranked.slice(firstUntrusted).every((r) => r.agent.id !== honest.id),
          strategy
        ).toBe(true)
      expect(d.winner.trust).toBe(betaMean(BUNDLED_PRIOR))
    }
  })

  it('never routes to an agent that no known peer holds and that never answered here', () => {
    const ghosts = Array.from({ length: 50 }, (_, i) => agent(`ghost-${i}`, ['rare'], 0, { bundled: false, author: keys[0], holders: ['nobody-knows-me'] }))
    const router = createRouter({ catalog: catalogOf(ghosts), peers: { peers: () => [honestPeer] } })
    expect(() => router.route(['rare'], prefs())).toThrow(NoEligibleAgentError)
    expect(() => router.route(['rare'], prefs())).toThrow(/50 held by no peer this one knows/)
    // Held by this peer itself (the transport's self), or answered here before: routable.
    const mine = agent('mine', ['rare'], 0, { bundled: false, author: keys[0], holders: ['me'] })
    const answered = agent('answered', ['rare2'], 0, { bundled: false, author: keys[1], holders: [], runs: 1, successes: 1 })
    const r2 = createRouter({ catalog: catalogOf([...ghosts, mine, answered]), peers: { peers: () => [honestPeer] }, transport: { self: 'me' } })
    expect(r2.route(['rare'], prefs()).winner.agent.id).toBe(mine.id)
    expect(r2.route(['rare2'], prefs()).winner.agent.id).toBe(answered.id)
    // After a reload this peer has a new id, so its own agents' holder hints are stale: its store still holds the bytes.
    const stale = agent('stale', ['rare3'], 0, { bundled: false, author: keys[0], holders: ['me-before-reload'] })
    const r3 = createRouter({
      catalog: catalogOf([stale]),
      peers: { peers: () => [honestPeer] },
      transport: { self: 'me' },
      executor: { has: (id) => id === stale.id }
    })
    expect(r3.route(['rare3'], prefs()).winner.agent.id).toBe(stale.id)
    const r4 = createRouter({ catalog: catalogOf([stale]), peers: { peers: () => [honestPeer] }, transport: { self: 'me' }, executor: { has: () => false } })
    expect(() => r4.route(['rare3'], prefs())).toThrow(NoEligibleAgentError)
  })

  it("a new author's held agent is used where no trusted agent offers the capability, and says so", () => {
    const fresh = agent('fresh', ['novel'], 0, { bundled: false, author: keys[0], holders: ['honest'] })
    const router = createRouter({ catalog: catalogOf([fresh, honest]), peers: { peers: () => [honestPeer] } })
    const d = router.route(['novel'], prefs({ strategy: 'cost' }))
    expect(d.winner.agent.id).toBe(fresh.id)
    expect(d.winner.trust).toBe(betaMean(NEW_AUTHOR_PRIOR))
    expect(d.reasoning).toMatch(/no track record here/)
  })

  it('outcomes move the posterior: a new author whose agent succeeded here twice is trusted; failures keep it below', () => {
    const proven = agent('proven', ['hashing'], 0, { bundled: false, author: keys[0], holders: ['honest'], runs: 2, successes: 2 })
    const failing = agent('failing', ['hashing'], 0, { bundled: false, author: keys[1], holders: ['honest'], runs: 5, successes: 2 })
    const router = createRouter({ catalog: catalogOf([failing, honest, proven]), peers: { peers: () => [honestPeer] } })
    const d = router.route(['hashing'], prefs({ strategy: 'cost' }))
    expect(d.winner.agent.id).toBe(proven.id)
    expect(d.alternatives.map((r) => r.agent.id)).toEqual([honest.id, failing.id])
  })

  it('reputation plugs in through AgentTrust (the trust room): its posterior replaces the prior', () => {
    const asked: Array<[string, string | undefined]> = []
    const trust: AgentTrust = {
      reputation(id, author) {
        asked.push([id, author])
        return author === keys[0] ? { alpha: 30, beta: 1 } : undefined
      }
    }
    const router = createRouter({ catalog: catalogOf([...takeover, honest]), peers: { peers: () => [honestPeer, evilPeer] }, agentTrust: trust })
    const d = router.route(['hashing'], prefs({ strategy: 'cost' }))
    expect(d.winner.agent.author).toBe(keys[0])
    expect(asked).toContainEqual([takeover[0]!.id, keys[0]])
  })

  it('512 entries from 2 fresh keys at price 0 do not make honest hash tasks fail (balanced, cost, speed)', async () => {
    const net = new MemoryTaskNetwork()
    // The honest donor runs the bundled hasher; the hostile donor holds the 512 entries and fails every run
    // (a donor that cannot run an agent it does not have fails the same way).
    const good = fnExecutor({ [honest.id]: (i) => ({ hash: `h(${String(i)})` }) })
    const evil = fnExecutor(
      Object.fromEntries(
        [...takeover, honest].map((a) => [
          a.id,
          () => {
            throw new Error('never answers honestly')
          }
        ])
      )
    )
    for (const [id, ex] of [
      ['honest', good],
      ['evil', evil]
    ] as const) {
      const t = net.transport(id)
      await t.start()
      await donorService()({ transport: t, executor: ex }).start()
    }
    const peers = [honestPeer, evilPeer]
    const orch = createOrchestrator({ catalog: catalogOf([...takeover, honest]), peers: { peers: () => peers }, transport: net.transport('me') })
    await orch.start()
    for (const strategy of ['balanced', 'cost', 'speed'] as const) {
      const r = await orch.submit({
        description: 'hash it',
        capabilities: ['hashing'],
        input: strategy,
        preferences: { strategy, retry_policy: { max_attempts: 3, backoff_ms: 1, backoff_multiplier: 1 } }
      }).done
      expect(r.status, strategy).toBe('succeeded')
      expect(r.steps[0], strategy).toMatchObject({ agent: honest.id, peer: 'honest', output: { hash: `h(${strategy})` } })
    }
    await orch.stop()
  })
})

describe('self-reported capacity (issue 11 item 6)', () => {
  const hasher = agent('hasher', ['hashing'], 0.1)
  const donors: PeerSnapshot[] = [
    peer('liar', { rttMs: 1, freeWorkers: 1024 }),
    peer('d-one', { rttMs: 10, freeWorkers: 8 }),
    peer('d-two', { rttMs: 12, freeWorkers: 8 })
  ]

  it('a donor never seen counts its unobserved capacity, not the 1,024 it announces', () => {
    const book = new CapacityBook()
    const router = createRouter({ catalog: catalogOf([hasher]), peers: { peers: () => donors }, capacity: book })
    const d = router.route(['hashing'], prefs({ strategy: 'load-balanced' }))
    const liar = [d.winner, ...d.alternatives].find((r) => r.peer.id === 'liar')!
    expect(liar.freeSeen).toBe(UNOBSERVED_CAPACITY)
    expect(liar.criteria.load).toBe(1) // all three show the same room: 1 of 1
    // Shown capacity: two of ours at once and a completion make a donor count 3.
    book.started('d-one')
    book.started('d-one')
    book.completed('d-one')
    book.ended('d-one')
    book.ended('d-one')
    expect(book.capacity('d-one')).toBe(3)
    const d2 = router.route(['hashing'], prefs({ strategy: 'load-balanced' }))
    expect(d2.winner.peer.id).toBe('d-one')
    expect(d2.reasoning).toMatch(/most free workers \(3 seen, 8 said\)/)
  })

  it('a donor announcing 1,024 free workers does not win every load-balanced choice', async () => {
    const book = new CapacityBook()
    const windows = new PeerWindows({ capacity: book })
    const router = createRouter({ catalog: catalogOf([hasher]), peers: { peers: () => donors }, capacity: book })
    const wins = new Map<string, number>()
    // 60 rounds of three concurrent steps, each taking a place in the chosen donor's window as the
    // dispatcher does; every donor runs what it accepts and completes it.
    for (let round = 0; round < 60; round++) {
      const places = []
      for (let i = 0; i < 3; i++) {
        const d = router.route(['hashing'], prefs({ strategy: 'load-balanced' }))
        wins.set(d.winner.peer.id, (wins.get(d.winner.peer.id) ?? 0) + 1)
        const place = await windows.acquire(d.winner.peer.id)
        place.accepted()
        places.push([d.winner.peer.id, place] as const)
      }
      for (const [id, place] of places) {
        windows.ok(id)
        place.release()
      }
    }
    // Spread across the donors by what they showed (measured 60 / 60 / 60), not by what the liar said (180 / 0 / 0 before).
    expect(wins.get('liar') ?? 0).toBeLessThanOrEqual(70)
    expect(wins.get('d-one') ?? 0).toBeGreaterThanOrEqual(50)
    expect(wins.get('d-two') ?? 0).toBeGreaterThanOrEqual(50)
  })

  it('through the orchestrator: a donor claiming 1,024 workers gets a share of the tasks, not all of them', async () => {
    const net = new MemoryTaskNetwork()
    const runs: Record<string, ReturnType<typeof fnExecutor>> = {}
    for (const d of donors) {
      const t = net.transport(d.id)
      await t.start()
      runs[d.id] = fnExecutor({ [hasher.id]: (i) => `h(${String(i)})` }, d.freeWorkers)
      await donorService()({ transport: t, executor: runs[d.id]! }).start()
    }
    const orch = createOrchestrator({ catalog: catalogOf([hasher]), peers: { peers: () => donors }, transport: net.transport('me') })
    await orch.start()
    for (let round = 0; round < 10; round++) {
      const rs = await Promise.all(
        Array.from(
          { length: 3 },
          (_, i) => orch.submit({ description: 'hash it', capabilities: ['hashing'], input: `${round}-${i}`, preferences: { strategy: 'load-balanced' } }).done
        )
      )
      for (const r of rs) expect(r.status).toBe('succeeded')
    }
    // Measured: 10 / 10 / 10. Before, the liar took all 30.
    expect(runs.liar!.runs).toBeLessThanOrEqual(14)
    expect(runs['d-one']!.runs).toBeGreaterThanOrEqual(8)
    expect(runs['d-two']!.runs).toBeGreaterThanOrEqual(8)
    await orch.stop()
  })
})
