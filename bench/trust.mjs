// npm run bench:trust — verification (issue 12) in a SIMULATION over the in-memory task
// transport (one Node process; every message JSON-copied and schema-checked as on the wire,
// delayed MSG_DELAY_MS each way; the agent runs RUN_MS): a submitter with the real trust
// service and dispatcher, DONORS donor users of which a share lie on half of their
// answers. Per population (20% and 0% liars): the share of accepted results that are
// correct, the replication overhead (extra results per task) overall and over the last 100
// tasks, and the latency per task against verification 'none' run in the same process
// right after. Routing: a custom score that prefers users of higher Beta reputation
// (trust's userScore, what the router integration will do) with a random tie-break, and
// round-robin (a router blind to reputation) as the worst case. Writes bench/results/trust.json.
import '../src/lib/core/polyfills.ts'
import { loadIdentity } from '../src/lib/core/index.ts'
import { MemoryTaskNetwork, createOrchestrator, donorService, trustService } from '../src/lib/orchestrator/index.ts'
import { agent, catalogOf, fnExecutor, peer } from '../src/lib/orchestrator/test-fixtures.ts'
import { summary, fmt, writeResults } from './stats.mjs'

const TASKS = Number(process.env.TRUST_TASKS ?? 500)
const DONORS = Number(process.env.TRUST_DONORS ?? 10)
const MSG_DELAY_MS = Number(process.env.MSG_DELAY_MS ?? 1)
const RUN_MS = Number(process.env.RUN_MS ?? 5)
const hash = agent('hasher', ['hashing'], 0.2)
const catalog = catalogOf([hash])
const truth = (i) => ({ hash: `h(${String(i)})` })
const delay = (ms) => new Promise((r) => setTimeout(r, ms))

async function population(liarShare, routing, verification) {
  const net = new MemoryTaskNetwork()
  net.faults = { delayMs: () => MSG_DELAY_MS }
  const users = new Map()
  const me = await loadIdentity()
  users.set('submitter', me.publicKey)
  const liars = new Set()
  const nLiars = Math.round(DONORS * liarShare)
  for (let d = 0; d < DONORS; d++) {
    const id = `donor-${d}`
    users.set(id, (await loadIdentity()).publicKey)
    const lies = d < nLiars
    if (lies) liars.add(id)
    const t = net.transport(id)
    await t.start()
    let n = 0
    const ex = fnExecutor(
      {
        [hash.id]: async (i) => {
          await delay(RUN_MS)
          // Liars do not collude: each forges its own wrong answer (colluders are in the README's limits).
          return lies && n++ % 2 === 0 ? { hash: `forged-by-${id}(${String(i)})` } : truth(i)
        }
      },
      4
    )
    await donorService({ leaseMs: 2000 })({ transport: t, executor: ex }).start()
  }
  const trust = trustService()({ identity: me, users: { userOf: (p) => users.get(p) } })
  await trust.start()
  const peers = [...users.keys()].filter((p) => p !== 'submitter').map((p) => peer(p, { rttMs: 2, freeWorkers: 4 }))
  const orch = createOrchestrator(
    { catalog, peers: { peers: () => peers }, transport: net.transport('submitter'), trust },
    { dispatcher: { offerTimeoutMs: 2000 } }
  )
  await orch.start()
  const prefs =
    routing === 'reputation'
      ? { strategy: 'custom', custom_score: (c) => trust.userScore(c.peer.id, c.agent.id) + Math.random() * 0.05 }
      : { strategy: 'round-robin' }
  const rows = []
  for (let i = 0; i < TASKS; i++) {
    const input = `task ${i}`
    const t0 = performance.now()
    try {
      const r = await orch.submit({ description: 'hash it', input, agent: 'hasher', preferences: { ...prefs, verification } }).done
      rows.push({
        ms: performance.now() - t0,
        correct: JSON.stringify(r.output) === JSON.stringify(truth(input)),
        results: r.steps[0].verification?.replicas ?? 1,
        fromLiar: liars.has(r.steps[0].peer)
      })
    } catch (e) {
      rows.push({ ms: performance.now() - t0, failed: e.name, results: 0 })
    }
  }
  await orch.stop()
  const accepted = rows.filter((r) => r.failed == null)
  const overhead = (rs) => rs.reduce((n, r) => n + Math.max(0, r.results - 1), 0) / rs.length
  const liarRep = [...liars].map((p) => trust.userScore(p))
  const honestRep = [...users.keys()].filter((p) => p !== 'submitter' && !liars.has(p)).map((p) => trust.userScore(p))
  return {
    tasks: TASKS,
    failed: rows.length - accepted.length,
    acceptedCorrectShare: accepted.filter((r) => r.correct).length / accepted.length,
    wrongAccepted: accepted.filter((r) => !r.correct).length,
    replicationOverhead: overhead(rows),
    replicationOverheadLast100: overhead(rows.slice(-100)),
    latencyMs: summary(rows.map((r) => r.ms)),
    meanLatencyMs: rows.reduce((n, r) => n + r.ms, 0) / rows.length,
    reputation: { liarsMax: liarRep.length > 0 ? Math.max(...liarRep) : null, honestMin: honestRep.length > 0 ? Math.min(...honestRep) : null }
  }
}

const result = {
  date: new Date().toISOString(),
  kind: 'SIMULATION over the in-memory task transport (one Node process), not browsers',
  setup: {
    tasks: TASKS,
    donorUsers: DONORS,
    msgDelayMs: MSG_DELAY_MS,
    agentRunMs: RUN_MS,
    liarsLieOn: 'every other answer',
    policy: 'trust defaults: trusted after 10 agreements, spot-check min(1, 5/streak) floored at 0.05, at most 5 results per step'
  },
  runs: {}
}
for (const liarShare of [0.2, 0]) {
  for (const routing of ['reputation', 'round-robin']) {
    const key = `${Math.round(liarShare * 100)}% liars, ${routing} routing`
    const v = await population(liarShare, routing, 'adaptive')
    const none = await population(liarShare, routing, 'none')
    result.runs[key] = {
      adaptive: v,
      none,
      addedLatencyPerTaskMs: Math.round((v.meanLatencyMs - none.meanLatencyMs) * 1000) / 1000
    }
    console.log(
      `${key}: accepted correct ${(v.acceptedCorrectShare * 100).toFixed(2)}% (${v.wrongAccepted} wrong, ${v.failed} failed) vs 'none' ${(none.acceptedCorrectShare * 100).toFixed(2)}%; ` +
        `overhead ${(v.replicationOverhead * 100).toFixed(1)}% overall, ${(v.replicationOverheadLast100 * 100).toFixed(1)}% last 100; ` +
        `latency ${fmt(v.latencyMs)} vs 'none' ${fmt(none.latencyMs)} (+${result.runs[key].addedLatencyPerTaskMs} ms mean)`
    )
  }
}
writeResults('trust', result)
