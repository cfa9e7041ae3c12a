/**
 * The simulator's building blocks at small N (bench/sim.mjs runs them at 50-200): links
 * keep order and delay under loss; 8 peers of the real mesh code in two worker threads,
 * over simulated links bridged between the threads, link directly, hear every presence, deliver every gossip probe to every peer, run each
 * task exactly once on a donor, and a newcomer syncs a seeded registry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Lane } from './link.ts'
import { waitFor } from './mesh.ts'
import { SimMesh, settledAfter, taskPhases } from './scenario.ts'

describe('simulated link', () => {
  it('delivers in order, no earlier than the latency, and a lost chunk holds back those after it', async () => {
    const got: Array<{ n: number; at: number }> = []
    // Chunk 2 is lost (the random source says so for its loss draw), the rest are not.
    const draws = [0, 0.9, 0, 0.9, 0, 0.001, 0, 0.9, 0, 0.9]
    let d = 0
    const lane = new Lane(
      { latencyMs: 30, jitterMs: 0, loss: 0.01, retransmitMs: 100 },
      () => draws[d++ % draws.length] as number,
      (item) => {
        // Chunks due together arrive as one buffer.
        const at = performance.now()
        for (const n of item.data as Uint8Array) got.push({ n, at })
      }
    )
    const t0 = performance.now()
    for (let n = 0; n < 5; n++) lane.push({ data: Uint8Array.of(n) })
    await waitFor(() => got.length === 5, 2000, 'five chunks', 5)
    expect(got.map((g) => g.n)).toEqual([0, 1, 2, 3, 4])
    for (const g of got) expect(g.at - t0).toBeGreaterThanOrEqual(29)
    // Chunk 2 waited for its resend, and 3 and 4 behind it.
    for (const g of got.slice(2)) expect(g.at - t0).toBeGreaterThanOrEqual(129)
  })

  it('one clock for all lanes: each delivers at its own time, a slow lane does not hold back a fast one, a stopped one delivers nothing', async () => {
    const got: string[] = []
    const shape = (latencyMs: number) => ({ latencyMs, jitterMs: 0, loss: 0, retransmitMs: 0 })
    const lane = (name: string, latencyMs: number) =>
      new Lane(shape(latencyMs), Math.random, (item) => {
        for (const n of item.data as Uint8Array) got.push(`${name}${n}`)
      })
    const slow = lane('s', 80)
    const fast = lane('f', 10)
    const stopped = lane('x', 20)
    slow.push({ data: Uint8Array.of(1) })
    stopped.push({ data: Uint8Array.of(1) })
    fast.push({ data: Uint8Array.of(1) })
    stopped.stop()
    await waitFor(() => got.length >= 1, 2000, 'the fast lane', 2)
    expect(got).toEqual(['f1'])
    // A lane pushed while the clock waits for a later one is still on time.
    fast.push({ data: Uint8Array.of(2) })
    await waitFor(() => got.length >= 3, 2000, 'both lanes', 2)
    expect(got).toEqual(['f1', 'f2', 's1'])
  })
})

describe('settling after the last join', () => {
  it('waits until two windows in a row fell by less than 5 %, not one (a single flat window was noise)', () => {
    expect(settledAfter([8.9, 8.2])).toBe(false)
    expect(settledAfter([8.9, 8.5, 8.3])).toBe(true)
    // Falling by 8 % then 20 %: the tail is still draining.
    expect(settledAfter([8.9, 8.2, 6.5])).toBe(false)
    expect(settledAfter([8.2, 6.8, 5.4, 4.8, 5.3])).toBe(false)
    expect(settledAfter([8.2, 6.8, 5.4, 5.3, 5.4])).toBe(true)
    // A rise counts as not falling.
    expect(settledAfter([5, 5.5, 6])).toBe(true)
  })
})

describe("a task's parts", () => {
  it("splits each task at its first offer, accept and result, and tells a donor's first task from its later ones", () => {
    const p = taskPhases([
      { ms: 900, donor: 'a', phases: { dispatched: 10, accepted: 30, succeeded: 900 } },
      { ms: 100, donor: 'a', phases: { dispatched: 20, accepted: 50, succeeded: 100 } },
      { ms: 400, donor: 'b', phases: { dispatched: 5, accepted: 305, succeeded: 400 } },
      // No accept seen (a donor that answered with the result at once): counted where it can be.
      { ms: 60, donor: 'b', phases: { dispatched: 5, succeeded: 60 } }
    ])
    expect(p.toOffer).toMatchObject({ n: 4, max: 20 })
    expect(p.toAccept).toMatchObject({ n: 3, max: 300 })
    expect(p.toResult).toMatchObject({ n: 3, max: 870 })
    expect(p.firstOnDonor).toMatchObject({ n: 2, max: 900 })
    expect(p.laterOnDonor).toMatchObject({ n: 2, max: 100 })
  })
})

describe('simulated mesh, 8 peers (2 donating) in two worker threads', () => {
  let mesh: SimMesh

  beforeAll(async () => {
    mesh = new SimMesh({
      sizes: [8],
      workers: 2,
      donorShare: 0.25,
      agents: 20,
      cacheFile: 'node_modules/.cache/zerostate-sim/registry-test.json',
      link: { loss: 0.02 },
      log: (line) => console.log(line)
    })
    await mesh.start()
    await mesh.grow(8)
  }, 240_000)

  afterAll(async () => {
    await mesh?.stop()
  }, 60_000)

  it('peers in different threads link to each other over links that pose as WebRTC and hear every presence', async () => {
    expect(mesh.peers).toHaveLength(8)
    expect(mesh.donors.size).toBe(2)
    // Spread over both workers; the relay and the seeder are in this thread.
    expect(mesh.groups.map((g) => g.size)).toEqual([4, 4])
    // Generous waits: on a loaded machine (4 sessions on 2 cores) the mesh forms slowly; it must form.
    await mesh.presenceConverged(240_000)
    await mesh.linked(4, 240_000)
    // Direct (/webrtc) links only: with 4 peers per thread, 3 or more means links across threads.
    const counts = await mesh.linkCounts()
    expect(counts).toHaveLength(8)
    for (const n of counts) expect(n).toBeGreaterThanOrEqual(4)
  }, 500_000)

  it('every gossip probe reaches every other peer, across threads', async () => {
    await mesh.linked(3, 120_000)
    // Probes are awaited until every peer has each (up to 2 minutes), never judged by their latency.
    const g = await mesh.probe(6, 100, 256, undefined, 120_000)
    expect(g.expected).toBe(6 * 7)
    expect(g.delivered).toBe(g.expected)
    // Send and arrival times from different threads are on one clock: never before the link's latency.
    expect(g.delivery.every((ms) => ms >= 19)).toBe(true)
  }, 260_000)

  it('each task completes exactly once, on a donor, with the right output, and runs no more often than offered', async () => {
    // The donors' first step loads the agent into a worker: on a loaded machine that outlasted
    // the runtime's 10 s start limit and the task failed. A task that failed on a timeout is
    // submitted again (at most twice, each attempt counted); anything else fails the test.
    const t = await mesh.tasks(6, 2, 'vitest', 240_000, 2)
    expect(t.failed).toBe(0)
    expect(t.succeeded).toBe(6)
    expect(t.submitted).toBe(6 + t.retried)
    expect(t.onDonor).toBe(6)
    // Every completed task ran on a donor (its audit log says so) ...
    expect(t.notRun).toBe(0)
    // ... and no attempt ran more often than it was offered (a second run only where the submitter re-offered).
    expect(t.unexplained).toBe(0)
    expect(t.runs).toBeLessThanOrEqual(t.dispatched)
    expect(t.exactlyOnce).toBe(true)
    // Every succeeded task's parts were seen, each within its whole time; the first task on each of the 2 donors is told apart.
    const phases = t.phases
    expect(phases?.toOffer.n).toBe(6)
    expect(phases?.toAccept.n).toBe(6)
    expect(phases?.toResult.n).toBe(6)
    expect(phases?.toResult.max).toBeLessThanOrEqual(t.latency.max)
    expect((phases?.firstOnDonor.n ?? 0) + (phases?.laterOnDonor.n ?? 0)).toBe(6)
    expect(phases?.firstOnDonor.n).toBeLessThanOrEqual(2)
  }, 600_000)

  it('a newcomer syncs the seeded registry and is heard by every peer', async () => {
    const newcomer = await mesh.start1(false, false)
    try {
      await waitFor(
        async () => ((await newcomer.group.run({ op: 'registry', id: newcomer.id })) as number) >= 20,
        180_000,
        'the newcomer lists the 20 seeded agents',
        200
      )
      const ids = mesh.ids()
      await waitFor(
        async () => (await mesh.lacking([newcomer.id], ids)).length === 0 && (await mesh.lacking(ids, [newcomer.id])).length === 0,
        180_000,
        'the newcomer and every peer hold each other',
        200
      )
    } finally {
      newcomer.group.size--
      await newcomer.group.run({ op: 'remove', id: newcomer.id })
    }
  }, 400_000)

  it('a probe expects only peers up for the whole probe: one that leaves midway is not counted as missed', async () => {
    const leaver = await mesh.start1(false, false)
    let alive = [...mesh.peers, leaver]
    await mesh.linked(3, 120_000)
    const firstSent = Promise.withResolvers<void>()
    const audience = () => {
      firstSent.resolve()
      return alive
    }
    const probing = mesh.probe(4, 150, 256, audience, 120_000)
    // Gone once the first probe is addressed to it (its arrivals go with it, as a closed tab's do).
    await firstSent.promise
    alive = alive.filter((p) => p !== leaver)
    leaver.group.size--
    await leaver.group.run({ op: 'remove', id: leaver.id })
    const g = await probing
    expect(g.expected).toBe(4 * 7)
    expect(g.delivered).toBe(g.expected)
    // And the peers forget it: the relay's departure notice (a presence's entry is otherwise kept, stale).
    const ids = mesh.ids()
    await waitFor(
      async () => (await mesh.ask<number>({ op: 'holding', ids: [leaver.id], only: ids })).every((n) => n === 0),
      60_000,
      'every peer to forget the leaver',
      200
    )
  }, 260_000)
})
