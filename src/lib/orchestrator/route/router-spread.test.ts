/**
 * Spreading a fan-out over equal donors: under `balanced` load weighs 0 and a tie
 * went to the lower peer id, so the items of a `for_each` over two donor tabs
 * nearly all went to one. Two rules fix it, each pinned here by a test that
 * fails without it: a donor with no room left (our offers in flight fill the
 * capacity it has shown) goes after every donor with room; among equals, the
 * one with fewer of our offers in flight goes first.
 */
import { describe, expect, it } from 'vitest'
import { MemoryTaskNetwork } from '../dispatch/index.ts'
import { createOrchestrator } from '../index.ts'
import { donorService } from '../donor/index.ts'
import { InvalidTaskRequestError } from '../errors.ts'
import { agent, catalogOf, delay, fnExecutor, peer } from '../test-fixtures.ts'
import type { PeerSnapshot } from '../components.ts'
import { CapacityBook } from './capacity.ts'
import { PeerWindows } from './peer-windows.ts'
import { resolvePreferences, type RoutingPreferences } from './preferences.ts'
import { createRouter } from './router.ts'

const hasher = agent('hasher', ['hashing'], 0.1)
const prefs = (p: RoutingPreferences = {}) => resolvePreferences(p, (m) => new InvalidTaskRequestError(m))
// Two equal donors; "d-a" sorts first, so a plain tie goes to it.
const equal: PeerSnapshot[] = [peer('d-a', { rttMs: 10, freeWorkers: 4 }), peer('d-b', { rttMs: 10, freeWorkers: 4 })]

/** `running` offers of ours running at `id`, after it once ran `peak` at once and completed one (capacity peak + 1). */
function show(book: CapacityBook, id: string, peak: number, running: number): void {
  for (let i = 0; i < peak; i++) book.started(id)
  book.completed(id)
  for (let i = running; i < peak; i++) book.ended(id)
}

