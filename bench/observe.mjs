// Cost of tracing (issue 15): one-step tasks from a submitter to one donor over the
// in-memory task transport (real orchestrator, dispatcher, donor service, task protocol
// with schema validation and JSON on every message), tracing off vs on in the same run,
// rounds interleaved. "On" means: the submitter records run/step/route/attempt spans,
// the donor records its five spans, signs them (Ed25519, profile key) and sends them
// with the result; the submitter verifies them. Also: bytes of trace data per step on
// the wire. Writes bench/results/observe.json. Run: npm run bench:observe
import '../src/lib/core/polyfills.ts'
import { loadIdentity, Tracer } from '../src/lib/core/index.ts'
import { createOrchestrator, donorService, MemoryTaskNetwork } from '../src/lib/orchestrator/index.ts'
import { agent, catalogOf, fnExecutor, peer } from '../src/lib/orchestrator/test-fixtures.ts'
import { fmt, summary, writeResults } from './stats.mjs'

const echo = agent('echo', ['text-summarization'], 0)
const ROUNDS = Number(process.env.ROUNDS ?? 4)
const SEQUENTIAL = Number(process.env.SEQUENTIAL ?? 200)
const PARALLEL = Number(process.env.PARALLEL ?? 400)
const CONCURRENCY = 16

async function setup(traced) {
  const net = new MemoryTaskNetwork()
  const d = net.transport('donor')
  await d.start()
  const donorTracer = traced ? new Tracer({ peer: 'donor', identity: process.env.NOSIGN ? undefined : await loadIdentity() }) : undefined
  await donorService()({ transport: d, executor: fnExecutor({ [echo.id]: (i) => ({ summary: i }) }, 64), tracer: donorTracer }).start()
  const tracer = traced ? new Tracer({ peer: 'submitter' }) : undefined
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
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < PARALLEL) await submit(orch, next++)
    })
  )
  const tps = PARALLEL / ((performance.now() - t0) / 1000)
  // Trace bytes per step: the offer's traceparent and the result's signed spans, as JSON on the wire.
  let traceBytes = 0
  let results = 0
  for (const { message } of net.log) {
    if (message.type === 'offer' && message.traceparent != null) traceBytes += JSON.stringify({ traceparent: message.traceparent }).length - 2
    if (message.type === 'result') {
      results++
      if (message.spans != null) traceBytes += JSON.stringify({ spans: message.spans }).length - 2
    }
  }
  await orch.stop()
  return {
    lat,
    tps,
    traceBytesPerStep: results > 0 ? traceBytes / results : 0,
    rejected: tracer?.stats.foreignRejected ?? 0,
    accepted: tracer?.stats.foreignAccepted ?? 0
  }
}

const off = { lat: [], tps: [], bytes: 0 }
const on = { lat: [], tps: [], bytes: 0, accepted: 0, rejected: 0 }
for (let r = 0; r < ROUNDS; r++) {
  for (const traced of r % 2 === 0 ? [false, true] : [true, false]) {
    const m = await measure(traced)
    const into = traced ? on : off
    into.lat.push(...m.lat)
    into.tps.push(m.tps)
    into.bytes = m.traceBytesPerStep
    if (traced) {
      on.accepted += m.accepted
      on.rejected += m.rejected
    }
  }
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length
const result = {
  transport: 'in-memory (one donor, 64 workers, echo agent)',
  rounds: ROUNDS,
  sequentialPerRound: SEQUENTIAL,
  parallelPerRound: PARALLEL,
  concurrency: CONCURRENCY,
  off: { latency: summary(off.lat), tasksPerS: mean(off.tps) },
  on: { latency: summary(on.lat), tasksPerS: mean(on.tps), traceBytesPerStep: on.bytes, bundlesAccepted: on.accepted, bundlesRejected: on.rejected },
  p50DeltaMs: summary(on.lat).p50 - summary(off.lat).p50,
  throughputCostPct: (1 - mean(on.tps) / mean(off.tps)) * 100
}
console.log(`tracing off: p50 ${fmt(result.off.latency)}  ${result.off.tasksPerS.toFixed(0)} tasks/s`)
console.log(
  `tracing on:  p50 ${fmt(result.on.latency)}  ${result.on.tasksPerS.toFixed(0)} tasks/s  ${result.on.traceBytesPerStep.toFixed(0)} B of trace per step`
)
console.log(`p50 +${result.p50DeltaMs.toFixed(3)} ms, throughput cost ${result.throughputCostPct.toFixed(1)}% (goal: ≤ 0.1 ms, ≤ 5%)`)
writeResults('observe', result)
