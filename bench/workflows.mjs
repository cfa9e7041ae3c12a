// npm run bench:workflows — the workflow engine's overhead per step over a plain submit of the
// same agent in the same run, a 1,000-item map-reduce's throughput, the time to resume a
// 100-step run (to its first re-offered step), and the journal's size per step.
// First in Node on the in-memory task transport with an in-process agent (the engine's own
// cost: no WebRTC, no WASM); then over real tabs (the relay, headless Chromium, one context per
// tab, bundled WASM agents): a 1,000-item map-reduce over donor tabs beside 1,000 plain submits
// of the same agent on the same mesh at the same concurrency (bench:tasks' tasks/s, measured in
// this run), and a 100-step run reloaded in a real tab, timed to its first re-offered step (the
// journal read back from IndexedDB). BROWSER=0 skips the tabs.
// Writes bench/results/workflows.json.
import '../src/lib/core/polyfills.ts'
import { orchestratorService } from '../src/lib/orchestrator/orchestrator.ts'
import { MemoryTaskNetwork } from '../src/lib/orchestrator/dispatch/index.ts'
import { createWorkflowEngine } from '../src/lib/orchestrator/workflow/engine.ts'
import { parseWorkflow } from '../src/lib/orchestrator/workflow/parser.ts'
import { MemoryWorkflowJournal } from '../src/lib/orchestrator/workflow/memory-journal.ts'
import { agent, catalogOf, fnExecutor } from '../src/lib/orchestrator/test-fixtures.ts'
import { fmt, summary, writeResults } from './stats.mjs'
import { startMesh, waitForApi, waitForFullMesh } from '../test/harness.mjs'

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

const result = {
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
    note: 'in-memory, one in-process agent; the donor-tab figure is under tabs.mapReduce'
  },
  resume: { steps: RESUME_STEPS, msToFirstReoffer: resume, goalMs: 300, note: 'in-memory journal; the real-tab figure is under tabs.resume' }
}
await orch.stop()
if (process.env.BROWSER !== '0') result.tabs = await overTabs()
writeResults('workflows', result)

