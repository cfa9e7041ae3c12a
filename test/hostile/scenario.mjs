/**
 * The stage every hostile test and `npm run bench:hostile` share: a real relay, two
 * honest tabs (A the victim, B a donor A pings and sends tasks to), and a way to run
 * one attack while measuring A from the outside.
 *
 *   const s = await hostileStage()                 // relay, A, B, full mesh, B donating
 *   const h = await s.hostile()                    // a fresh hostile peer (new identity), A and B seen
 *   const r = await s.measure(async () => ..., { until })  // the attack, with A's figures
 *   await s.honestTask()                           // A → B task; resolves with its result
 *   await s.intactAfterReload()                    // reload A: registry, shared memory and a task as before?
 *   await s.stop()
 *
 * `measure` returns { result, ms, maxLongTaskMs, maxLagMs, pings: { ok, failed, maxMs },
 * heapBeforeMB, heapPeakMB, heapAfterMB }: the pings go from A to B every 250 ms for the
 * whole attack, the heap is sampled every 100 ms (peak) and after a GC (before/after).
 */
import { startMesh, waitForApi, waitForFullMesh } from '../harness.mjs'
import { createHostilePeer } from './hostile-peer.mjs'
import { tabProbe } from './probe.mjs'

export const TEXT = 'Peers exchange offers through a relay. After that the relay is not needed. Direct connections are fast and private.'

