// npm run bench:trust — verification (issue 12) in a SIMULATION over the in-memory task
// transport (one Node process; every message JSON-copied and schema-checked as on the wire,
// delayed MSG_DELAY_MS each way; the agent runs RUN_MS): a submitter with the real trust
// service and dispatcher, DONORS donor users of which a share lie on half of their
// answers. Per population (20% and 0% liars): the share of accepted results that are
// correct, the replication overhead (extra results per task) overall and over the last 100
// tasks, and the latency per task against verification 'none' run in the same process
// right after. Routing: a custom score that prefers users of higher Beta reputation
// (trust's userScore, what the router integration will do) with a random tie-break, and
// round-robin (a router blind to reputation) as the worst case, and the real router wired to
// trust and learning ('balanced': the user's reputation in the score, the bandit, anomaly flags).
// Learning: Thompson sampling of the balanced strategy on a simulated population of agents (the
// real router and learning service, outcomes drawn with a seeded source, no network): the share
// of traffic to the best agent per 100 routes and the cumulative regret, against the same router
// without learning; and an A/B trial of a new version (routes until decided, share on trial).
// Writes bench/results/trust.json.
import '../src/lib/core/polyfills.ts'
import { loadIdentity, seededRandom } from '../src/lib/core/index.ts'
import {
  MemoryTaskNetwork,
  createOrchestrator,
  createRouter,
  donorService,
  resolvePreferences,
  routeLearning,
  trustService
} from '../src/lib/orchestrator/index.ts'
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
  // 'balanced': the app's wiring (the router reads trust and learning; outcomes feed learning).
  const learning = routing === 'balanced' ? routeLearning()({ users: trust, self: trust.self }) : undefined
  const orch = createOrchestrator(
    {
      catalog,
      peers: { peers: () => peers },
      transport: net.transport('submitter'),
      trust,
      ...(learning != null ? { routing: trust, learning } : {})
    },
    { dispatcher: { offerTimeoutMs: 2000 } }
  )
  await orch.start()
  const prefs =
    routing === 'reputation'
      ? { strategy: 'custom', custom_score: (c) => trust.userScore(c.peer.id, c.agent.id) + Math.random() * 0.05 }
      : routing === 'balanced'
        ? { strategy: 'balanced' }
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
  learning?.stop()
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
    reputation: { liarsMax: liarRep.length > 0 ? Math.max(...liarRep) : null, honestMin: honestRep.length > 0 ? Math.min(...honestRep) : null },
    ...(learning != null
      ? {
          resultsFromLiarsShare: accepted.filter((r) => r.fromLiar).length / Math.max(1, accepted.length),
          resultsFromLiarsShareLast100: accepted.slice(-100).filter((r) => r.fromLiar).length / Math.max(1, accepted.slice(-100).length),
          flagged: learning
            .snapshot()
            .anomalies.map((f) => `${f.kind} ${liars.has([...users].find(([, k]) => k === f.id)?.[0]) ? 'liar' : 'honest'} ${f.metric}`)
        }
      : {})
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
  for (const routing of ['reputation', 'balanced', 'round-robin']) {
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

// ---- Learning (vision §3): the bandit of the balanced strategy on a simulated population.
/** A seeded uniform source (core's seededRandom). */
const seeded = seededRandom
const ROUTES = Number(process.env.LEARN_ROUTES ?? 1000)
const SEEDS = [1, 2, 3, 4, 5]
/** Chance each agent's result is accepted; all at the same price and speed, none stating its quality. */
const SUCCESS = [0.6, 0.75, 0.5, 0.9, 0.8, 0.97, 0.7, 0.85]
const best = SUCCESS.indexOf(Math.max(...SUCCESS))
const bprefs = resolvePreferences({ strategy: 'balanced' }, (m) => new Error(m))
function bandit(seed, learn) {
  const rng = seeded(seed)
  const agents = SUCCESS.map((_, i) => agent(`sim-${i}`, ['sim'], 0.2))
  const learning = learn ? routeLearning({ random: rng })() : undefined
  const router = createRouter({ catalog: catalogOf(agents), peers: { peers: () => [peer('p1', { rttMs: 5 })] }, ...(learning != null ? { learning } : {}) })
  const picks = []
  const t0 = performance.now()
  for (let t = 0; t < ROUTES; t++) {
    const d = router.route(['sim'], bprefs)
    const i = agents.indexOf(d.winner.agent)
    picks.push(i)
    const ok = rng() < SUCCESS[i]
    learning?.record({
      taskId: `t${t}`,
      stepId: 's1',
      agentId: d.winner.agent.id,
      peerId: 'p1',
      capabilities: ['sim'],
      attempt: 1,
      success: ok,
      durationMs: 10,
      cost: 0.2,
      ...(ok ? {} : { errorName: 'StepFailedError' }),
      inputSize: 1,
      outputSize: 1,
      at: t
    })
  }
  const routeMs = (performance.now() - t0) / ROUTES
  const blocks = []
  for (let b = 0; b < ROUTES; b += 100) blocks.push(picks.slice(b, b + 100).filter((i) => i === best).length / Math.min(100, ROUTES - b))
  const regret = picks.reduce((n, i) => n + (SUCCESS[best] - SUCCESS[i]), 0)
  return { blocks, regret, routeMs, regretLast100: picks.slice(-100).reduce((n, i) => n + (SUCCESS[best] - SUCCESS[i]), 0) }
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length
const r3 = (x) => Math.round(x * 1000) / 1000
const learnRuns = SEEDS.map((s) => bandit(s, true))
const staticRuns = SEEDS.map((s) => bandit(s, false))
result.learning = {
  kind: 'SIMULATION: the real router and learning service, outcomes drawn with a seeded source, no network',
  population: { successChance: SUCCESS, best, price: 0.2, note: 'equal price and speed, no stated quality: only outcomes tell the agents apart' },
  routes: ROUTES,
  seeds: SEEDS,
  thompson: {
    bestShareByBlockOf100: learnRuns[0].blocks.map((_, b) => r3(mean(learnRuns.map((r) => r.blocks[b])))),
    cumulativeRegret: r3(mean(learnRuns.map((r) => r.regret))),
    regretLast100: r3(mean(learnRuns.map((r) => r.regretLast100))),
    meanRouteMs: r3(mean(learnRuns.map((r) => r.routeMs)))
  },
  withoutLearning: {
    bestShareByBlockOf100: staticRuns[0].blocks.map((_, b) => r3(mean(staticRuns.map((r) => r.blocks[b])))),
    cumulativeRegret: r3(mean(staticRuns.map((r) => r.regret))),
    regretLast100: r3(mean(staticRuns.map((r) => r.regretLast100))),
    meanRouteMs: r3(mean(staticRuns.map((r) => r.routeMs)))
  }
}
console.log(
  `learning: Thompson sampling sends the best of ${SUCCESS.length} agents ${result.learning.thompson.bestShareByBlockOf100.map((x) => `${Math.round(x * 100)}%`).join(' ')} of each 100 routes ` +
    `(regret ${result.learning.thompson.cumulativeRegret} over ${ROUTES}, ${result.learning.thompson.regretLast100} in the last 100); ` +
    `without learning ${result.learning.withoutLearning.bestShareByBlockOf100.map((x) => `${Math.round(x * 100)}%`).join(' ')} (regret ${result.learning.withoutLearning.cumulativeRegret}); ` +
    `${result.learning.thompson.meanRouteMs} ms per route with the bandit, ${result.learning.withoutLearning.meanRouteMs} without`
)

// ---- A/B: a new version (no worse, a little faster) against its incumbent, default 10% share, 30 results each.
{
  const rng = seeded(7)
  const v1 = { ...agent('ab-v1', ['ab'], 0.2, { author: 'ed25519:bench' }), name: 'ab', version: '1.0.0' }
  const v2 = { ...agent('ab-v2', ['ab'], 0.2, { author: 'ed25519:bench' }), name: 'ab', version: '1.1.0' }
  const decisions = []
  const learning = routeLearning({ random: rng })({ decisions: { publish: (d) => void decisions.push(d) } })
  const router = createRouter({ catalog: catalogOf([v1, v2]), peers: { peers: () => [peer('p1')] }, learning })
  let decidedAfter
  let trialNew = 0
  for (let t = 0; t < 2000 && decidedAfter == null; t++) {
    const a = router.route(
      ['ab'],
      resolvePreferences({ strategy: 'cost' }, (m) => new Error(m))
    ).winner.agent
    if (a.id === v2.id) trialNew++
    const ok = rng() < 0.93
    learning.record({
      taskId: `ab${t}`,
      stepId: 's1',
      agentId: a.id,
      peerId: 'p1',
      capabilities: ['ab'],
      attempt: 1,
      success: ok,
      durationMs: a.id === v2.id ? 8 : 10,
      cost: 0.2,
      inputSize: 1,
      outputSize: 1,
      at: t
    })
    if (decisions.length > 0) decidedAfter = t + 1
  }
  result.learning.ab = {
    setup: 'v1.0.0 and v1.1.0 both accept 93% of results; v1.1.0 runs in 8 ms against 10 ms; cost strategy; defaults (10% share, 30 results each)',
    decidedAfterRoutes: decidedAfter ?? null,
    newVersionShareOnTrial: decidedAfter == null ? null : r3(trialNew / decidedAfter),
    decision: decisions[0] ?? null
  }
  console.log(
    `A/B: ${decisions[0]?.decision ?? 'undecided'} after ${decidedAfter} routes (new version took ${Math.round((result.learning.ab.newVersionShareOnTrial ?? 0) * 100)}% on trial): ${decisions[0]?.reason ?? ''}`
  )
}
writeResults('trust', result)
