// Cost of tracing (issue 15): one-step tasks from a submitter to one donor over the
// in-memory task transport (real orchestrator, dispatcher, donor service, task protocol
// with schema validation and JSON on every message), tracing off vs on in the same run,
// rounds interleaved. "On" means: the submitter records run/step/route/attempt spans,
// the donor records its five spans and sends them with the result, then signs the bundles
// it sent in the last SEAL_DELAY ms in one seal (Ed25519, profile key); the submitter
// verifies them when idle (a timer in Node) or when the trace is read. After each "on"
// run, every trace is read (settled): that verification time is reported per step apart.
// Also: bytes of trace data per step on the wire (the offer's traceparent, the result's
// spans, the seals). The in-memory figures are the worst case (both peers on one thread, a
// step costs ~1 ms of CPU in all). Then the issue's measure in real tabs (observe-remote.mjs).
// Writes bench/results/observe.json. Run: npm run bench:observe (REMOTE=0: in-memory only)
import '../src/lib/core/polyfills.ts'
import { loadIdentity, Tracer } from '../src/lib/core/index.ts'
import { createOrchestrator, donorService, MemoryTaskNetwork } from '../src/lib/orchestrator/index.ts'
import { agent, catalogOf, fnExecutor, peer } from '../src/lib/orchestrator/test-fixtures.ts'
import { parseTaskMessage, taskProtocolDefinition } from '../src/lib/orchestrator/dispatch/task-protocol.ts'
import { fmt, summary, writeResults } from './stats.mjs'
import { measureRemote } from './observe-remote.mjs'

const echo = agent('echo', ['text-summarization'], 0)
const ROUNDS = Number(process.env.ROUNDS ?? 4)
const SEQUENTIAL = Number(process.env.SEQUENTIAL ?? 200)
const PARALLEL = Number(process.env.PARALLEL ?? 400)
const CONCURRENCY = 16
const SEAL_DELAY = Number(process.env.SEAL_DELAY ?? 50)

async function setup(traced) {
  const net = new MemoryTaskNetwork()
  const d = net.transport('donor')
  await d.start()
  const donorTracer = traced
    ? new Tracer({ peer: 'donor', identity: process.env.NOSIGN ? undefined : await loadIdentity(), sealDelayMs: SEAL_DELAY })
    : undefined
  await donorService()({ transport: d, executor: fnExecutor({ [echo.id]: (i) => ({ summary: i }) }, 64), tracer: donorTracer }).start()
  // Room for every trace of a run: bundles are verified when idle, after the run's burst.
  const tracer = traced ? new Tracer({ peer: 'submitter', maxTraces: 2048 }) : undefined
  const orch = createOrchestrator({
    catalog: catalogOf([echo]),
    peers: { peers: () => [peer('donor', { freeWorkers: 64 })] },
    transport: net.transport('submitter'),
    tracer
  })
  await orch.start()
  return { net, orch, tracer }
}

const submit = (orch, i) => orch.submit({ description: 'Summarize this', agent: echo.id, input: `text ${i}`, preferences: { verification: 'none' } }).done

async function measure(traced) {
  const { net, orch, tracer } = await setup(traced)
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
  // CPU per task (this process: both peers): what a loaded machine's wall clock hides.
  const cpu = process.cpuUsage(c0)
  const cpuMsPerTask = (cpu.user + cpu.system) / 1000 / PARALLEL
  // Reading every trace: the donors' spans still unverified are verified now (seals still on their way awaited).
  const pendingAtEnd = tracer?.pending() ?? 0
  const r0 = performance.now()
  await tracer?.settle(undefined, 2000)
  const readMs = performance.now() - r0
  // Trace bytes per step: the offer's traceparent and the result's signed spans, as JSON on the wire.
  let traceBytes = 0
  let results = 0
  let seals = 0
  for (const { message } of net.log) {
    if (message.type === 'offer' && message.traceparent != null) traceBytes += JSON.stringify({ traceparent: message.traceparent }).length - 2
    if (message.type === 'result') {
      results++
      if (message.spans != null) traceBytes += JSON.stringify({ spans: message.spans }).length - 2
    }
    if (message.type === 'spans-seal') {
      seals++
      traceBytes += JSON.stringify(message).length
    }
  }
  await orch.stop()
  return {
    lat,
    tps,
    traceBytesPerStep: results > 0 ? traceBytes / results : 0,
    cpuMsPerTask,
    stepsPerSeal: seals > 0 ? results / seals : 0,
    pendingAtEnd,
    readMsPerPending: pendingAtEnd > 0 ? readMs / pendingAtEnd : 0,
    rejected: tracer?.stats.foreignRejected ?? 0,
    rejectedBy: tracer?.stats.rejectedBy ?? {},
    accepted: tracer?.stats.foreignAccepted ?? 0
  }
}