describe('router: room first, then fewer in flight', () => {
  it('a donor with no room left goes after one with room, even when it has fewer of ours in flight and answers faster', () => {
    const book = new CapacityBook()
    const peers = [peer('d-a', { rttMs: 5, freeWorkers: 4 }), peer('d-b', { rttMs: 10, freeWorkers: 4 })]
    // d-a: capacity 1 never completed, 1 running: full. d-b: capacity 4 (peak 3 + 1), 2 running: room for 2.
    book.started('d-a')
    show(book, 'd-b', 3, 2)
    expect([book.free('d-a'), book.inflight('d-a'), book.free('d-b'), book.inflight('d-b')]).toEqual([0, 1, 2, 2])
    const router = createRouter({ catalog: catalogOf([hasher]), peers: { peers: () => peers }, capacity: book })
    for (const strategy of ['balanced', 'speed', 'cost'] as const) {
      const d = router.route(['hashing'], prefs({ strategy }))
      expect(d.winner.peer.id, strategy).toBe('d-b')
      // The full donor is still an alternative (it may free up), after the one with room.
      expect(
        d.alternatives.map((r) => r.peer.id),
        strategy
      ).toContain('d-a')
    }
    // Room back at d-a: the faster donor wins speed again (the rule orders room, not speed).
    book.ended('d-a')
    expect(router.route(['hashing'], prefs({ strategy: 'speed' })).winner.peer.id).toBe('d-a')
  })

  it('among donors with equal room, the one with fewer of our offers in flight first (not the lower peer id)', () => {
    const book = new CapacityBook()
    // Both show capacity 4; d-a runs 2 of ours, d-b 1: both have room, d-b has fewer in flight.
    show(book, 'd-a', 3, 2)
    show(book, 'd-b', 3, 1)
    const router = createRouter({ catalog: catalogOf([hasher]), peers: { peers: () => equal }, capacity: book })
    for (const strategy of ['balanced', 'cost', 'quality', 'specialist'] as const)
      expect(router.route(['hashing'], prefs({ strategy })).winner.peer.id, strategy).toBe('d-b')
    // Equal in flight: the plain tie again (lower peer id).
    book.ended('d-a')
    expect(router.route(['hashing'], prefs()).winner.peer.id).toBe('d-a')
  })

  it('a slightly closer donor busy with our offers counts the wait behind them: a near-equal idle one wins', () => {
    const book = new CapacityBook()
    // The hashing agent runs 40 ms; d-a is 3 ms closer but runs 2 of ours of the 4 it has shown (waits ~20 ms).
    const slowHasher = agent('hasher', ['hashing'], 0.1, { avgMs: 40 })
    const peers = [peer('d-a', { rttMs: 5, freeWorkers: 4 }), peer('d-b', { rttMs: 8, freeWorkers: 4 })]
    show(book, 'd-a', 3, 2)
    const router = createRouter({ catalog: catalogOf([slowHasher]), peers: { peers: () => peers }, capacity: book })
    for (const strategy of ['balanced', 'speed'] as const) expect(router.route(['hashing'], prefs({ strategy })).winner.peer.id, strategy).toBe('d-b')
    // Idle again: the closer donor wins (the wait is what moved it).
    book.ended('d-a')
    book.ended('d-a')
    expect(router.route(['hashing'], prefs({ strategy: 'speed' })).winner.peer.id).toBe('d-a')
    // A far donor stays behind a busy near one: 2 of 4 taken is ~20 ms of wait, not 75 ms of round trip.
    const far = [peers[0], peer('d-b', { rttMs: 80, freeWorkers: 4 })]
    show(book, 'd-a', 3, 2)
    const r2 = createRouter({ catalog: catalogOf([slowHasher]), peers: { peers: () => far }, capacity: book })
    expect(r2.route(['hashing'], prefs({ strategy: 'speed' })).winner.peer.id).toBe('d-a')
  })

  it('the in-flight tie-break never outweighs a real difference', () => {
    const book = new CapacityBook()
    const peers = [peer('d-a', { rttMs: 5, freeWorkers: 4 }), peer('d-b', { rttMs: 80, freeWorkers: 4 })]
    show(book, 'd-a', 3, 2)
    const router = createRouter({ catalog: catalogOf([hasher]), peers: { peers: () => peers }, capacity: book })
    expect(router.route(['hashing'], prefs({ strategy: 'speed' })).winner.peer.id).toBe('d-a')
    expect(router.route(['hashing'], prefs({ strategy: 'geographic' })).winner.peer.id).toBe('d-a')
  })

  it('a burst of steps routed as the dispatcher sends them spreads evenly over two equal donors', async () => {
    const book = new CapacityBook()
    const windows = new PeerWindows({ capacity: book })
    const router = createRouter({ catalog: catalogOf([hasher]), peers: { peers: () => equal }, capacity: book })
    const counts = new Map<string, number>()
    // 20 rounds of 4 steps at once (a for_each with max_parallel 4), each taking a window place as the dispatcher does.
    for (let round = 0; round < 20; round++) {
      const places = []
      for (let i = 0; i < 4; i++) {
        const id = router.route(['hashing'], prefs()).winner.peer.id
        counts.set(id, (counts.get(id) ?? 0) + 1)
        const place = await windows.acquire(id)
        place.accepted()
        places.push([id, place] as const)
      }
      for (const [id, place] of places) {
        windows.ok(id)
        place.release()
      }
    }
    // Two at a time each (measured 40 / 40); before, d-a took all 80.
    expect(counts.get('d-a')).toBe(40)
    expect(counts.get('d-b')).toBe(40)
  })

  it('through the orchestrator: concurrent tasks over two equal donors run on both, each a fair share', async () => {
    const net = new MemoryTaskNetwork()
    const runs: Record<string, ReturnType<typeof fnExecutor>> = {}
    for (const d of equal) {
      const t = net.transport(d.id)
      await t.start()
      runs[d.id] = fnExecutor(
        {
          [hasher.id]: async (i) => {
            await delay(5)
            return `h(${String(i)})`
          }
        },
        d.freeWorkers
      )
      await donorService()({ transport: t, executor: runs[d.id]! }).start()
    }
    const orch = createOrchestrator({ catalog: catalogOf([hasher]), peers: { peers: () => equal }, transport: net.transport('me') })
    await orch.start()
    for (let round = 0; round < 6; round++) {
      const rs = await Promise.all(
        Array.from({ length: 4 }, (_, i) => orch.submit({ description: 'hash it', capabilities: ['hashing'], input: `${round}-${i}` }).done)
      )
      for (const r of rs) expect(r.status).toBe('succeeded')
    }
    // 24 tasks over two equal donors: each ran at least a third of them (before: d-a ran 24, d-b 0).
    const a = runs['d-a']!.runs
    const b = runs['d-b']!.runs
    expect(a + b).toBe(24)
    expect(Math.min(a, b)).toBeGreaterThanOrEqual(8)
    await orch.stop()
  })
})