export async function hostileStage() {
  const mesh = await startMesh()
  const a = await mesh.newPeer()
  const b = await mesh.newPeer()
  const [idA, idB] = await waitForFullMesh([a, b], 45_000)
  await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
  await a.waitForFunction((id) => window.zerostate.peers().some((p) => p.id === id && p.donating && p.capabilities.includes('word-count')), idB, {
    timeout: 15_000
  })
  // Shared state every attack must leave intact: a namespace of A's with one key, seen by B.
  await a.evaluate(async () => {
    await window.zerostate.memory.createNamespace('board', { mode: 'shared' })
    await window.zerostate.memory.set('board', 'plan', 'launch')
  })
  await b.waitForFunction(() => window.zerostate.memory.get('board', 'plan') === 'launch', null, { timeout: 15_000, polling: 50 })
  // A signed registry entry of A's (the bundled agents are in every tab whatever the registry
  // holds: only a published entry shows a registry wiped or not synced).
  const marker = await a.evaluate(
    async () =>
      (
        await window.zerostate.agents.publish({
          manifest: { name: 'stage-marker', version: '1.0.0', description: 'the hostile stage', capabilities: ['stage-marker'], abi: 'json-v1', price: 0 },
          // A real json-v1 module (publish checks its exports): a bundled agent's bytes.
          wasm: new Uint8Array(await (await fetch('/agents/hash.wasm')).arrayBuffer())
        })
      ).id
  )
  await b.waitForFunction((id) => window.zerostate.agents.list().some((e) => e.id === id), marker, { timeout: 15_000, polling: 50 })
  const baseline = { agents: await a.evaluate(() => window.zerostate.agents.list().length), marker }
  /** Registry (its length, and A's published entry in it) and the shared namespace's value, as `page` sees them. */
  const registryAndMemory = async (page, timeout) => ({
    agents: await page
      .waitForFunction(
        ([n, id]) =>
          window.zerostate.agents.list().length >= n && window.zerostate.agents.list().some((e) => e.id === id) && window.zerostate.agents.list().length,
        [baseline.agents, baseline.marker],
        { timeout, polling: 100 }
      )
      .then((h) => h.jsonValue())
      .catch(() => page.evaluate(() => window.zerostate.agents.list().length)),
    published: await page.evaluate((id) => window.zerostate.agents.list().some((e) => e.id === id), baseline.marker),
    memory: await page
      .waitForFunction(() => window.zerostate.memory.get('board', 'plan') === 'launch', null, { timeout, polling: 100 })
      .then(() => true)
      .catch(() => false)
  })
  const good = (x) => x.agents >= baseline.agents && x.published && x.memory
  let probe = await tabProbe(a)
  const hostiles = []
  const stage = {
    mesh,
    a,
    b,
    idA,
    idB,
    baseline,
    get probe() {
      return probe
    },
    async hostile() {
      const h = await createHostilePeer({ relayUrl: mesh.url })
      hostiles.push(h)
      // It learns the tabs' addresses from their presence; without it, it dials them through the relay.
      await h.waitForTabs(2, 20_000).catch(() => {})
      return h
    },
    async metrics(page = a) {
      return await page.evaluate(() => window.zerostate.metrics())
    },
    async honestTask(preferences, { timeout = 30_000 } = {}) {
      const timedOut = new Promise((resolve) => setTimeout(() => resolve({ status: 'failed', error: `no result within ${timeout} ms` }), timeout))
      return await Promise.race([
        timedOut,
        a.evaluate(
          async ([text, preferences]) => {
            const h = window.zerostate.submit({ description: 'count the words', input: text, ...(preferences ? { preferences } : {}) })
            return await h.done.then(
              (r) => ({ status: r.status, peer: r.steps?.[0]?.peer, planner: r.plan?.planner }),
              (err) => ({ status: 'failed', error: `${err?.name}: ${err?.message}` })
            )
          },
          [TEXT, preferences]
        )
      ])
    },
    /**
     * Reload A (a new page load on the same profile) and check that what it holds survived:
     * its registry lists as many agents as before the attacks (A's published entry among them), its shared namespace holds
     * its value, and an honest task runs. Re-forms the mesh with B and re-installs the probe.
     */
    async intactAfterReload({ timeout = 15_000, everyTab = false } = {}) {
      const t0 = Date.now()
      await probe.close()
      await a.reload()
      await waitForApi(a)
      // A page load is a new peer id (the profile key stays): follow it.
      stage.idA = await a.evaluate(() => window.zerostate.peerId)
      await waitForFullMesh([a, b], 20_000).catch(() => {})
      const reloadMs = Date.now() - t0
      const atA = await registryAndMemory(a, timeout)
      const task = await stage.honestTask()
      const others = everyTab ? await stage.othersIntact({ timeout }) : undefined
      probe = await tabProbe(a)
      return {
        reloadMs,
        ...atA,
        agentsBefore: baseline.agents,
        task: task.status,
        ...(others != null ? { others } : {}),
        ok: good(atA) && task.status === 'succeeded' && (others?.ok ?? true)
      }
    },
    /**
     * The tabs beside A: B reloaded (it then donates again, as before the attack) and a new tab
     * of a fresh profile each find the registry's agents and the shared namespace's value.
     */
    async othersIntact({ timeout = 15_000 } = {}) {
      await b.reload()
      await waitForApi(b)
      stage.idB = await b.evaluate(() => window.zerostate.peerId)
      await b.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
      const atB = await registryAndMemory(b, timeout)
      const donorAgain = await a
        .waitForFunction((id) => window.zerostate.peers().some((p) => p.id === id && p.donating && p.capabilities.includes('word-count')), stage.idB, {
          timeout: 20_000
        })
        .then(() => true)
        .catch(() => false)
      const c = await mesh.newPeer()
      const atNewTab = await registryAndMemory(c, timeout).finally(() => c.context().close())
      return { b: atB, newTab: atNewTab, bDonatesAgain: donorAgain, ok: good(atB) && good(atNewTab) && donorAgain }
    },
    /**
     * Run `attack` while measuring A. `until` (optional) is awaited after the attack
     * returns (e.g. the strike showing in A's metrics) before the window closes.
     */
    async measure(attack, { until } = {}) {
      const heapBeforeMB = await probe.heapMB({ gc: true })
      await probe.reset()
      await probe.startPings([stage.idB], 250)
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
  return stage
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