const off = { lat: [], tps: [], bytes: 0, cpu: [] }
const on = { lat: [], tps: [], bytes: 0, cpu: [], accepted: 0, rejected: 0, rejectedBy: {}, stepsPerSeal: [], pendingAtEnd: [], readMs: [] }
for (let r = 0; r < ROUNDS; r++) {
  // ONLY=on|off runs one side (for a CPU profile of it).
  const sides = process.env.ONLY === 'on' ? [true] : process.env.ONLY === 'off' ? [false] : r % 2 === 0 ? [false, true] : [true, false]
  for (const traced of sides) {
    const m = await measure(traced)
    const into = traced ? on : off
    into.lat.push(...m.lat)
    into.tps.push(m.tps)
    into.cpu.push(m.cpuMsPerTask)
    into.bytes = m.traceBytesPerStep
    if (traced) {
      on.accepted += m.accepted
      on.rejected += m.rejected
      for (const [why, n] of Object.entries(m.rejectedBy)) on.rejectedBy[why] = (on.rejectedBy[why] ?? 0) + n
      on.stepsPerSeal.push(m.stepsPerSeal)
      on.pendingAtEnd.push(m.pendingAtEnd)
      if (m.pendingAtEnd > 0) on.readMs.push(m.readMsPerPending)
    }
  }
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length

/**
 * The tracing work of one step, by part, in a tight loop (CPU µs per step): what the task
 * runs above cannot tell apart on a loaded machine. Submitter: its run/step/route/attempt
 * spans; donor: its five spans and the bundle; wire: encoding and checking the result's
 * bundle (both ends); seal: the bundle's digest and its share of one signature per `batch`
 * steps; verify: checking seals and bundles and storing the spans.
 */
async function parts(steps = 2000, batch = 16) {
  const sub = new Tracer({ peer: 'submitter', maxTraces: steps + 1 })
  const donor = new Tracer({ peer: 'donor', identity: await loadIdentity(), sealDelayMs: 1e9 })
  const cpu = () => {
    const c = process.cpuUsage()
    return (c.user + c.system) / 1000
  }
  const seals = []
  const out = { submitter: 0, donor: 0, wire: 0, seal: 0, verify: 0 }
  const attempts = []
  let t = cpu()
  for (let i = 0; i < steps; i++) {
    const run = sub.start('run', undefined, { 'task.id': `t-${i}` })
    const step = sub.start('step', run, { 'step.id': 's1', capabilities: 'text-summarization' })
    sub.start('route', step, { 'step.id': 's1', attempt: 1 }).end('ok', { 'agent.id': 'a'.repeat(64), 'peer.id': 'donor' })
    const attempt = sub.start('dispatch.attempt', step, { 'step.id': 's1', attempt: 1, 'agent.id': 'a'.repeat(64), 'peer.id': 'donor' }, 'client')
    attempts.push(attempt)
  }
  out.submitter = cpu() - t
  const bundles = []
  let flushed = 0
  t = cpu()
  for (let i = 0; i < steps; i++) {
    // As donor-service records them (agent and attempt are the parent attempt's attributes).
    const s = donor.start('donor.step', attempts[i], { 'step.id': 's1' }, 'server')
    const spans = [s, donor.start('donor.accept', s)]
    spans[1].end()
    for (const name of ['donor.queue', 'donor.run', 'donor.answer']) {
      const c = donor.start(name, s)
      c.end()
      spans.push(c)
    }
    s.end()
    bundles.push(donor.seal(s.traceId, spans, 'submitter', (x) => seals.push(x)))
    if ((i + 1) % batch === 0) {
      // Sealing (the digests, then the signature when awaited below) is counted apart.
      const f = cpu()
      donor.flushSeals()
      flushed += cpu() - f
    }
  }
  out.donor = cpu() - t - flushed
  t = cpu()
  await new Promise((r) => setTimeout(r, 0))
  while (seals.length < steps / batch) await new Promise((r) => setTimeout(r, 1))
  out.seal = flushed + cpu() - t
  const base = { type: 'result', rid: 't-0123456789abcdef01234567_s1#1', output: { summary: 'x' }, ms: 1 }
  t = cpu()
  for (let i = 0; i < bundles.length; i++) parseTaskMessage(JSON.parse(new TextDecoder().decode(taskProtocolDefinition.encode({ ...base }))))
  const plain = cpu() - t
  t = cpu()
  const received = bundles.map((b) => parseTaskMessage(JSON.parse(new TextDecoder().decode(taskProtocolDefinition.encode({ ...base, spans: b })))))
  out.wire = cpu() - t - plain
  for (const m of received) sub.receive('donor', m.spans)
  t = cpu()
  for (const seal of seals) sub.receiveSeal('donor', seal)
  await sub.settle(undefined, 1000)
  out.verify = cpu() - t
  if (sub.stats.foreignAccepted !== steps) throw new Error(`verified ${sub.stats.foreignAccepted} of ${steps} bundles`)
  return Object.fromEntries(Object.entries(out).map(([k, ms]) => [k, (ms * 1000) / steps]))
}
const perStep = await parts()
const result = {
  transport: 'in-memory (one donor, 64 workers, echo agent)',
  rounds: ROUNDS,
  sequentialPerRound: SEQUENTIAL,
  parallelPerRound: PARALLEL,
  concurrency: CONCURRENCY,
  off: { latency: summary(off.lat), tasksPerS: mean(off.tps), cpuMsPerTask: mean(off.cpu) },
  sealDelayMs: SEAL_DELAY,
  on: {
    latency: summary(on.lat),
    tasksPerS: mean(on.tps),
    cpuMsPerTask: mean(on.cpu),
    traceBytesPerStep: on.bytes,
    stepsPerSeal: mean(on.stepsPerSeal),
    bundlesAccepted: on.accepted,
    bundlesRejected: on.rejected,
    rejectedBy: on.rejectedBy,
    unverifiedAtEndOfRun: mean(on.pendingAtEnd),
    verifyOnReadMsPerBundle: on.readMs.length > 0 ? mean(on.readMs) : 0
  },
  tracingCpuUsPerStep: { ...perStep, total: Object.values(perStep).reduce((a, b) => a + b, 0) },
  p50DeltaMs: summary(on.lat).p50 - summary(off.lat).p50,
  throughputCostPct: (1 - mean(on.tps) / mean(off.tps)) * 100,
  cpuCostPct: (mean(on.cpu) / mean(off.cpu) - 1) * 100,
  loadAverage: (await import('node:os')).loadavg()
}
console.log(`tracing off: p50 ${fmt(result.off.latency)}  ${result.off.tasksPerS.toFixed(0)} tasks/s  ${result.off.cpuMsPerTask.toFixed(3)} ms CPU per task`)
console.log(
  `tracing on:  p50 ${fmt(result.on.latency)}  ${result.on.tasksPerS.toFixed(0)} tasks/s  ${result.on.cpuMsPerTask.toFixed(3)} ms CPU per task  ${result.on.traceBytesPerStep.toFixed(0)} B of trace per step`
)
console.log(
  `one seal per ${result.on.stepsPerSeal.toFixed(1)} steps; ${result.on.bundlesAccepted} bundles verified, ${result.on.bundlesRejected} rejected; ` +
    `${result.on.unverifiedAtEndOfRun.toFixed(0)} still unverified at the end of a run, verified on read at ${result.on.verifyOnReadMsPerBundle.toFixed(3)} ms each`
)
console.log(
  `p50 +${result.p50DeltaMs.toFixed(3)} ms, throughput cost ${result.throughputCostPct.toFixed(1)}%, CPU per task +${result.cpuCostPct.toFixed(1)}% (goal: ≤ 0.1 ms, ≤ 5%); load ${result.loadAverage.map((x) => x.toFixed(1)).join(' ')}`
)
console.log(
  `tracing work per step (CPU µs, in a loop): ${Object.entries(result.tracingCpuUsPerStep)
    .map(([k, us]) => `${k} ${us.toFixed(1)}`)
    .join(', ')}`
)
// The same in real tabs (issue 15's measure): remote one-step latency and 1-donor throughput,
// tracing and metrics off / tracing / metrics / both, in the same run. REMOTE=0 skips it.
if (process.env.REMOTE !== '0') {
  console.log('in real tabs (two Chromium tabs, the real relay, WebRTC):')
  result.remote = await measureRemote()
  const r = result.remote
  for (const [k, x] of Object.entries(r.settings))
    console.log(
      `  ${k.padEnd(7)} p50 ${fmt(x.latency)}  ${x.tasksPerS.toFixed(0)} tasks/s  main thread µs/task submitter ${x.mainThreadUsPerTask.submitter.toFixed(0)} donor ${x.mainThreadUsPerTask.donor.toFixed(0)}`
    )
  for (const [k, c] of Object.entries(r.cost))
    console.log(
      `  cost of ${k.padEnd(7)}: p50 ${c.p50DeltaMs >= 0 ? '+' : ''}${c.p50DeltaMs.toFixed(3)} ms, throughput ${c.throughputCostPct.toFixed(1)}%, main thread µs/task submitter ${c.mainThreadUsPerTask.submitter.toFixed(0)} donor ${c.mainThreadUsPerTask.donor.toFixed(0)} (goal ≤ 0.1 ms, ≤ 5%)`
    )
  console.log(`  load ${r.loadAverage.map((x) => x.toFixed(1)).join(' ')}`)
}
writeResults('observe', result)
