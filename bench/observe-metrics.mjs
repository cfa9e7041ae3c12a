// Cost of metrics (issue 15): one-step tasks from a submitter to one donor over the in-memory
// task transport (real orchestrator, dispatcher, donor service, task protocol), the peer's
// metrics registry off vs on in the same run, rounds interleaved. "On" is what a tab does:
// every task timed (latency by outcome, plan time), every step outcome recorded (step latency
// per agent, bytes), and the Dashboard's sampler cutting a snapshot to a sample every second.
// Also, in a tight loop: ns per histogram observe and counter inc, and µs per snapshot of a
// registry the size of a tab's (app metrics + libp2p's + gossipsub's series).
// Writes bench/results/observe-metrics.json. Run: npm run bench:observe:metrics
import '../src/lib/core/polyfills.ts'
import { LATENCY_MS_BUCKETS, MetricsRegistry } from '../src/lib/core/index.ts'
import { appMetrics } from '../src/lib/app/metrics-wiring.ts'
import { createOrchestrator, donorService, MemoryTaskNetwork } from '../src/lib/orchestrator/index.ts'
import { agent, catalogOf, fnExecutor, peer } from '../src/lib/orchestrator/test-fixtures.ts'
import { sampleOf } from '../src/lib/ui/metrics-samples.ts'
import { fmt, summary, writeResults } from './stats.mjs'

const echo = agent('echo', ['text-summarization'], 0)
const ROUNDS = Number(process.env.ROUNDS ?? 4)
const SEQUENTIAL = Number(process.env.SEQUENTIAL ?? 200)
const PARALLEL = Number(process.env.PARALLEL ?? 400)
const CONCURRENCY = 16

async function setup(metricsOn) {
  const net = new MemoryTaskNetwork()
  const d = net.transport('donor')
  await d.start()
  await donorService()({ transport: d, executor: fnExecutor({ [echo.id]: (i) => ({ summary: i }) }, 64) }).start()
  const metered = appMetrics({ enabled: metricsOn })
  const orch = createOrchestrator({
    catalog: catalogOf([echo]),
    peers: { peers: () => [peer('donor', { freeWorkers: 64 })] },
    transport: net.transport('submitter'),
    outcomes: metered.outcomes({ record() {} })
  })
  await orch.start()
  metered.attach({ orchestrator: orch })
  // The Dashboard's sampler, as in a tab (only while metrics are on).
  const sampler = metricsOn ? setInterval(() => sampleOf(metered.snapshot(), 'bench', true), 1000) : undefined
  return { orch, metered, stop: () => clearInterval(sampler) }
}

const submit = (orch, i) => orch.submit({ description: 'Summarize this', agent: echo.id, input: `text ${i}`, preferences: { verification: 'none' } }).done

async function measure(metricsOn) {
  const { orch, metered, stop } = await setup(metricsOn)
  for (let i = 0; i < 20; i++) await submit(orch, i) // warm-up
  const lat = []
  for (let i = 0; i < SEQUENTIAL; i++) {
    const t = performance.now()
    await submit(orch, i)
    lat.push(performance.now() - t)
  }
  let next = 0
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < PARALLEL) await submit(orch, next++)
    })
  )
  const tps = PARALLEL / ((performance.now() - t0) / 1000)
  const cpu = process.cpuUsage(c0)
  stop()
  const counted = metered.record()['zs_tasks_total{status="succeeded"}'] ?? 0
  if (metricsOn && counted !== 20 + SEQUENTIAL + PARALLEL) throw new Error(`counted ${counted} tasks, ran ${20 + SEQUENTIAL + PARALLEL}`)
  await orch.stop()
  return { lat, tps, cpuMsPerTask: (cpu.user + cpu.system) / 1000 / PARALLEL }
}

