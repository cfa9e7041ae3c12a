/**
 * The simulator's building blocks at small N (bench/sim.mjs runs them at 50-200): links
 * keep order and delay under loss; 8 peers of the real mesh code over simulated links
 * link directly, hear every presence, deliver every gossip probe to every peer, run each
 * task exactly once on a donor, and a newcomer syncs a seeded registry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Lane } from './link.ts'
import { knowsPresenceOf, startSimPeer, waitFor } from './mesh.ts'
import { SimMesh } from './scenario.ts'

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
})

describe('simulated mesh, 8 peers (2 donating)', () => {
  let mesh: SimMesh

  beforeAll(async () => {
    mesh = new SimMesh({
      sizes: [8],
      donorShare: 0.25,
      agents: 20,
      cacheFile: 'node_modules/.cache/zerostate-sim/registry-test.json',
      link: { loss: 0.02 },
      log: (line) => console.log(line)
    })
    await mesh.start()
    await mesh.grow(8)
  }, 180_000)

  afterAll(async () => {
    await mesh?.stop()
  }, 60_000)

  it('peers link to each other over links that pose as WebRTC and hear every presence', async () => {
    expect(mesh.peers).toHaveLength(8)
    expect(mesh.donors.size).toBe(2)
    await mesh.presenceConverged(90_000)
    await mesh.linked(3, 90_000)
    for (const p of mesh.peers) {
      const direct = p.zs.peers().filter((x) => !x.relay)
      expect(direct.length).toBeGreaterThanOrEqual(3)
      expect(direct.every((x) => x.transport === 'webrtc')).toBe(true)
      expect(p.zs.peers().filter((x) => x.relay)).toHaveLength(1)
    }
  }, 200_000)

  it('every gossip probe reaches every other peer', async () => {
    await mesh.linked(3, 90_000)
    const g = await mesh.probe(6, 100, 256, undefined, 60_000)
    expect(g.expected).toBe(6 * 7)
    expect(g.delivered).toBe(g.expected)
    expect(g.delivery.every((ms) => ms >= 20)).toBe(true)
  }, 120_000)

  it('each task completes exactly once, on a donor, with the right output, and runs no more often than offered', async () => {
    const t = await mesh.tasks(6, 3, 'vitest')
    expect(t.failed).toBe(0)
    expect(t.succeeded).toBe(6)
    expect(t.onDonor).toBe(6)
    expect(t.notRun).toBe(0)
    // A second run happens only where the submitter re-offered (an offer or lease timed out under load).
    expect(t.unexplained).toBe(0)
    expect(t.runs).toBeLessThanOrEqual(t.dispatched)
    expect(t.exactlyOnce).toBe(true)
  }, 180_000)

  it('a newcomer syncs the seeded registry and is heard by every peer', async () => {
    const relay = mesh.relay?.addr as string
    const newcomer = await startSimPeer({ relay, agentsBaseUrl: mesh.agentsBaseUrl })
    try {
      await waitFor(() => newcomer.zs.registry.list().length >= 20, 90_000, 'the newcomer lists the 20 seeded agents', 100)
      expect(newcomer.zs.registry.list().filter((e) => e.id.startsWith('sim-agent-'))).toHaveLength(20)
      await waitFor(
        () => mesh.peers.every((p) => knowsPresenceOf(p, [newcomer.id])) && knowsPresenceOf(newcomer, mesh.ids()),
        90_000,
        'the newcomer and every peer hold each other',
        100
      )
    } finally {
      await newcomer.stop()
    }
  }, 200_000)
})
