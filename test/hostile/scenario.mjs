/**
 * The stage every hostile test and `npm run bench:hostile` share: a real relay, two
 * honest tabs (A the victim, B a donor A pings and sends tasks to), and a way to run
 * one attack while measuring A from the outside.
 *
 *   const s = await hostileStage()                 // relay, A, B, full mesh, B donating
 *   const h = await s.hostile()                    // a fresh hostile peer (new identity), A and B seen
 *   const r = await s.measure(async () => ..., { until })  // the attack, with A's figures
 *   await s.honestTask()                           // A → B task; resolves with its result
 *   await s.stop()
 *
 * `measure` returns { result, ms, maxLongTaskMs, maxLagMs, pings: { ok, failed, maxMs },
 * heapBeforeMB, heapPeakMB, heapAfterMB }: the pings go from A to B every 250 ms for the
 * whole attack, the heap is sampled every 100 ms (peak) and after a GC (before/after).
 */
import { startMesh, waitForFullMesh } from '../harness.mjs'
import { createHostilePeer } from './hostile-peer.mjs'
import { tabProbe } from './probe.mjs'

export const TEXT = 'Peers exchange offers through a relay. After that the relay is not needed. Direct connections are fast and private.'

export async function hostileStage() {
  const mesh = await startMesh()
  const a = await mesh.newPeer()
  const b = await mesh.newPeer()
  const [idA, idB] = await waitForFullMesh([a, b])
  await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
  await a.waitForFunction((id) => window.zerostate.peers().some((p) => p.id === id && p.donating && p.capabilities.includes('word-count')), idB, {
    timeout: 15_000
  })
  const probe = await tabProbe(a)
  const hostiles = []
  return {
    mesh,
    a,
    b,
    idA,
    idB,
    probe,
    async hostile() {
      const h = await createHostilePeer({ relayUrl: mesh.url })
      hostiles.push(h)
      await h.waitForTabs(2)
      return h
    },
    async metrics(page = a) {
      return await page.evaluate(() => window.zerostate.metrics())
    },
    async honestTask() {
      return await a.evaluate(async (text) => {
        const h = window.zerostate.submit({ description: 'count the words', input: text })
        return await h.done
      }, TEXT)
    },
    /**
     * Run `attack` while measuring A. `until` (optional) is awaited after the attack
     * returns (e.g. the strike showing in A's metrics) before the window closes.
     */
    async measure(attack, { until } = {}) {
      const heapBeforeMB = await probe.heapMB({ gc: true })
      await probe.reset()
      await probe.startPings([idB], 250)
      let heapPeakMB = heapBeforeMB
      let sampling = true
      const sampler = (async () => {
        while (sampling) {
          heapPeakMB = Math.max(heapPeakMB, await probe.heapMB({ gc: false }).catch(() => 0))
          await new Promise((r) => setTimeout(r, 100))
        }
      })()
      const t0 = Date.now()
      let result
      try {
        result = await attack()
        if (until != null) await until()
        // One ping round after the attack, so a stall it left behind shows in the figures.
        await a.waitForFunction((n) => window.__probe.pings.ok + window.__probe.pings.failed >= n, 2, { timeout: 10_000, polling: 50 })
      } finally {
        sampling = false
        await sampler
      }
      const ms = Date.now() - t0
      const seen = await probe.read()
      const heapAfterMB = await probe.heapMB({ gc: true })
      return { result, ms, ...seen, heapBeforeMB, heapPeakMB, heapAfterMB }
    },
    async stop() {
      await Promise.allSettled(hostiles.map((h) => h.stop()))
      await probe.close()
      await mesh.stop()
    }
  }
}

/** Poll `fn` in Node until it returns truthy. */
export async function until(fn, { timeout = 10_000, message = 'condition' } = {}) {
  const end = Date.now() + timeout
  while (Date.now() < end) {
    if (await fn()) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting for ${message}`)
}