/** ns per update and µs per snapshot, in a tight loop. */
function micro() {
  const r = new MetricsRegistry()
  const h = r.histogram('h', { labelNames: ['agent'], buckets: LATENCY_MS_BUCKETS })
  const c = r.counter('c', { labelNames: ['status'] })
  const N = 1_000_000
  const labels = { agent: 'abc' }
  let t = performance.now()
  for (let i = 0; i < N; i++) h.observe(i % 3000, labels)
  const observeNs = ((performance.now() - t) * 1e6) / N
  const ok = { status: 'succeeded' }
  t = performance.now()
  for (let i = 0; i < N; i++) c.inc(1, ok)
  const incNs = ((performance.now() - t) * 1e6) / N
  // A registry the size of a tab's: ~15 app metrics, ~40 libp2p series, ~150 gossipsub metrics.
  const big = appMetrics().registry
  for (let i = 0; i < 40; i++) big.gauge(`libp2p_m${i}`, { labelNames: ['key'], collect: () => ({ a: 1, b: 2 }) })
  for (let i = 0; i < 150; i++) big.gauge(`gossipsub_m${i}`).set(i)
  for (let i = 0; i < 10; i++) big.histogram(`gossipsub_h${i}`).observe(i)
  const S = 2000
  t = performance.now()
  for (let i = 0; i < S; i++) sampleOf(big.snapshot(), 'b', true)
  const snapshotUs = ((performance.now() - t) * 1000) / S
  return { observeNs, incNs, snapshotUs }
}

const off = { lat: [], tps: [], cpu: [] }
const on = { lat: [], tps: [], cpu: [] }
for (let r = 0; r < ROUNDS; r++) {
  for (const metricsOn of r % 2 === 0 ? [false, true] : [true, false]) {
    const m = await measure(metricsOn)
    const into = metricsOn ? on : off
    into.lat.push(...m.lat)
    into.tps.push(m.tps)
    into.cpu.push(m.cpuMsPerTask)
  }
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length
const costs = micro()
const result = {
  transport: 'in-memory (one donor, 64 workers, echo agent)',
  rounds: ROUNDS,
  sequentialPerRound: SEQUENTIAL,
  parallelPerRound: PARALLEL,
  concurrency: CONCURRENCY,
  off: { latency: summary(off.lat), tasksPerS: mean(off.tps), cpuMsPerTask: mean(off.cpu) },
  on: { latency: summary(on.lat), tasksPerS: mean(on.tps), cpuMsPerTask: mean(on.cpu) },
  micro: costs,
  load: (await import('node:os')).loadavg()[0]
}
result.cost = {
  p50Ms: result.on.latency.p50 - result.off.latency.p50,
  throughputPct: (100 * (result.off.tasksPerS - result.on.tasksPerS)) / result.off.tasksPerS,
  cpuMsPerTask: result.on.cpuMsPerTask - result.off.cpuMsPerTask
}
console.log(`metrics off: latency ${fmt(result.off.latency)}; ${result.off.tasksPerS.toFixed(0)} tasks/s; CPU ${result.off.cpuMsPerTask.toFixed(3)} ms/task`)
console.log(`metrics on:  latency ${fmt(result.on.latency)}; ${result.on.tasksPerS.toFixed(0)} tasks/s; CPU ${result.on.cpuMsPerTask.toFixed(3)} ms/task`)
console.log(
  `cost: p50 ${result.cost.p50Ms >= 0 ? '+' : ''}${result.cost.p50Ms.toFixed(3)} ms, throughput ${result.cost.throughputPct.toFixed(1)}% (goal ≤ 5%, ≤ 0.1 ms p50), CPU ${result.cost.cpuMsPerTask >= 0 ? '+' : ''}${result.cost.cpuMsPerTask.toFixed(3)} ms/task`
)
console.log(
  `micro: histogram observe ${costs.observeNs.toFixed(0)} ns, counter inc ${costs.incNs.toFixed(0)} ns, snapshot + sample of a tab-sized registry ${costs.snapshotUs.toFixed(0)} µs (once a second); load ${result.load.toFixed(1)}`
)
writeResults('observe-metrics', result)
