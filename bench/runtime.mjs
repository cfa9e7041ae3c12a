// Runtime benchmark in Chromium: cold start, warm calls, the Comlink baseline, compile of 1 MB and
// 16 MB modules, throughput, runaway kill latency and the CPU a terminated stuck worker keeps burning.
// Serves a production build of test/fixtures/runtime-page. Writes bench/results/runtime.json.
import { summary, writeResults } from './stats.mjs'
import { tmpdir } from 'node:os'
import { chromium } from 'playwright-core'
import { startBuiltRuntimePage, CHROMIUM_ARGS } from '../test/fixtures/runtime-page/server.mjs'
import { modules, bigModule } from '../test/fixtures/runtime-wat.mjs'

const site = await startBuiltRuntimePage(`${tmpdir()}/zerostate-runtime-bench`)
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS })
const page = await browser.newPage()
page.on('pageerror', (e) => console.error('page error:', e.message))
await page.goto(site.url)
await page.waitForFunction(() => window.runtimeReady === true)

const wasm = { echo: [...modules.jsonEcho()], loop: [...modules.wasiLoop()], mb1: [...bigModule(1 << 20)], mb16: [...bigModule((16 << 20) - 4096)] }
const results = await page.evaluate(async (wasm) => {
  const { createAgentRuntime, signPackage, bundledAgents, loadBundledAgent, MemoryAgentStore } = window.runtimeLib
  const identity = await window.testIdentity()
  const manifest = (abi) => ({ name: 'bench', version: '1.0.0', description: '', capabilities: ['bench'], abi, price: 0 })
  const pkg = async (bytes, abi) => {
    const w = new Uint8Array(bytes)
    const s = await signPackage(identity, manifest(abi), w)
    return { ...s, wasm: w }
  }
  const echo = await pkg(wasm.echo, 'json-v1')
  const loop = await pkg(wasm.loop, 'wasi-preview1')
  const store = new MemoryAgentStore()
  const agents = await bundledAgents()
  const wordStats = await loadBundledAgent(
    agents.find((a) => a.manifest.name === 'word-stats'),
    store
  )
  const out = {}

  // Cold start: new pool of 1 + compile + instantiate + first call.
  const cold = [],
    coldWasi = []
  for (let i = 0; i < 15; i++) {
    for (const [list, p, input] of [
      [cold, echo, { i }],
      [coldWasi, wordStats, 'Cold start of a WASI agent.']
    ]) {
      const t = performance.now()
      const rt = createAgentRuntime({ workers: 1 })
      await rt.run(p, input)
      list.push(performance.now() - t)
      await rt.stop()
    }
  }
  out.coldStartMs = cold
  out.coldStartWasiMs = coldWasi

  // Warm calls through the default pool.
  const rt = createAgentRuntime()
  await rt.start()
  for (let i = 0; i < 50; i++) {
    await rt.run(echo, i)
    await rt.run(wordStats, 'warm up')
  }
  const warm = [],
    warmWasi = []
  for (let i = 0; i < 500; i++) {
    const t = performance.now()
    await rt.run(echo, { i })
    warm.push(performance.now() - t)
  }
  for (let i = 0; i < 300; i++) {
    const t = performance.now()
    await rt.run(wordStats, 'The quick brown fox. It jumps!')
    warmWasi.push(performance.now() - t)
  }
  out.warmCallMs = warm
  out.warmCallWasiMs = warmWasi

  // Comlink no-op round trip (baseline).
  const bare = window.spawnBareWorker()
  for (let i = 0; i < 50; i++) await bare.remote.ping()
  const rtt = []
  for (let i = 0; i < 1000; i++) {
    const t = performance.now()
    await bare.remote.ping()
    rtt.push(performance.now() - t)
  }
  bare.terminate()
  out.comlinkNoopMs = rtt

  // Throughput of trivial calls with the default pool.
  const N = 3000
  let t = performance.now()
  await Promise.all(Array.from({ length: N }, (_, i) => rt.run(echo, i)))
  out.throughput = { calls: N, workers: rt.stats().workers, perSecond: Math.round(N / ((performance.now() - t) / 1000)) }

  // Compile: main-thread WebAssembly.compile, and the first sandbox call (transfer + validate + cap + compile + run).
  out.compile = {}
  for (const [name, bytes] of [
    ['1MB', wasm.mb1],
    ['16MB', wasm.mb16]
  ]) {
    const w = new Uint8Array(bytes)
    const p = await pkg(bytes, 'json-v1')
    const compile = [],
      firstCall = []
    for (let i = 0; i < 3; i++) {
      t = performance.now()
      await WebAssembly.compile(w)
      compile.push(performance.now() - t)
      const one = createAgentRuntime({ workers: 1 })
      await one.start()
      t = performance.now()
      await one.run(p, 1)
      firstCall.push(performance.now() - t)
      await one.stop()
    }
    out.compile[name] = { bytes: w.byteLength, compileMs: compile, firstSandboxCallMs: firstCall }
  }

  // Kill latency: deadline → rejection, and → next call done on a fresh worker.
  const kill = createAgentRuntime({ workers: 1 })
  await kill.start()
  await kill.run(echo, 0)
  const overshoot = [],
    freshReady = []
  for (let i = 0; i < 10; i++) {
    const deadline = 100
    t = performance.now()
    await kill.run(loop, '', { timeoutMs: deadline }).catch(() => undefined)
    const rejected = performance.now()
    overshoot.push(rejected - t - deadline)
    await kill.run(echo, 1)
    freshReady.push(performance.now() - rejected)
  }
  out.kill = { deadlineMs: 100, rejectionAfterDeadlineMs: overshoot, nextCallOnFreshWorkerMs: freshReady }
  await kill.stop()
  await rt.stop()

  // CPU a terminated stuck worker keeps burning: probe workers (one per core) count loop
  // iterations per 50 ms; compare the rate after terminating a runaway with the idle baseline.
  const probeSrc =
    'let stop = false; onmessage = () => { const t0 = performance.now(); let n = 0, last = t0, slots = []; while (performance.now() - t0 < 4000) { n++; const now = performance.now(); if (now - last >= 50) { slots.push(n); n = 0; last = now } } postMessage(slots) }'
  const probeUrl = URL.createObjectURL(new Blob([probeSrc], { type: 'text/javascript' }))
  const cores = navigator.hardwareConcurrency
  const runProbes = () =>
    Promise.all(
      Array.from(
        { length: cores },
        () =>
          new Promise((res) => {
            const w = new Worker(probeUrl)
            w.onmessage = (e) => {
              w.terminate()
              res(e.data)
            }
            w.postMessage(0)
          })
      )
    )
  const sum = (arrs) => arrs[0].map((_, i) => arrs.reduce((s, a) => s + (a[i] ?? 0), 0))
  const baseline = sum(await runProbes())
  const baseRate = baseline.slice(2).reduce((a, b) => a + b, 0) / (baseline.length - 2)
  const stuck = createAgentRuntime({ workers: 1 })
  await stuck.start()
  const probes = runProbes()
  await new Promise((r) => setTimeout(r, 300))
  const tKill0 = performance.now()
  await stuck.run(loop, '', { timeoutMs: 200 }).catch(() => undefined)
  const killAt = performance.now() - tKill0 + 300
  const after = sum(await probes)
  await stuck.stop()
  const slotMs = 50
  const killSlot = Math.floor(killAt / slotMs)
  const rel = after.map((n) => n / baseRate)
  let recoveredSlot = rel.length
  for (let i = killSlot; i < rel.length - 2; i++)
    if (rel[i] > 0.9 && rel[i + 1] > 0.9 && rel[i + 2] > 0.9) {
      recoveredSlot = i
      break
    }
  out.stuckWorkerCpu = {
    cores,
    slotMs,
    terminatedAtMs: Math.round(killAt),
    probeRateWhileRunningPct: Math.round(
      (100 * rel.slice(Math.floor(300 / slotMs) + 1, killSlot).reduce((a, b) => a + b, 0)) / Math.max(1, killSlot - Math.floor(300 / slotMs) - 1)
    ),
    probeRateFirstSecondAfterTerminatePct: Math.round((100 * rel.slice(killSlot, killSlot + 20).reduce((a, b) => a + b, 0)) / 20),
    burnsAfterTerminateMs: (recoveredSlot - killSlot) * slotMs,
    probeRatePct: rel.map((x) => Math.round(x * 100))
  }
  return out
}, wasm)

