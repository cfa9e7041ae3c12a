// Cost of tracing and metrics in real tabs (issue 15): bench:tasks' remote one-step task
// (a submitter tab, one donor tab with one worker, the real relay, WebRTC between them) with
// tracing and metrics off, tracing alone, metrics alone, and both on (zerostate.setObservability
// on both tabs), rotated each round of the same run: sequential latency (p50) and 1-donor
// throughput (a window of 256 tasks in flight), plus each tab's main-thread time per task
// (CDP Performance.getMetrics TaskDuration).
// After an "on" phase the submitter verifies the donor's span bundles (when idle); the next
// phase starts once none wait, and the time that took is reported, so no side pays the other's
// verification. Run by bench/observe.mjs (npm run bench:observe) or alone:
// node --import tsx bench/observe-remote.mjs (writes nothing alone; prints the figures).
import { startMesh, waitForFullMesh } from '../test/harness.mjs'
import { loadavg } from 'node:os'
import { summary } from './stats.mjs'

// Many short blocks, the settings rotated block by block, so each setting samples the same
// (shared, loaded) machine: a long round per setting measured the load's drift, not tracing.
const ROUNDS = Number(process.env.REMOTE_ROUNDS ?? 12)
const LATENCY_N = Number(process.env.REMOTE_LATENCY_N ?? 20)
const THROUGHPUT_N = Number(process.env.REMOTE_THROUGHPUT_N ?? 400)
const WINDOW = 256

async function taskSeconds(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics')
  return metrics.find((m) => m.name === 'TaskDuration')?.value ?? 0
}