/** The figures over real tabs: A runs, DONORS tabs donate (1 worker each, as bench:tasks). */
async function overTabs() {
  const DONORS = Number(process.env.DONORS ?? 2)
  const PARALLEL = Number(process.env.MAX_PARALLEL ?? 64)
  const TAB_ROUNDS = Number(process.env.TAB_ROUNDS ?? 3)
  const MR_ROUNDS = Number(process.env.MR_ROUNDS ?? TAB_ROUNDS)
  const out = { machine: '2 cores, headless Chromium, one context per tab, the real relay, bundled WASM agents', donors: DONORS, maxParallel: PARALLEL }
  const mesh = await startMesh()
  try {
    const a = await mesh.newPeer()
    const donors = []
    for (let i = 0; i < DONORS; i++) donors.push(await mesh.newPeer())
    const ids = await waitForFullMesh([a, ...donors], 60_000)
    await Promise.all(donors.map((d) => d.evaluate(() => window.zerostate.donate({ enabled: true, workers: 1 }))))
    const seeDonors = () =>
      a.waitForFunction(
        (donorIds) =>
          donorIds.every((id) => window.zerostate.peers().some((p) => p.id === id && p.donating && p.freeWorkers > 0 && p.capabilities.includes('hashing'))),
        ids.slice(1),
        { timeout: 60_000 }
      )
    await seeDonors()
    const completed = () => Promise.all(donors.map((d) => d.evaluate(() => window.zerostate.runtime.stats().completed)))

    // 1. Map-reduce over the donors beside plain submits of the same agent, alternating, same concurrency.
    const texts = Array.from({ length: ITEMS }, (_, i) => `item ${i}`)
    const yaml = `name: bench-map-reduce
steps:
  - id: each
    for_each: task
    agent: hash
    input: \${item}
    max_parallel: ${PARALLEL}
  - id: total
    agent: math-eval
    input: "\${string(size(each))}"
output: \${total.value}
`
    const rows = { workflow: [], submit: [], workflowOnA: 0, submitOnA: 0 }
    for (let r = 0; r < MR_ROUNDS; r++) {
      const before = await completed()
      const w = await a.evaluate(
        async ({ yaml, texts }) => {
          const t0 = performance.now()
          const h = window.zerostate.runWorkflow(yaml, texts)
          const res = await h.done
          const ms = performance.now() - t0
          const me = window.zerostate.peerId
          return { ms, output: res.output, onA: res.steps.filter((s) => s.peer === me).length, units: res.steps.length }
        },
        { yaml, texts }
      )
      if (w.output !== ITEMS) throw new Error(`the map-reduce over tabs gave ${w.output}`)
      const mid = await completed()
      const sb = await a.evaluate(
        async ({ texts, lanes }) => {
          let next = 0
          let onA = 0
          const me = window.zerostate.peerId
          const t0 = performance.now()
          async function lane() {
            while (next < texts.length) {
              const i = next++
              const res = await window.zerostate.submit({ description: 'hash', agent: 'hash', input: texts[i] }).done
              if (res.steps.some((s) => s.peer === me)) onA++
            }
          }
          await Promise.all(Array.from({ length: lanes }, lane))
          return { ms: performance.now() - t0, onA }
        },
        { texts, lanes: PARALLEL }
      )
      const after = await completed()
      rows.workflow.push(w.ms)
      rows.submit.push(sb.ms)
      rows.workflowOnA += w.onA
      rows.submitOnA += sb.onA
      console.log(
        `round ${r + 1}: map-reduce ${ITEMS} items ${Math.round(w.ms)} ms (${Math.round(ITEMS / (w.ms / 1000))} items/s; per donor ${mid.map((x, i) => x - before[i]).join('/')}) · ${ITEMS} submits ${Math.round(sb.ms)} ms (${Math.round(ITEMS / (sb.ms / 1000))} tasks/s; per donor ${after.map((x, i) => x - mid[i]).join('/')})`
      )
    }
    const wfMs = summary(rows.workflow)
    const subMs = summary(rows.submit)
    out.mapReduce = {
      items: ITEMS,
      agent: 'hash',
      workflowMs: wfMs,
      itemsPerSecond: Math.round(ITEMS / (wfMs.p50 / 1000)),
      submitMs: subMs,
      submitTasksPerSecond: Math.round(ITEMS / (subMs.p50 / 1000)),
      itemsVsTasksP50: Math.round((subMs.p50 / wfMs.p50) * 100) / 100,
      unitsRunInSubmitter: { workflow: rows.workflowOnA, submit: rows.submitOnA },
      note: `alternating rounds on one mesh: a for_each of ${ITEMS} items (max_parallel ${PARALLEL}) + a reduce step, then ${ITEMS} plain submits of the same agent from ${PARALLEL} lanes (bench:tasks' throughput loop)`
    }
    console.log(
      `map-reduce over ${DONORS} donor tabs: ${out.mapReduce.itemsPerSecond} items/s (${fmt(wfMs)}) · plain submits, same mesh: ${out.mapReduce.submitTasksPerSecond} tasks/s (${fmt(subMs)}) → ${out.mapReduce.itemsVsTasksP50}×`
    )

    // 2. Resume a 100-step run after a reload: steps s0..s99 finish, s100 is held on the donors, A reloads.
    await Promise.all(
      donors.map((d) =>
        d.evaluate(() => {
          const rt = window.zerostate.runtime
          const run = rt.run.bind(rt)
          window.__gate = Promise.withResolvers()
          rt.run = async (pkg, ...rest) => {
            if (pkg.manifest.name === 'word-stats') await window.__gate.promise
            return await run(pkg, ...rest)
          }
        })
      )
    )
    let chain = 'name: bench-resume\nsteps:\n  - { id: s0, agent: math-eval, input: "1" }\n'
    for (let i = 1; i < RESUME_STEPS; i++) chain += `  - { id: s${i}, agent: math-eval, input: "\${string(s${i - 1}.value)} + 1" }\n`
    chain += `  - { id: s${RESUME_STEPS}, agent: word-stats, input: "\${string(s${RESUME_STEPS - 1}.value)}" }\n`
    const resumes = []
    for (let r = 0; r < TAB_ROUNDS; r++) {
      await Promise.all(donors.map((d) => d.evaluate(() => (window.__gate = Promise.withResolvers()))))
      const id = await a.evaluate((y) => window.zerostate.runWorkflow(y, null).id, chain)
      await a.waitForFunction(([id, last]) => window.zerostate.task(id)?.view().steps[last]?.state === 'running', [id, `s${RESUME_STEPS}`], {
        timeout: 120_000,
        polling: 50
      })
      await a.reload()
      await waitForApi(a)
      const t = await a.evaluate(
        async ([id, last]) => {
          const h = window.zerostate.task(id)
          const seen = []
          const found = await new Promise((resolve) => {
            const off = h.on('event', (e) => {
              seen.push(e)
              if (seen.some((x) => x.type === 'run-resumed') && e.type === 'step-started' && e.stepId === last) {
                resolve(e)
                queueMicrotask(() => off())
              }
            })
          })
          const mark = performance.getEntriesByName('zerostate:workflows:resume')[0]
          const engine = performance.getEntriesByName('zerostate:workflows:engine')[0]
          const nav = performance.getEntriesByType('navigation')[0]
          const origin = performance.timeOrigin
          return {
            fromNavigationMs: found.at - origin,
            fromResumeStartMs: mark != null ? found.at - (origin + mark.startTime) : null,
            resumeStartAfterNavigationMs: mark?.startTime ?? null,
            engineReadyAfterNavigationMs: engine?.startTime ?? null,
            fromEngineReadyMs: engine != null ? found.at - (origin + engine.startTime) : null,
            domContentLoadedMs: nav?.domContentLoadedEventEnd ?? null,
            events: seen.length
          }
        },
        [id, `s${RESUME_STEPS}`]
      )
      resumes.push(t)
      console.log(
        `round ${r + 1}: resumed a ${RESUME_STEPS}-step run (${t.events} journal events): first re-offered step ${Math.round(t.fromResumeStartMs)} ms after the tab looked for runs to resume (engine ready at ${Math.round(t.engineReadyAfterNavigationMs - t.resumeStartAfterNavigationMs)} ms of them), ${Math.round(t.fromNavigationMs)} ms after navigation start`
      )
      await Promise.all(donors.map((d) => d.evaluate(() => window.__gate.resolve())))
      const done = await a.evaluate((id) => window.zerostate.task(id).done.then((r) => r.status), id)
      if (done !== 'succeeded') throw new Error(`the resumed run ended ${done}`)
      await seeDonors()
    }
    out.resume = {
      steps: RESUME_STEPS,
      msFromResumeStartToFirstReoffer: summary(resumes.map((t) => t.fromResumeStartMs)),
      msFromNavigationToFirstReoffer: summary(resumes.map((t) => t.fromNavigationMs)),
      msFromNavigationToResumeStart: summary(resumes.map((t) => t.resumeStartAfterNavigationMs)),
      msFromNavigationToEngineReady: summary(resumes.map((t) => t.engineReadyAfterNavigationMs)),
      msFromEngineReadyToFirstReoffer: summary(resumes.map((t) => t.fromEngineReadyMs)),
      journalEvents: resumes[0]?.events,
      goalMs: 300,
      note: 'a real tab reloaded with s0..s99 finished and s100 held on the donors; the journal is read back from IndexedDB during page start. fromResumeStart: from the moment the started app first looks for unfinished runs (performance mark zerostate:workflows:resume) to the re-offered step in the journal: lock, workflow chunk, parse, replay of the journal, dispatch'
    }
    console.log(
      `resume in a real tab: ${fmt(out.resume.msFromResumeStartToFirstReoffer)} from the resume start (goal ≤ 300 ms) · ${fmt(out.resume.msFromNavigationToFirstReoffer)} from navigation start`
    )
  } finally {
    await mesh.stop()
  }
  return out
}
