// npm run bench:workflows — the workflow engine's overhead per step over a plain submit of the
// same agent in the same run, a 1,000-item map-reduce's throughput, the time to resume a
// 100-step run (to its first re-offered step), and the journal's size per step.
// All in Node on the in-memory task transport with an in-process agent, so the figures are the
// engine's own cost (no WebRTC, no WASM): the multi-tab figures belong to the browser suite.
// Writes bench/results/workflows.json.
import '../src/lib/core/polyfills.ts'
import { orchestratorService } from '../src/lib/orchestrator/orchestrator.ts'
import { MemoryTaskNetwork } from '../src/lib/orchestrator/dispatch/index.ts'
import { createWorkflowEngine } from '../src/lib/orchestrator/workflow/engine.ts'
import { parseWorkflow } from '../src/lib/orchestrator/workflow/parser.ts'
import { MemoryWorkflowJournal } from '../src/lib/orchestrator/workflow/memory-journal.ts'
import { agent, catalogOf, fnExecutor } from '../src/lib/orchestrator/test-fixtures.ts'
import { summary, writeResults } from './stats.mjs'

const STEPS = Number(process.env.STEPS ?? 200)
const ROUNDS = Number(process.env.ROUNDS ?? 7)
const ITEMS = Number(process.env.ITEMS ?? 1000)
const RESUME_STEPS = 100

const echo = agent('echo', ['echo'], 0)
const gate = agent('gate', ['gated'], 0)
const catalog = catalogOf([echo, gate])
// The gate holds the last step until released (per round): a step killed mid-run.
let gateOpen = false
let release = () => {
  gateOpen = true
}
const executor = fnExecutor(
  {
    [echo.id]: (i) => (typeof i === 'number' ? i + 1 : 0),
    [gate.id]: (i, signal) =>
      new Promise((resolve, reject) => {
        if (gateOpen) resolve(i)
        release = () => {
          gateOpen = true
          resolve(i)
        }
        signal.addEventListener('abort', () => reject(new Error('aborted')))
      })
  },
  64
)
const net = new MemoryTaskNetwork()
const orch = orchestratorService({})({ catalog, peers: { peers: () => [] }, transport: net.transport('me'), executor })
await orch.start()
const engine = createWorkflowEngine({ catalog, runPlan: orch.runPlan, planTask: orch.planTask })
const prefs = { retry_policy: { max_attempts: 1, backoff_ms: 0, backoff_multiplier: 1 } }

function parse(yaml) {
  const r = parseWorkflow(yaml, { catalog })
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.line}:${e.column} ${e.message}`).join('\n'))
  return r
}
const chain = (n, last = 'echo') => {
  let y = 'name: chain\nsteps:\n  - { id: s0, agent: echo, input: 0 }\n'
  for (let i = 1; i < n; i++) y += `  - { id: s${i}, agent: ${i === n - 1 ? last : 'echo'}, input: "\${s${i - 1}}" }\n`
  return y
}
let runs = 0
const runId = () => `t-bench${String(++runs).padStart(8, '0')}`

// 1. Overhead per step: the same agent, N steps in a chain, as a workflow and as N submits (alternating rounds).
const { doc } = parse(chain(STEPS))
const perStepWorkflow = []
const perStepSubmit = []
let journalBytesPerStep = 0
let eventsPerStep = 0
for (let r = 0; r < ROUNDS; r++) {
  const journal = new MemoryWorkflowJournal()
  let t0 = performance.now()
  const res = await engine.start(doc, null, { runId: runId(), journal, preferences: prefs }).done
  perStepWorkflow.push((performance.now() - t0) / STEPS)
  if (res.output !== STEPS) throw new Error(`the chain gave ${res.output}`)
  journalBytesPerStep = JSON.stringify(journal.events()).length / STEPS
  eventsPerStep = journal.events().length / STEPS
  t0 = performance.now()
  let v = 0
  for (let i = 0; i < STEPS; i++) v = (await orch.submit({ description: 'echo', agent: 'echo', input: i === 0 ? 0 : v, preferences: prefs }).done).output
  perStepSubmit.push((performance.now() - t0) / STEPS)
  if (v !== STEPS) throw new Error(`the submits gave ${v}`)
}
const wf = summary(perStepWorkflow.slice(1)) // the first round warms up
const sub = summary(perStepSubmit.slice(1))
// Paired per round (the same machine load for both halves of a round), then the median.
const overheadStats = summary(perStepWorkflow.slice(1).map((w, i) => w - perStepSubmit[i + 1]))
const overhead = overheadStats.p50
console.log(`per step, ${STEPS}-step chain: workflow p50 ${wf.p50} ms · plain submit p50 ${sub.p50} ms · engine overhead ${overhead} ms per step (goal ≤ 1 ms)`)
console.log(`journal: ${Math.round(journalBytesPerStep)} bytes (JSON) and ${eventsPerStep} events per step`)

// 2. Map-reduce: ITEMS items, max_parallel 32, then a reduce step.
const mr = parse(`name: mr
steps:
  - { id: each, agent: echo, for_each: task, max_parallel: 32, input: "\${item}" }
  - { id: total, agent: echo, input: "\${size(each)}" }