const report = {
  when: new Date().toISOString(),
  browser: `chromium ${browser.version()}`,
  coldStartMs: summary(results.coldStartMs),
  coldStartWasiAgentMs: summary(results.coldStartWasiMs),
  warmCallMs: summary(results.warmCallMs),
  warmCallWasiAgentMs: summary(results.warmCallWasiMs),
  comlinkNoopRoundTripMs: summary(results.comlinkNoopMs),
  throughput: results.throughput,
  compile: Object.fromEntries(
    Object.entries(results.compile).map(([k, v]) => [k, { bytes: v.bytes, compileMs: summary(v.compileMs), firstSandboxCallMs: summary(v.firstSandboxCallMs) }])
  ),
  kill: {
    deadlineMs: results.kill.deadlineMs,
    rejectionAfterDeadlineMs: summary(results.kill.rejectionAfterDeadlineMs),
    nextCallOnFreshWorkerMs: summary(results.kill.nextCallOnFreshWorkerMs)
  },
  stuckWorkerCpu: results.stuckWorkerCpu,
  goals: {}
}
report.goals = {
  'cold ≤ 60 ms (p50)': report.coldStartMs.p50 <= 60,
  'warm ≤ 1 ms (p50)': report.warmCallMs.p50 <= 1,
  'rejection ≤ deadline + 50 ms (p95)': report.kill.rejectionAfterDeadlineMs.p95 <= 50
}
writeResults('runtime', report)
const line = (label, s) => console.log(`${label.padEnd(44)} p50 ${String(s.p50).padStart(8)} ms   p95 ${String(s.p95).padStart(8)} ms`)
line('cold start (spawn+compile+inst+call, json-v1)', report.coldStartMs)
line('cold start (bundled WASI word-stats)', report.coldStartWasiAgentMs)
line('warm call (json-v1 echo)', report.warmCallMs)
line('warm call (WASI word-stats)', report.warmCallWasiAgentMs)
line('Comlink no-op round trip', report.comlinkNoopRoundTripMs)
for (const [k, v] of Object.entries(report.compile)) {
  line(`compile ${k} (WebAssembly.compile)`, v.compileMs)
  line(`first sandbox call ${k}`, v.firstSandboxCallMs)
}
console.log(`throughput: ${report.throughput.perSecond} calls/s with ${report.throughput.workers} worker(s)`)
line('runaway: rejection after deadline', report.kill.rejectionAfterDeadlineMs)
line('runaway: next call done on fresh worker', report.kill.nextCallOnFreshWorkerMs)
const c = report.stuckWorkerCpu
console.log(
  `stuck worker: probes at ${c.probeRateWhileRunningPct}% while it ran, ${c.probeRateFirstSecondAfterTerminatePct}% in the 1 s after terminate, back to >90% after ${c.burnsAfterTerminateMs} ms`
)
console.log('goals:', report.goals)
await browser.close()
await site.close()