/** Run the remote measurement; returns the figures (off and on). */
export async function measureRemote(log = console.log) {
  const mesh = await startMesh()
  try {
    const submitter = await mesh.newPeer()
    const donor = await mesh.newPeer()
    const ids = await waitForFullMesh([submitter, donor], 60_000)
    const hashId = await submitter.evaluate(() => window.zerostate.agents.list({ capability: 'hashing' })[0]?.id)
    if (hashId == null) throw new Error('the bundled hashing agent is missing: run npm run build')
    await donor.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))
    await submitter.waitForFunction((id) => window.zerostate.peers().some((p) => p.id === id && p.donating && p.freeWorkers > 0), ids[1], { timeout: 30_000 })
    const cdps = await Promise.all(
      [submitter, donor].map(async (p) => {
        const c = await p.context().newCDPSession(p)
        await c.send('Performance.enable')
        return c
      })
    )
    /** Both tabs to one setting ({ tracing, metrics }); checked back, so a wrong switch cannot go unseen. */
    const set = async (o) => {
      const seen = await Promise.all(
        [submitter, donor].map((p) =>
          p.evaluate((o) => {
            window.zerostate.setObservability(o)
            return window.zerostate.observability()
          }, o)
        )
      )
      for (const x of seen)
        if (x.tracing !== o.tracing || x.metrics !== o.metrics) throw new Error(`observability ${JSON.stringify(x)}, wanted ${JSON.stringify(o)}`)
    }
    const sequential = (n) =>
      submitter.evaluate(
        async ([agent, n]) => {
          const times = []
          for (let i = 0; i < n; i++) {
            const t0 = performance.now()
            const r = await window.zerostate.submit({ description: 'hash', agent, input: `task ${i}` }).done
            times.push(performance.now() - t0)
            if (r.status !== 'succeeded') throw new Error('task failed')
          }
          return times
        },
        [hashId, n]
      )
    const throughput = (n) =>
      submitter.evaluate(
        async ([agent, total, width]) => {
          let next = 0
          let failed = 0
          const t0 = performance.now()
          const lane = async () => {
            while (next < total) {
              const i = next++
              try {
                await window.zerostate.submit({ description: 'hash', agent, input: `t${i}` }).done
              } catch {
                failed++
              }
            }
          }
          await Promise.all(Array.from({ length: width }, lane))
          return { perSecond: total / ((performance.now() - t0) / 1000), failed }
        },
        [hashId, n, WINDOW]
      )
    /** Wait until the submitter has no donor bundle left to verify; ms waited. */
    const drain = () =>
      submitter.evaluate(async () => {
        const t0 = performance.now()
        while ((window.zerostate.metrics()['trace.pending'] ?? 0) > 0 && performance.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 20))
        return performance.now() - t0
      })

    // Warm-up: both paths once (agent fetched, streams open, code hot).
    for (const on of [true, false]) {
      await set({ tracing: on, metrics: on })
      await sequential(20)
      await throughput(100)
      await drain()
    }
    // Four settings, rotated each round: both off, tracing alone, metrics alone, both on.
    const SETTINGS = {
      off: { tracing: false, metrics: false },
      tracing: { tracing: true, metrics: false },
      metrics: { tracing: false, metrics: true },
      on: { tracing: true, metrics: true }
    }
    const names = Object.keys(SETTINGS)
    const sides = Object.fromEntries(names.map((k) => [k, { lat: [], tps: [], failed: 0, cpuSub: [], cpuDonor: [], drainMs: [] }]))
    for (let r = 0; r < ROUNDS; r++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(j + r) % names.length]
        const s = sides[name]
        await set(SETTINGS[name])
        s.lat.push(...(await sequential(LATENCY_N)))
        const [a0, b0] = await Promise.all(cdps.map(taskSeconds))
        const t = await throughput(THROUGHPUT_N)
        const drained = await drain()
        const [a1, b1] = await Promise.all(cdps.map(taskSeconds))
        s.tps.push(t.perSecond)
        s.failed += t.failed
        // Main-thread time per task, the verification after the run included.
        s.cpuSub.push(((a1 - a0) * 1e6) / THROUGHPUT_N)
        s.cpuDonor.push(((b1 - b0) * 1e6) / THROUGHPUT_N)
        s.drainMs.push(drained)
      }
      log(`  round ${r + 1} of ${ROUNDS}: ${names.map((k) => `${k} ${sides[k].tps.at(-1).toFixed(0)}/s`).join(', ')}`)
    }
    const traced = await submitter.evaluate(() => {
      const m = window.zerostate.metrics()
      const by = Object.fromEntries(
        Object.entries(m)
          .filter(([k]) => k.startsWith('trace.rejected.'))
          .map(([k, n]) => [k.slice(15), n])
      )
      return { accepted: m['trace.foreignAccepted'], rejected: m['trace.foreignRejected'], rejectedBy: by }
    })
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
    const out = {}
    for (const [k, s] of Object.entries(sides))
      out[k] = {
        latency: summary(s.lat),
        // The median block: a block slowed by another engineer's run on the shared cores counts as one block.
        tasksPerS: median(s.tps),
        tasksPerSMean: mean(s.tps),
        tasksPerSByRound: s.tps.map((x) => Math.round(x)),
        failed: s.failed,
        mainThreadUsPerTask: { submitter: median(s.cpuSub), donor: median(s.cpuDonor) },
        verifyDrainMs: summary(s.drainMs)
      }
    const cost = (k) => ({
      p50DeltaMs: out[k].latency.p50 - out.off.latency.p50,
      throughputCostPct: (1 - out[k].tasksPerS / out.off.tasksPerS) * 100,
      mainThreadUsPerTask: {
        submitter: out[k].mainThreadUsPerTask.submitter - out.off.mainThreadUsPerTask.submitter,
        donor: out[k].mainThreadUsPerTask.donor - out.off.mainThreadUsPerTask.donor
      }
    })
    return {
      transport: 'two Chromium tabs (one context each), the real relay, WebRTC; donor 1 worker, bundled hash agent',
      rounds: ROUNDS,
      latencyTasksPerRound: LATENCY_N,
      throughputTasksPerRound: THROUGHPUT_N,
      window: WINDOW,
      settings: out,
      spanBundles: traced,
      // Each against "off" (tracing and metrics off) of the same run.
      cost: { on: cost('on'), tracing: cost('tracing'), metrics: cost('metrics') },
      loadAverage: loadavg()
    }
  } finally {
    await mesh.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await measureRemote()
  console.log(JSON.stringify(r, null, 2))
}