`)
const items = Array.from({ length: ITEMS }, (_, i) => i)
const mrTimes = []
for (let r = 0; r < 3; r++) {
  const t0 = performance.now()
  const res = await engine.start(mr.doc, items, { runId: runId(), journal: new MemoryWorkflowJournal(), preferences: prefs }).done
  mrTimes.push(performance.now() - t0)
  if (res.output !== ITEMS + 1) throw new Error(`map-reduce gave ${res.output}`)
}
const mrBest = summary(mrTimes)
const itemsPerS = Math.round(ITEMS / (mrBest.p50 / 1000))
console.log(`map-reduce over ${ITEMS} items (in-memory, one in-process agent): p50 ${mrBest.p50} ms → ${itemsPerS} items/s`)

// 3. Resume: a 100-step run killed at its last step; a new engine over the journal, timed to the re-offered step.
const resumeTimes = []
const rdoc = parse(chain(RESUME_STEPS + 1, 'gate'))
for (let r = 0; r < 5; r++) {
  gateOpen = false
  const journal = new MemoryWorkflowJournal()
  const id = runId()
  const tab = new AbortController()
  const first = engine.start(rdoc.doc, null, { runId: id, journal, signal: tab.signal, hash: rdoc.hash })
  await new Promise((resolve) => {
    const off = first.subscribe((e) => {
      if (e.type === 'step-started' && e.stepId === `s${RESUME_STEPS}`) {
        off()
        resolve()
      }
    })
  })
  tab.abort()
  await first.done.catch(() => {})
  const t0 = performance.now()
  const second = engine.start(rdoc.doc, null, { runId: id, journal, hash: rdoc.hash })
  await new Promise((resolve) => {
    const off = second.subscribe((e) => {
      if (e.type === 'step-started' && e.stepId === `s${RESUME_STEPS}` && e.attempt === 2) {
        off()
        resolve()
      }
    })
  })
  resumeTimes.push(performance.now() - t0)
  release()
  await second.done
}
const resume = summary(resumeTimes)
console.log(`resume a ${RESUME_STEPS}-step run to its first re-offered step: p50 ${resume.p50} ms (goal ≤ 300 ms; in-memory journal)`)

writeResults('workflows', {
  date: new Date().toISOString(),
  machine: '2 cores, Node 20, in-memory task transport, in-process agent (no WebRTC, no WASM)',
  overheadPerStep: {
    steps: STEPS,
    rounds: ROUNDS - 1,
    workflowMsPerStep: wf,
    submitMsPerStep: sub,
    engineOverheadMsPerStep: overhead,
    engineOverheadPerRound: overheadStats,
    goalMs: 1
  },
  journal: { bytesPerStep: Math.round(journalBytesPerStep), eventsPerStep },
  mapReduce: {
    items: ITEMS,
    maxParallel: 32,
    ms: mrBest,
    itemsPerSecond: itemsPerS,
    note: 'in-memory; the donor figure over real tabs is for the browser bench'
  },
  resume: { steps: RESUME_STEPS, msToFirstReoffer: resume, goalMs: 300 }
})
await orch.stop()
