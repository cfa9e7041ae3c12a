// `npm run sim`: N peers of the real mesh code (createZeroState) spread over worker threads
// (--workers, default one per 25 peers of the largest size and at least one per core; the relay, the registry seeder and the measuring stay in
// the main thread), over simulated links (latency, jitter, loss) bridged between the threads
// by MessagePorts, grown through --sizes in one mesh; at each size gossip delivery p50/p99,
// presence convergence, registry sync of --agents to a newcomer, --tasks with --donors of the
// peers donating (every task counted on the donors), and churn. Prints the figures and writes
// bench/results/sim.json (src/sim/ holds the parts).
//
//   npm run sim -- --sizes 50,100,200            the full run
//   npm run sim -- --sizes 20 --tasks 20 --agents 200 --out /tmp/sim.json
import '../src/lib/core/polyfills.ts'
import { writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { runSim } from '../src/sim/scenario.ts'

/**
 * Peers per worker thread by default. A tab has an event loop of its own; peers sharing one
 * wait behind each other's work, and at 100 per thread (two threads for 200 peers) a burst in
 * one peer (a GC, a heartbeat, a probe's copies) delayed its 99 thread-mates: gossip p99 went
 * from 0.4 to 2.5 s between runs of the same build. At 25 per thread the same 2 cores do the same
 * work with shorter queues.
 */
const PEERS_PER_THREAD = 25

const { values: a } = parseArgs({
  options: {
    sizes: { type: 'string', default: '50,100,200' },
    donors: { type: 'string', default: '0.2' },
    workers: { type: 'string' },
    'max-peers': { type: 'string' },
    latency: { type: 'string', default: '20' },
    jitter: { type: 'string', default: '10' },
    loss: { type: 'string', default: '0.01' },
    probes: { type: 'string', default: '40' },
    'probe-every': { type: 'string', default: '100' },
    tasks: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '10' },
    agents: { type: 'string', default: '1000' },
    churn: { type: 'string', default: '60' },
    'churn-seconds': { type: 'string', default: '15' },
    'max-lag': { type: 'string', default: '1000' },
    'idle-seconds': { type: 'string', default: '10' },
    'settle-max': { type: 'string', default: '120' },
    'target-peers': { type: 'string' },
    'trim-links': { type: 'boolean', default: false },
    'no-presence-pull': { type: 'boolean', default: false },
    'no-departures': { type: 'boolean', default: false },
    'no-newcomer-answers': { type: 'boolean', default: false },
    'discovery-broadcast': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    'no-verify-cache': { type: 'boolean', default: false },
    tabs: { type: 'string', default: '0' },
    out: { type: 'string', default: 'bench/results/sim.json' },
    help: { type: 'boolean', default: false }
  }
})
if (a.help) {
  console.log(`npm run sim -- [--sizes 50,100,200] [--workers N (worker threads the peers are spread over; 0: all in the main thread; default one per ${PEERS_PER_THREAD} peers of the largest size, at least one per core: ${cpus().length})] [--donors 0.2] [--max-peers 48] [--target-peers 16 (direct links a peer dials on its own up to)] [--trim-links (close incoming links past target + 8: mesh trimLinks)] [--no-presence-pull (joiners wait for re-announcements: the A/B baseline of mesh presencePull)] [--no-newcomer-answers (with --no-presence-pull: members do not answer a newcomer)] [--discovery-broadcast (peers broadcast pubsub peer discovery every 60 s as before the pull: the A/B baseline of mesh discoveryBroadcast)] [--no-departures (the relay sends no departure notices: the A/B baseline)] [--latency 20] [--jitter 10] [--loss 0.01]
  [--probes 40] [--probe-every 100 (ms between probes, from peers in turn)] [--tasks 100] [--concurrency 10] [--agents 1000] [--churn 60 (peers replaced per minute)] [--churn-seconds 15]
  [--max-lag 1000 (stop growing once this process's event-loop p99 lag passed it, ms; 0: never)] [--out bench/results/sim.json]
  [--no-verify-cache (every peer checks every signature itself, as tabs do: the baseline of the shared verification cache)]
  [--idle-seconds 10 (quiet seconds over which each size's CPU per peer is measured; 0: none)] [--settle-max 120 (after the last join, probe gossip once (gossipEarly), then wait up to this many s for the peers' CPU to stop falling before the idle and gossip figures; 0: measure at once)] [--quick (links, idle CPU and gossip only: no tasks, newcomer or churn)]
  [--tabs 0 (real Chromium tabs of the built app joined through the relay's WebSocket; needs npm run build and Chromium)]`)
  process.exit(0)
}
const num = (k) => {
  const n = Number(a[k])
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${k} must be a non-negative number, got ${a[k]}`)
    process.exit(2)
  }
  return n
}
const sizes = a.sizes.split(',').map((s) => Number(s.trim()))
if (sizes.some((n) => !Number.isInteger(n) || n < 2)) {
  console.error('--sizes takes integers ≥ 2, e.g. 50,100,200')
  process.exit(2)
}
const workers = a.workers != null ? num('workers') : Math.max(cpus().length, Math.ceil(Math.max(...sizes) / PEERS_PER_THREAD))

const t0 = performance.now()
const load0 = loadavg()[0]
const header = () => ({
  when: new Date().toISOString(),
  machine: {
    cores: cpus().length,
    workers,
    node: process.version,
    loadAvgAtStart: Math.round(load0 * 10) / 10,
    loadAvgAtEnd: Math.round(loadavg()[0] * 10) / 10
  },
  goal: { peers: 200, gossipP99Ms: 500, everyTaskExactlyOnce: true },
  wallSeconds: Math.round((performance.now() - t0) / 1000)
})
const report = await runSim({
  sizes,
  donorShare: num('donors'),
  workers,
  maxPeers: a['max-peers'] != null ? num('max-peers') : undefined,
  link: { latencyMs: num('latency'), jitterMs: num('jitter'), loss: num('loss') },
  probes: num('probes'),
  probeEveryMs: num('probe-every'),
  tasks: num('tasks'),
  taskConcurrency: num('concurrency'),
  agents: num('agents'),
  churnPerMinute: num('churn'),
  churnSeconds: num('churn-seconds'),
  maxLagP99Ms: num('max-lag'),
  idleSeconds: num('idle-seconds'),
  settleMaxSeconds: num('settle-max'),
  quick: a.quick,
  targetPeers: a['target-peers'] != null ? num('target-peers') : undefined,
  trimLinks: a['trim-links'],
  presencePull: !a['no-presence-pull'],
  departures: !a['no-departures'],
  newcomerAnswers: !a['no-newcomer-answers'],
  ...(a['discovery-broadcast'] ? { discoveryBroadcast: true } : {}),
  verifyCache: !a['no-verify-cache'],
  tabs: num('tabs'),
  launchBrowser: num('tabs') > 0 ? (await import('../test/harness.mjs')).launchBrowser : undefined,
  log: (line) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1)} s] ${line}`),
  // The figures so far after each size, marked partial: a long run leaves them if it is stopped.
  onSize: async (report) => {
    await writeFile(a.out, `${JSON.stringify({ ...header(), partial: true, ...report }, null, 2)}\n`)
  }
})
const out = { ...header(), ...report }
console.log(
  '\nsize  links(min/mean)  gossip p50/p99 ms  early p99  settled s  to-all p99  presence ms  newcomer presence/registry ms  tasks ok/once  churn p99  loop p99  idle ms/s/peer  held  goal'
)
for (const s of report.sizes) {
  console.log(
    `${String(s.peers).padStart(4)}  ${s.links.min}/${s.links.mean}`.padEnd(22) +
      `${s.gossip.delivery.p50}/${s.gossip.delivery.p99}`.padEnd(19) +
      `${s.gossipEarly?.delivery.p99 ?? '-'}`.padEnd(11) +
      `${s.settle == null ? '-' : `${Math.round(s.settle.ms / 1000)}${s.settle.settled ? '' : '+'}`}`.padEnd(11) +
      `${s.gossip.toAll.p99}`.padEnd(12) +
      `${s.presenceConvergedMs}`.padEnd(13) +
      `${s.newcomerPresenceMs ?? '-'}/${s.registrySync?.ms ?? '-'}`.padEnd(31) +
      // A --quick run submits no tasks: nothing to say of them (and the goal is not met without them).
      `${s.tasks.submitted === 0 ? '-' : `${s.tasks.succeeded}/${s.tasks.submitted} ${s.tasks.exactlyOnce ? 'once' : 'NOT ONCE'}`}`.padEnd(15) +
      `${s.churn?.delivery.p99 ?? '-'}`.padEnd(11) +
      `${s.loopLag.p99}`.padEnd(10) +
      `${Number.isFinite(s.perPeer?.idleCpuMsPerSecond) ? s.perPeer.idleCpuMsPerSecond : '-'}`.padEnd(16) +
      `${s.held}`.padEnd(6) +
      `${s.goalMet}`
  )
}
if (report.notReached != null) console.log(`not reached: ${report.notReached.sizes.join(', ')} (${report.notReached.reason})`)
await writeFile(a.out, `${JSON.stringify(out, null, 2)}\n`)
console.log(`wrote ${a.out} (${out.wallSeconds} s)`)
process.exit(0)
