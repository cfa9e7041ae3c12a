/**
 * The simulator's measurements (`npm run sim`): one mesh grown through the sizes asked
 * for, and at each size gossip delivery, presence convergence, registry sync to a
 * newcomer, task routing with a share of donors (every task counted), and churn.
 */
import type { Server } from 'node:http'
import type { Browser } from 'playwright-core'
import { type SimTabs, openTabs } from './tabs.ts'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { cpus } from 'node:os'
import { writeFile } from 'node:fs/promises'
import type { LinkShape } from './link.ts'
import type { GroupCommand, TaskOutcome } from './group.ts'
import { LINK_COUNTERS, leaveThreads, linkStats } from './link.ts'
import { type SimPeerInit, type SimRelay, quantile, serveAgents, startSimRelay, waitFor } from './mesh.ts'
import { type GroupHandle, startGroups } from './threads.ts'
import { type Seeder, seedRecords, startSeeder } from './registry-seed.ts'
import { startProfile } from './profiler.ts'
import { PRESENCE_TOPIC, presenceIntervalMs } from '../lib/mesh/index.ts'

/**
 * How long to wait for presence to reach everyone at `size` peers: a peer that neither
 * answered a newcomer nor linked to it is heard at its next periodic announcement, up to
 * one re-announcement interval (which grows with the mesh), plus the time to flood it.
 */
export function presenceWaitMs(size: number): number {
  return Math.max(60_000, Math.round(presenceIntervalMs(size) * 1.25) + 15_000)
}

/** Options of a simulation run. */
export interface SimOptions {
  /** Mesh sizes, grown in one mesh in this order (peers, the seeder not counted). */
  sizes: number[]
  /** Share of peers donating compute. Default 0.2. */
  donorShare?: number
  /** Direct connection budget per peer (the mesh's maxPeers). Default the mesh's (48). */
  maxPeers?: number
  /** Direct links a peer dials on its own up to (the mesh's targetPeers). Default the mesh's (16). */
  targetPeers?: number
  /** Close incoming links past the high-water mark (the mesh's trimLinks). Default false. */
  trimLinks?: boolean
  /** Peers pull presences when joining (the mesh's presencePull). Default true. */
  presencePull?: boolean
  /** Members answer a newcomer's presence with theirs (the mesh's newcomerAnswers). Default true. */
  newcomerAnswers?: boolean
  /** Peers broadcast pubsub peer discovery (the mesh's discoveryBroadcast). Default: the mesh's (only without the pull). */
  discoveryBroadcast?: boolean
  /** The relay gossips departure notices (relay/relay.ts `departures`). Default true; false is the A/B baseline. */
  departures?: boolean
  /** Worker threads the peers are spread over (0: all in this thread). Default 0. */
  workers?: number
  /** Share Ed25519 verdicts between the peers of a thread (a simulation shortcut, listed in the report). Default true. */
  verifyCache?: boolean
  /** Real Chromium tabs of the built app joined through the relay's WebSocket (tabs.ts). Default 0. */
  tabs?: number
  /** Starts Chromium for the tabs (test/harness.mjs's launchBrowser). */
  launchBrowser?: () => Promise<Browser>
  link?: LinkShape
  /** Gossip probes per size. Default 40. */
  probes?: number
  /** Spacing of probes in ms. Default 100. */
  probeEveryMs?: number
  /** Probe size in bytes (a presence is ~300-600). Default 512. */
  probeBytes?: number
  /** Tasks per size. Default 100. */
  tasks?: number
  /** Tasks in flight at once. Default 10. */
  taskConcurrency?: number
  /** Agents in the registry a newcomer syncs (0: no registry phase). Default 1000. */
  agents?: number
  /** Where minted registry records are cached. */
  cacheFile?: string
  /** Peers replaced per minute during the churn phase (0: none). Default 60. */
  churnPerMinute?: number
  /** Length of the churn phase in s. Default 15. */
  churnSeconds?: number
  /** Seconds of quiet (no probes, no tasks) over which each size's idle CPU per peer is measured (0: none). Default 10. */
  idleSeconds?: number
  /**
   * Before the idle and gossip figures, wait up to this many seconds for the mesh to settle
   * after its last join (settle()), having probed gossip once right after that join
   * (`gossipEarly`). 0: measure at once, as before. Default 120.
   */
  settleMaxSeconds?: number
  /** Measure links, idle CPU and gossip only (no tasks, newcomer or churn): quick A/B runs. Default false. */
  quick?: boolean
  /** Project root (for the built agents). Default cwd. */
  root?: string
  /**
   * Stop growing once a size did not hold: this process's event loop lagged more than
   * this p99 (ms), i.e. the figures measure the simulator's CPU rather than the mesh. Default 1000; 0 never stops.
   */
  maxLagP99Ms?: number
  log?: (line: string) => void
  /** Called with the report so far after each size (bench/sim.mjs writes it, so a long run leaves its figures as it goes). */
  onSize?: (report: SimReport) => void | Promise<void>
}

/** p50/p99/max of a list of ms, rounded to 0.1. */
export interface Dist {
  n: number
  p50: number
  p99: number
  max: number
}

const r1 = (x: number): number => Math.round(x * 10) / 10
export function dist(xs: readonly number[]): Dist {
  return { n: xs.length, p50: r1(quantile(xs, 0.5)), p99: r1(quantile(xs, 0.99)), max: r1(xs.length === 0 ? Number.NaN : Math.max(...xs)) }
}

/** Figures at one mesh size. */
export interface SizeReport {
  peers: number
  donors: number
  /** Wall time to start the peers added for this size, and per peer. */
  growMs: number
  /** After the last peer of this size started: until every peer held every other's presence. */
  presenceConvergedMs: number | null
  /** Direct links per peer once settled. */
  links: { min: number; mean: number; max: number }
  gossip: {
    /** Each (probe, peer) delivery: ms from publish to arrival. */
    delivery: Dist
    /** Per probe: ms until the last peer had it. */
    toAll: Dist
    delivered: number
    expected: number
  }
  /**
   * The same probes right after the last join (presence converged, links made), while the
   * join's tail still runs: presence pulls and answers, grafts, dials and refusals. `gossip`
   * is measured once the mesh has settled (`settle`).
   */
  gossipEarly?: { delivery: Dist; toAll: Dist; delivered: number; expected: number }
  /** How the mesh settled before the figures: CPU and bytes received per peer-second in each window, and when it stopped falling. */
  settle?: SettleReport
  /** Real browser tabs in the mesh (counted in gossip above too): probes delivered to them, and tabs lacking a peer's presence after the probes. */
  tabs?: { n: number; delivery: Dist; delivered: number; expected: number; lackingPresence: number }
  /** A newcomer: until it held every peer's presence and every peer held its. */
  newcomerPresenceMs?: number
  /** A newcomer: until its registry listed every seeded agent. */
  registrySync?: { agents: number; ms: number }
  tasks: {
    submitted: number
    /** Tasks whose handle resolved with the right output (each resolves once: completed exactly once). */
    succeeded: number
    failed: number
    /** Tasks whose step ran on a donor other than the submitter. */
    onDonor: number
    /** Offers sent (the dispatcher's 'dispatched' step events): more than one per task when an offer or lease timed out. */
    dispatched: number
    /** Runs of these tasks counted on the donors (their audit logs' 'task.served'). */
    runs: number
    /** Tasks run on more than one donor: a donor that answered late still ran a step the submitter had re-offered. */
    ranTwice: number
    /** Tasks that completed but that no donor's audit log shows run (a bug if ever > 0). */
    notRun: number
    /** Attempts submitted again after a timeout (tests only: the bench counts them as failed). */
    retried: number
    /** Offers a donor refused because it could not get the agent or its module (NoAgentError, AgentUnavailableError: nothing ran there; offered elsewhere). */
    refusedNoAgent: number
    /** Tasks that ran more often than they were offered (a bug if ever > 0). */
    unexplained: number
    /** Every task completed once with the right output, and ran on a donor no more often than it was offered. */
    exactlyOnce: boolean
    latency: Dist
    /**
     * The succeeded tasks' time by part (ms): submit to the first offer (planning and routing),
     * first offer to a donor's accept, accept to the result back (the run on the donor, its
     * first agent start included, and the way back); and the whole time of the first task to
     * complete on each donor against the rest (a donor's sandbox starts on its first run).
     */
    phases?: { toOffer: Dist; toAccept: Dist; toResult: Dist; firstOnDonor: Dist; laterOnDonor: Dist }
    perSecond: number
  }
  churn?: {
    perMinute: number
    seconds: number
    left: number
    joined: number
    /** Probes sent during churn: deliveries to peers up for the whole probe. */
    delivery: Dist
    delivered: number
    expected: number
    /** Joiners: until each held the presence of every peer up throughout (n: joiners that did within 30 s). */
    joinerPresence: Dist
    /**
     * The peers that left, in the books of the peers up throughout: (peer, leaver) pairs still held
     * when the churn ended, of `pairs`, and the ms after it until none was (null: not within 30 s;
     * `heldAfter` pairs were left then).
     */
    leavers: { held: number; pairs: number; forgottenMs: number | null; heldAfter: number }
  }
  /** Bytes over simulated links during this size, and chunks resent (loss). */
  link: { bytes: number; chunks: number; resent: number }
  /**
   * CPU per peer, load-independent (process CPU time of every thread, relay and seeder
   * included, divided by peers and wall seconds): idle (`idleSeconds` of quiet once linked)
   * and during the gossip probes; heap and RSS per peer at the idle mark.
   */
  perPeer?: {
    idleCpuMsPerSecond: number
    probeCpuMsPerSecond: number
    /**
     * Gossip each peer received per second while probing, beside the probes (presence, above
     * all): the mesh's re-announcements come unevenly, and idle CPU moves with them; these say
     * how much of that met the probes, to set beside their p99.
     */
    probePresencePerSecond?: number
    probeRxBytesPerSecond?: number
    /** Presence messages (copies included) each peer received per second over the idle window. */
    idlePresencePerSecond?: number
    /** Presences the whole mesh announced per second (each flooded to every peer), over the idle window and while probing. */
    announcedPerSecond?: { idle: number; probing: number }
    /** How long the probes took, from the first sent until every one arrived everywhere (or the wait ran out). */
    probeWallMs?: number
    idleSeconds: number
    heapMB: number
    rssMB: number
    /** The busiest counters of the peers' metrics over the idle window, per peer-second (gossip RPCs and bytes per protocol): what the idle CPU went on. */
    idleCounters?: Record<string, number>
    /** The dial counters (mesh.dial.*) and links refused (mesh.links.refused.*) over the idle window, per peer-second. */
    idleDials?: Record<string, number>
  }
  /** CPU of this process (all peers) and its share of one core over the size's wall time. */
  cpu: { userMs: number; systemMs: number; wallMs: number; cores: number }
  /** The event-loop delay (ms) while the gossip probes ran (steady state), the worst of the threads running peers and the main thread: when high, the figures carry it. */
  loopLag: { p50: number; p99: number; max: number }
  /** Each peers' thread's garbage collections while probing, by kind: count, total and longest pause (ms). */
  gcDuringProbes?: Array<Record<string, { n: number; ms: number; max: number }>>
  /** The same with tasks, the newcomer's registry sync and churn (the main thread over the whole size, growth included). */
  loopLagAll: { p50: number; p99: number; max: number }
  /** Whether the gossip figures are the mesh's: the event loop's p99 lag during the probes stayed under maxLagP99Ms. */
  held: boolean
  /** The issue's goal at this size: it held, gossip p99 ≤ 500 ms with every probe delivered, and every task completed exactly once. */
  goalMet: boolean
  rssMB: number
}

/** The whole run. */
export interface SimReport {
  options: Omit<SimOptions, 'log' | 'root' | 'cacheFile' | 'onSize' | 'launchBrowser'>
  /** What the simulator does that a real mesh does not (or does elsewhere), so nobody mistakes the figures. */
  shortcuts: string[]
  sizes: SizeReport[]
  /** Sizes asked for but not reached: the run stopped growing at a size that did not hold (their figures do not exist). */
  notReached?: { sizes: number[]; reason: string }
}

/** The issue's gossip goal (issue 16): p99 delivery to every peer within this many ms. */
export const GOAL_GOSSIP_P99_MS = 500

/** The worst p50, p99 and max of several threads' event-loop delays. */
function worst(xs: Array<{ p50: number; p99: number; max: number }>): { p50: number; p99: number; max: number } {
  return { p50: r1(Math.max(...xs.map((x) => x.p50))), p99: r1(Math.max(...xs.map((x) => x.p99))), max: r1(Math.max(...xs.map((x) => x.max))) }
}

/** p50/p99/max of an event-loop delay histogram, in ms. */
const ms3 = (h: { percentile(p: number): number; max: number }): { p50: number; p99: number; max: number } => ({
  p50: r1(h.percentile(50) / 1e6),
  p99: r1(h.percentile(99) / 1e6),
  max: r1(h.max / 1e6)
})

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Run `fn` under V8's CPU profiler when `prefix` is set (ZS_SIM_IDLE_PROFILE=/tmp/x writes
 * /tmp/x-n<size>.cpuprofile for the idle window and /tmp/x-p<size>.cpuprofile for the
 * probes), and with `mesh` each worker thread's peers to /tmp/x-<tag>-<threadId>.cpuprofile.
 */
async function profiled(prefix: string | undefined, tag: string, fn: () => Promise<void>, mesh?: SimMesh): Promise<void> {
  if (prefix == null || prefix === '') return await fn()
  // The worker threads' peers too (their profiles are <prefix>-<tag>-<threadId>.cpuprofile).
  if (mesh != null) await mesh.ask({ op: 'profile' })
  const stop = await startProfile()
  try {
    await fn()
  } finally {
    await stop(`${prefix}-${tag}.cpuprofile`)
    if (mesh != null) await mesh.ask({ op: 'profile', path: `${prefix}-${tag}` })
  }
}

/** What each counter grew by between two traffic() sums, per `peerSeconds`, largest first. */
function diffTraffic(
  before: Record<string, number>,
  after: Record<string, number>,
  peerSeconds: number,
  round: (x: number) => number = r1
): Array<[string, number]> {
  return Object.entries(after)
    .map(([k, n]): [string, number] => [k, round((n - (before[k] ?? 0)) / peerSeconds)])
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
}

/** gossipsub's count of presence messages received, each copy before its checks. */
const PRESENCE_RECEIVED = `gossipsub_msg_received_prevalidation_total{topic="${PRESENCE_TOPIC}"}`

/** One counter's rate from diffTraffic() (0 when it did not move). */
function counterIn(rates: Array<[string, number]>, name: string): number {
  return rates.find(([k]) => k === name)?.[1] ?? 0
}

/** Records of counters (one per thread) summed by name. */
function summed(parts: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const sum: Record<string, number> = {}
  for (const part of parts) for (const [k, n] of Object.entries(part)) sum[k] = (sum[k] ?? 0) + n
  return sum
}

/** The tasks entry of a --quick run, which submits none. */
function noTasks(): SizeReport['tasks'] {
  return {
    submitted: 0,
    succeeded: 0,
    failed: 0,
    onDonor: 0,
    dispatched: 0,
    runs: 0,
    ranTwice: 0,
    notRun: 0,
    unexplained: 0,
    refusedNoAgent: 0,
    retried: 0,
    exactlyOnce: false,
    latency: dist([]),
    perSecond: 0
  }
}

/** CPU time of this process (every thread) and wall time while `fn` runs, in ms. */
async function measureCpu(fn: () => Promise<void>): Promise<{ cpuMs: number; wallMs: number }> {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await fn()
  const c = process.cpuUsage(c0)
  return { cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 }
}

/** The settling of a mesh after its last join (SimMesh.settle). */
export interface SettleReport {
  /** From the start of settle() until two windows in a row kept SETTLE_FALL of the CPU before them (or the cap). */
  ms: number
  settled: boolean
  windows: Array<{ cpuMsPerPeerSecond: number; rxBytesPerPeerSecond: number; announcedPerSecond?: number }>
}

/** Settle windows: each this long. */
const SETTLE_WINDOW_MS = 10_000
/** Settled once two windows in a row each kept more than this share of the CPU per peer of the one before (fell by less than 5 %). */
const SETTLE_FALL = 0.95
/** Bytes the peers' link ends received: libp2p's per-connection counter misses direct links, whose channels bypass it (as WebRTC's do). */
const RX_BYTES = LINK_COUNTERS.bytes
/** The peers' own presence announcements (mesh.presence.published), each then flooded to the whole mesh. */
const PRESENCE_PUBLISHED = 'mesh.presence.published'
const ANNOUNCE = 'mesh.presence.announce.'

/**
 * Presence announcements published over a window by the whole mesh, per second, and the
 * requests behind them by why (periodic, change, soon, link, followUp; several requests
 * within PRESENCE_MIN_SPACING_MS make one announcement). Each unique one costs every peer
 * its checks: when many peers re-announce in the same minute, the whole mesh's load rises.
 */
function announced(before: Record<string, number>, after: Record<string, number>, wallMs: number): { perSecond: number; why: Record<string, number> } {
  const rates = diffTraffic(before, after, wallMs / 1000)
  const why = Object.fromEntries(rates.filter(([k]) => k.startsWith(ANNOUNCE)).map(([k, v]) => [k.slice(ANNOUNCE.length), v]))
  return { perSecond: counterIn(rates, PRESENCE_PUBLISHED), why }
}

/** The parts of succeeded tasks' time (SizeReport tasks.phases), in the order they completed. */
export function taskPhases(done: ReadonlyArray<{ ms: number; phases: TaskOutcome['phases']; donor: string }>): NonNullable<SizeReport['tasks']['phases']> {
  const toOffer: number[] = []
  const toAccept: number[] = []
  const toResult: number[] = []
  const firstOnDonor: number[] = []
  const laterOnDonor: number[] = []
  const seen = new Set<string>()
  for (const d of done) {
    const { dispatched, accepted, succeeded } = d.phases
    if (dispatched != null) toOffer.push(dispatched)
    if (dispatched != null && accepted != null) toAccept.push(accepted - dispatched)
    if (accepted != null && succeeded != null) toResult.push(succeeded - accepted)
    ;(seen.has(d.donor) ? laterOnDonor : firstOnDonor).push(d.ms)
    seen.add(d.donor)
  }
  return { toOffer: dist(toOffer), toAccept: dist(toAccept), toResult: dist(toResult), firstOnDonor: dist(firstOnDonor), laterOnDonor: dist(laterOnDonor) }
}

/** Deliveries slower than this are the probes' tail (ProbeTail). */
const TAIL_MS = 300

/**
 * Where the probes' slow deliveries (over TAIL_MS) fell: a few receivers holding most of them
 * is a place in the mesh (a peer reached only through IHAVE at its heartbeat, a crowded
 * thread); spread over receivers but bunched in a few probes is a moment of load.
 */
export interface ProbeTail {
  overMs: number
  deliveries: number
  receivers: number
  probes: number
  /** Share of the slow deliveries held by the 5 receivers with the most. */
  top5ReceiversShare: number
  /** Slow deliveries by the receiver's thread. */
  byThread: Record<string, number>
  /** Slow deliveries by the probe's place in the sequence (first, second … fourth quarter). */
  byQuarter: number[]
}

function probeTail(sent: ReadonlyArray<{ seq: number; at: number; to: string[] }>, got: ReadonlyMap<string, number>, peers: readonly PeerRef[]): ProbeTail {
  const thread = new Map(peers.map((p) => [p.id, p.group.name]))
  const perReceiver = new Map<string, number>()
  const byThread: Record<string, number> = {}
  const byQuarter = [0, 0, 0, 0]
  const probes = new Set<number>()
  let deliveries = 0
  sent.forEach((s, i) => {
    for (const id of s.to) {
      const at = got.get(`${s.seq}/${id}`)
      if (at == null || at - s.at <= TAIL_MS) continue
      deliveries++
      probes.add(s.seq)
      perReceiver.set(id, (perReceiver.get(id) ?? 0) + 1)
      const t = thread.get(id) ?? 'tab'
      byThread[t] = (byThread[t] ?? 0) + 1
      const q = Math.min(3, Math.floor((i * 4) / sent.length))
      byQuarter[q] = (byQuarter[q] ?? 0) + 1
    }
  })
  const top5 = [...perReceiver.values()].sort((a, b) => b - a).slice(0, 5)
  return {
    overMs: TAIL_MS,
    deliveries,
    receivers: perReceiver.size,
    probes: probes.size,
    top5ReceiversShare: deliveries === 0 ? 0 : r1((top5.reduce((a, b) => a + b, 0) / deliveries) * 100) / 100,
    byThread,
    byQuarter
  }
}

/** Whether CPU per peer-second over consecutive settle windows has stopped falling: the last two each kept SETTLE_FALL of the one before. */
export function settledAfter(cpu: readonly number[]): boolean {
  const n = cpu.length
  if (n < 3) return false
  return (cpu[n - 1] as number) > (cpu[n - 2] as number) * SETTLE_FALL && (cpu[n - 2] as number) > (cpu[n - 3] as number) * SETTLE_FALL
}

/** A peer of the mesh: its id and the group (thread) that runs it. */
export interface PeerRef {
  id: string
  group: GroupHandle
  donor: boolean
}

/** A running simulated mesh: relay, agent server, seeder, and peers spread over groups (threads). */
export class SimMesh {
  readonly peers: PeerRef[] = []
  readonly donors = new Set<PeerRef>()
  groups: GroupHandle[] = []
  relay: SimRelay | undefined
  seeder: Seeder | undefined
  tabs: SimTabs | undefined
  #server: Server | undefined
  agentsBaseUrl = ''
  #probeSeq = 0
  readonly opts: SimOptions

  constructor(opts: SimOptions) {
    this.opts = opts
  }

  get log(): (line: string) => void {
    return this.opts.log ?? (() => {})
  }

  async start(): Promise<void> {
    this.groups = await startGroups(this.opts.workers ?? 0, { verifyCache: this.opts.verifyCache ?? true })
    this.relay = await startSimRelay(this.opts.link, { departures: this.opts.departures })
    const served = await serveAgents(this.opts.root)
    this.#server = served.server
    this.agentsBaseUrl = served.baseUrl
    const agents = this.opts.agents ?? 1000
    if (agents > 0) {
      const t = performance.now()
      const records = await seedRecords(agents, this.opts.cacheFile ?? 'node_modules/.cache/zerostate-sim/registry.json')
      this.seeder = await startSeeder({ relay: this.relay.addr, link: this.opts.link }, records)
      this.log(`seeder holds ${records.length} agents (${Math.round(performance.now() - t)} ms)`)
    }
    const tabs = this.opts.tabs ?? 0
    if (tabs > 0) {
      if (this.opts.launchBrowser == null) throw new Error('tabs need launchBrowser')
      const t = performance.now()
      this.tabs = await openTabs(tabs, this.relay.wsAddr, this.opts.launchBrowser, this.opts.root)
      this.log(`${tabs} browser tab(s) joined through ${this.relay.wsAddr} (${Math.round(performance.now() - t)} ms)`)
    }
  }

  /** Start one peer in the least loaded group (not counted in `peers` unless `join`). */
  async start1(donate: boolean, join = true): Promise<PeerRef> {
    if (this.relay == null) throw new Error('start() first')
    const group = this.groups.reduce((a, b) => (b.size < a.size ? b : a))
    group.size++
    try {
      const init: SimPeerInit = {
        relay: this.relay.addr,
        agentsBaseUrl: this.agentsBaseUrl,
        donate,
        maxPeers: this.opts.maxPeers,
        targetPeers: this.opts.targetPeers,
        trimLinks: this.opts.trimLinks,
        presencePull: this.opts.presencePull,
        newcomerAnswers: this.opts.newcomerAnswers,
        discoveryBroadcast: this.opts.discoveryBroadcast,
        link: this.opts.link
      }
      const id = (await group.run({ op: 'add', init })) as string
      const p = { id, group, donor: donate }
      if (join) {
        this.peers.push(p)
        if (donate) this.donors.add(p)
      }
      return p
    } catch (err) {
      group.size--
      throw err
    }
  }

  /** Start one peer. */
  add(donate: boolean): Promise<PeerRef> {
    return this.start1(donate)
  }

  /** Stop one peer and forget it. */
  async remove(p: PeerRef): Promise<void> {
    const i = this.peers.indexOf(p)
    if (i >= 0) this.peers.splice(i, 1)
    this.donors.delete(p)
    p.group.size--
    await p.group.run({ op: 'remove', id: p.id })
  }

  /** Grow to `size` peers, `donorShare` of them donating (a few at a time per group: their agents load). */
  async grow(size: number): Promise<void> {
    const share = this.opts.donorShare ?? 0.2
    const wantDonors = Math.round(size * share)
    const newDonors = Math.max(0, wantDonors - this.donors.size)
    const newOthers = Math.max(0, size - this.peers.length - newDonors)
    const batch = Math.max(1, this.groups.length)
    for (let i = 0; i < newOthers; i += batch) await Promise.all(Array.from({ length: Math.min(batch, newOthers - i) }, () => this.add(false)))
    for (let i = 0; i < newDonors; i += 4) await Promise.all(Array.from({ length: Math.min(4, newDonors - i) }, () => this.add(true)))
  }

  ids(): string[] {
    return [...this.peers.map((p) => p.id), ...(this.seeder != null ? [this.seeder.id] : [])]
  }

  /** Ask every group; the answers in group order. */
  async ask<T>(cmd: GroupCommand): Promise<T[]> {
    return (await Promise.all(this.groups.map((g) => g.run(cmd)))) as T[]
  }

  /** Peers (of `only`, else all) that do not hold the presence of every id of `ids`. */
  async lacking(ids: string[], only?: string[]): Promise<string[]> {
    return (await this.ask<string[]>({ op: 'presence', ids, only })).flat()
  }

  /** Wait until every peer holds every other's presence. */
  async presenceConverged(ms: number): Promise<number> {
    const ids = this.ids()
    const mine = this.peers.map((p) => p.id)
    return await waitFor(async () => (await this.lacking(ids, mine)).length === 0, ms, 'presence convergence', 200)
  }

  /** Every counter of every group's peers, summed by series. */
  async traffic(): Promise<Record<string, number>> {
    return summed(await this.ask<Record<string, number>>({ op: 'traffic' }))
  }

  /** Bytes and chunks every link end received, and chunks resent: the peers' threads', and this thread's (the relay's) when the peers run elsewhere. */
  async linkTotals(): Promise<SizeReport['link']> {
    const t = await this.traffic()
    const own = (this.opts.workers ?? 0) > 0
    const total = (k: keyof typeof LINK_COUNTERS): number => (t[LINK_COUNTERS[k]] ?? 0) + (own ? linkStats[k] : 0)
    return { bytes: total('bytes'), chunks: total('chunks'), resent: total('resent') }
  }

  /**
   * Wait for the mesh to settle after its last join: the join's tail (presence pulls and
   * answers, grafts, dials, refused links) costs each peer CPU for a minute or more after
   * presence converged, and gossip measured within it measures that tail as much as gossip.
   * Windows of SETTLE_WINDOW_MS until two in a row each fell by less than 5 % in CPU per
   * peer-second from the one before (one such window was noise as often as not: 8.9 then
   * 8.2 ms, where the mesh went on to ~5.5), or `maxMs`.
   */
  async settle(maxMs: number, log: (line: string) => void): Promise<SettleReport> {
    const t0 = performance.now()
    const windows: SettleReport['windows'] = []
    const n = this.peers.length
    for (;;) {
      const before = await this.traffic()
      const w = await measureCpu(() => sleep(SETTLE_WINDOW_MS))
      const after = await this.traffic()
      const peerSeconds = (n * w.wallMs) / 1000
      const a = announced(before, after, w.wallMs)
      const win = {
        cpuMsPerPeerSecond: r1(w.cpuMs / peerSeconds),
        rxBytesPerPeerSecond: Math.round(((after[RX_BYTES] ?? 0) - (before[RX_BYTES] ?? 0)) / peerSeconds),
        announcedPerSecond: a.perSecond
      }
      windows.push(win)
      log(
        `settling: ${win.cpuMsPerPeerSecond} ms CPU and ${win.rxBytesPerPeerSecond} bytes received per peer-second; the mesh announced ${a.perSecond} presences a second (asked: ${JSON.stringify(a.why)})`
      )
      const ms = Math.round(performance.now() - t0)
      if (settledAfter(windows.map((x) => x.cpuMsPerPeerSecond))) return { ms, settled: true, windows }
      if (ms + SETTLE_WINDOW_MS > maxMs) return { ms, settled: false, windows }
    }
  }

  /** The peers' dial and link-refusal counters (mesh.dial.*, mesh.links.refused.*), summed over the threads. */
  async dialCounters(): Promise<Record<string, number>> {
    const parts = await Promise.all(['mesh.dial.', 'mesh.links.refused.'].map((part) => this.ask<Record<string, number>>({ op: 'counters', part })))
    return summed(parts.flat())
  }

  /** Direct links of every peer of the mesh. */
  async linkCounts(): Promise<number[]> {
    const mine = new Set(this.peers.map((p) => p.id))
    return (await this.ask<Array<[string, number]>>({ op: 'links' }))
      .flat()
      .filter(([id]) => mine.has(id))
      .map(([, n]) => n)
  }

  /** A line on the least linked peer: its links, relay status, presences held and its dialer's recent failures. */
  async explainLeastLinked(): Promise<string> {
    const mine = new Set(this.peers.map((p) => p.id))
    const counts = (await this.ask<Array<[string, number]>>({ op: 'links' })).flat().filter(([id]) => mine.has(id))
    const least = counts.reduce((a, b) => (b[1] < a[1] ? b : a))
    const diag = (await this.ask<unknown>({ op: 'diag', id: least[0] })).find((d) => d != null)
    return `least linked: ${least[0].slice(-8)} with ${least[1]} direct links: ${JSON.stringify(diag)}`
  }

  /** Wait until every peer has at least `min` direct links. */
  async linked(min: number, ms: number): Promise<number> {
    return await waitFor(async () => (await this.linkCounts()).every((n) => n >= min), ms, `every peer with ${min} direct links`, 200)
  }

  /**
   * Send `count` probes from random peers; deliveries to the peers in `audience` (default all, at send
   * time). With an audience, a peer that has left it by the end (churn took it away) is not expected:
   * what it received went with it, so only peers up for the whole probe count.
   */
  async probe(
    count: number,
    everyMs: number,
    bytes: number,
    audience?: () => PeerRef[],
    settleMs = 5000
  ): Promise<{
    delivery: number[]
    toAll: number[]
    delivered: number
    expected: number
    tabs: { delivery: number[]; delivered: number; expected: number }
    tail: ProbeTail
  }> {
    const sent: Array<{ seq: number; at: number; to: string[] }> = []
    for (let i = 0; i < count; i++) {
      const from = this.peers[Math.floor(Math.random() * this.peers.length)] as PeerRef
      const seq = this.#probeSeq++
      const to = [...(audience?.() ?? this.peers).filter((p) => p !== from).map((p) => p.id), ...(this.tabs?.ids ?? [])]
      const at = (await from.group.run({ op: 'probe', id: from.id, seq, bytes })) as number
      sent.push({ seq, at, to })
      await sleep(everyMs)
    }
    const seqs = sent.map((s) => s.seq)
    const got = new Map<string, number>()
    const collect = async (): Promise<boolean> => {
      for (const [id, seq, at] of (await this.ask<Array<[string, number, number]>>({ op: 'arrivals', seqs })).flat()) got.set(`${seq}/${id}`, at)
      for (const [id, seq, at] of (await this.tabs?.arrivals(seqs)) ?? []) got.set(`${seq}/${id}`, at)
      const gone = leavers()
      return sent.every((s) => s.to.every((id) => got.has(`${s.seq}/${id}`) || gone.has(id)))
    }
    /** Peers of the audience at send time that have left it since (never tabs). */
    const leavers = (): Set<string> => {
      if (audience == null) return new Set()
      const still = new Set(audience().map((p) => p.id))
      return new Set(sent.flatMap((s) => s.to).filter((id) => !still.has(id) && !tabIds.has(id)))
    }
    const tabIds = new Set(this.tabs?.ids ?? [])
    await waitFor(collect, settleMs, 'every probe delivered', 200).catch(() => {})
    const gone = leavers()
    for (const s of sent) s.to = s.to.filter((id) => !gone.has(id))
    const delivery: number[] = []
    const toAll: number[] = []
    let delivered = 0
    let expected = 0
    const tabs = { delivery: [] as number[], delivered: 0, expected: 0 }
    for (const s of sent) {
      let last = 0
      let complete = true
      for (const id of s.to) {
        expected++
        if (tabIds.has(id)) tabs.expected++
        const at = got.get(`${s.seq}/${id}`)
        if (at == null) {
          complete = false
          continue
        }
        delivered++
        delivery.push(at - s.at)
        if (tabIds.has(id)) {
          tabs.delivered++
          tabs.delivery.push(at - s.at)
        }
        last = Math.max(last, at - s.at)
      }
      if (complete) toAll.push(last)
    }
    return { delivery, toAll, delivered, expected, tabs, tail: probeTail(sent, got, this.peers) }
  }

  /** Tasks from non-donors onto the hash agent, `concurrency` in flight; each checked and counted on the donors. */
  /**
   * `retries`: a task that failed on a timeout (an offer not answered, an agent not started
   * in time: a loaded machine) is submitted again as a new task, up to this many times
   * (tests on a busy machine); every attempt is counted in `submitted`, `dispatched` and
   * `runs`, and `exactlyOnce` then means every input completed once with the right output.
   */
  async tasks(count: number, concurrency: number, tag: string, budgetMs = 90_000, retries = 0): Promise<SizeReport['tasks']> {
    const submitters = this.peers.filter((p) => !this.donors.has(p))
    const hash = (await this.ask<string | null>({ op: 'hashAgent' })).find((id) => id != null)
    if (hash == null) throw new Error('the bundled hash agent is not listed')
    const subs = new Set(submitters.map((p) => p.id))
    await waitFor(
      async () => (await this.ask<string[]>({ op: 'noDonor' })).flat().every((id) => !subs.has(id)),
      30_000,
      'every submitter sees a donor',
      200
    ).catch(async (err: Error) => {
      this.log(err.message)
      const why = (await this.ask<unknown[]>({ op: 'noDonorWhy', ids: [...subs] })).flat()
      this.log(`${why.length} submitter(s) without a linked donor: ${JSON.stringify(why.slice(0, 8))}`)
    })
    const lacking = (await this.ask<string[]>({ op: 'lacking', agent: hash })).flat()
    if (lacking.length > 0) this.log(`${lacking.length} donor(s) do not list the hash agent: ${lacking.map((id) => id.slice(-8)).join(', ')}`)
    const donorIds = new Set([...this.donors].map((d) => d.id))
    const latency: number[] = []
    const ids: string[] = []
    const offers = new Map<string, number>()
    const reoffered = new Map<string, string[]>()
    let succeeded = 0
    let failed = 0
    let onDonor = 0
    let retried = 0
    const okIds: string[] = []
    const done: Array<{ ms: number; phases: TaskOutcome['phases']; donor: string }> = []
    let next = 0
    const t0 = performance.now()
    const worker = async (): Promise<void> => {
      // No new task after budgetMs: a saturated process would take minutes for the rest.
      while (next < count && performance.now() - t0 < budgetMs) {
        const i = next++
        const from = submitters[i % submitters.length] as PeerRef
        for (let attempt = 0; ; attempt++) {
          const o = (await from.group.run({ op: 'submit', id: from.id, agent: hash, input: `sim ${tag} task ${i}` })) as TaskOutcome
          ids.push(o.taskId)
          offers.set(o.taskId, o.offers)
          if (o.reoffered.length > 0) reoffered.set(o.taskId, o.reoffered)
          if (o.ok) {
            succeeded++
            okIds.push(o.taskId)
            latency.push(o.ms)
            done.push({ ms: o.ms, phases: o.phases, donor: o.stepPeers[0] ?? '' })
            if (o.stepPeers.every((peer) => peer !== from.id && donorIds.has(peer))) onDonor++
            break
          }
          if (attempt < retries && /did not (answer|start)|timed? ?out/i.test(o.error ?? '')) {
            retried++
            this.log(`task ${i} failed on a timeout, submitted again: ${o.error}`)
            continue
          }
          failed++
          this.log(`task ${i} failed: ${o.error}`)
          break
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, () => worker()))
    const elapsed = performance.now() - t0
    // Count each task's runs where they happened: the donors' audit logs.
    const runs = new Map<string, number>()
    for (const [taskId, n] of (await this.ask<Array<[string, number]>>({ op: 'served', taskIds: ids })).flat()) runs.set(taskId, (runs.get(taskId) ?? 0) + n)
    const total = [...runs.values()].reduce((a, b) => a + b, 0)
    const ranTwice = [...runs.values()].filter((n) => n > 1).length
    // A task that completed and ran nowhere would be a bug; an attempt that timed out may not have run.
    const notRun = okIds.filter((id) => !runs.has(id)).length
    const unexplained = ids.filter((id) => (runs.get(id) ?? 0) > (offers.get(id) ?? 0)).length
    if (ranTwice > 0) {
      this.log(`${ranTwice} task(s) ran on two donors (offers: ${ids.map((id) => offers.get(id) ?? 0).join(',')})`)
      const why = [...runs].filter(([, n]) => n > 1).map(([id]) => reoffered.get(id) ?? ['(no failed step event)'])
      this.log(`why they were offered again: ${JSON.stringify(why.slice(0, 5))}`)
    }
    if (reoffered.size > 0)
      this.log(`offered again after a failed attempt: ${reoffered.size} task(s), e.g. ${JSON.stringify([...reoffered.values()].slice(0, 3))}`)
    const submitted = ids.length
    const phases = taskPhases(done)
    this.log(
      `task parts, p50/p99 ms: to the first offer ${phases.toOffer.p50}/${phases.toOffer.p99}, to a donor's accept ${phases.toAccept.p50}/${phases.toAccept.p99}, to the result ${phases.toResult.p50}/${phases.toResult.p99}; a donor's first task ${phases.firstOnDonor.p50}/${phases.firstOnDonor.p99} (${phases.firstOnDonor.n}), its later ones ${phases.laterOnDonor.p50}/${phases.laterOnDonor.p99} (${phases.laterOnDonor.n})`
    )
    return {
      submitted,
      succeeded,
      failed,
      onDonor,
      dispatched: [...offers.values()].reduce((a, b) => a + b, 0),
      runs: total,
      ranTwice,
      notRun,
      unexplained,
      refusedNoAgent: [...reoffered.values()].flat().filter((why) => why.includes('NoAgentError') || why.includes('AgentUnavailableError')).length,
      retried,
      exactlyOnce: submitted === count + retried && succeeded === count && failed === 0 && notRun === 0 && unexplained === 0,
      latency: dist(latency),
      phases,
      perSecond: r1((succeeded / elapsed) * 1000)
    }
  }

  async stop(): Promise<void> {
    await this.tabs?.stop().catch(() => {})
    for (const g of this.groups) await g.close().catch(() => {})
    this.peers.length = 0
    this.donors.clear()
    await this.seeder?.stop().catch(() => {})
    await this.relay?.stop().catch(() => {})
    this.#server?.close()
    leaveThreads()
  }
}

/** The simulator's shortcuts and differences from real tabs, as sim.json lists them. */
export function simShortcuts(opts: Pick<SimOptions, 'verifyCache' | 'workers' | 'sizes'>): string[] {
  const threads = Math.max(1, opts.workers ?? 0)
  const perThread = Math.ceil(Math.max(...opts.sizes) / threads)
  return [
    ...((opts.verifyCache ?? true)
      ? [
          'verify-cache: the peers of one worker thread share Ed25519 verdicts (src/sim/verify-cache.ts), keyed by the exact key, signed bytes and signature; a real tab checks every signature itself, on its own CPU'
        ]
      : []),
    'direct links skip Noise: as @libp2p/webrtc between browsers (DTLS encrypts in the browser network stack, outside JavaScript); the link to the relay uses Noise as a WebSocket does',
    'direct links carry each stream as a channel of messages (src/sim/channels.ts), as WebRTC gives each stream a data channel, but without its protobuf framing, SCTP flow control or 16 KiB buffering; the link under them is one ordered queue, so a lost message holds back every channel behind it (SCTP holds back only its own channel)',
    'direct dials are not signalled through the relay (no SDP/ICE exchange); a dial costs one simulated round trip',
    'no RTCPeerConnection: the liveness monitor, which reads its stats (in a tab every 500 ms per link), does not judge simulated links (they close when their end closes them), and their RTTs are sampled with a ping frame each muxer answers (as yamux answers its PING), where a tab reads them from those same stats',
    `every peer runs on this machine's ${cpus().length} shared cores, up to ~${perThread} per thread (${threads} thread${threads === 1 ? '' : 's'}): event-loop lag of one peer delays its thread-mates, where each tab has an event loop of its own (loopLag says how much)`
  ]
}

/** Run the simulation through `opts.sizes`; one SizeReport per size. */
export async function runSim(opts: SimOptions): Promise<SimReport> {
  const log = opts.log ?? (() => {})
  const mesh = new SimMesh(opts)
  const report: SimReport = {
    options: {
      sizes: opts.sizes,
      donorShare: opts.donorShare ?? 0.2,
      workers: opts.workers ?? 0,
      maxPeers: opts.maxPeers,
      targetPeers: opts.targetPeers,
      trimLinks: opts.trimLinks,
      presencePull: opts.presencePull !== false,
      newcomerAnswers: opts.newcomerAnswers !== false,
      discoveryBroadcast: opts.discoveryBroadcast,
      departures: opts.departures !== false,
      link: { latencyMs: 20, jitterMs: 10, loss: 0.01, retransmitMs: 200, ...opts.link },
      probes: opts.probes ?? 40,
      probeEveryMs: opts.probeEveryMs ?? 100,
      probeBytes: opts.probeBytes ?? 512,
      tasks: opts.tasks ?? 100,
      taskConcurrency: opts.taskConcurrency ?? 10,
      agents: opts.agents ?? 1000,
      churnPerMinute: opts.churnPerMinute ?? 60,
      churnSeconds: opts.churnSeconds ?? 15,
      idleSeconds: opts.idleSeconds ?? 10,
      settleMaxSeconds: opts.settleMaxSeconds ?? 120,
      maxLagP99Ms: opts.maxLagP99Ms ?? 1000
    },
    shortcuts: simShortcuts(opts),
    sizes: []
  }
  const o = report.options as Required<SimReport['options']>
  await mesh.start()
  try {
    for (const size of opts.sizes) {
      const lag = monitorEventLoopDelay({ resolution: 20 })
      lag.enable()
      const cpu0 = process.cpuUsage()
      const wall0 = performance.now()
      const link0 = await mesh.linkTotals()
      const t = performance.now()
      await mesh.grow(size)
      const growMs = performance.now() - t
      log(`${size} peers started in ${Math.round(growMs)} ms`)
      // Not converged in time is a figure too (null), not the end of the run.
      const presenceConvergedMs = await mesh.presenceConverged(presenceWaitMs(size)).catch(async (err: Error) => {
        log(err.message)
        const ids = mesh.ids()
        const lacking = await mesh
          .lacking(
            ids,
            mesh.peers.map((p) => p.id)
          )
          .catch(() => [])
        // Why: whether the lacking peer once held what it lacks (forgotten when a link closed), its gossip mesh.
        const why = (await mesh.ask<Array<{ lacks: string[] }>>({ op: 'lackingWhy', ids, only: lacking }).catch(() => [])).flat()
        // Who is missing: the ids the lacking peers lack, counted (one id missing everywhere is a peer whose presence never went out).
        // From the same answer: one question per id took minutes at 200 peers on a loaded machine.
        const missing = new Map<string, number>()
        for (const w of why) for (const short of w.lacks) missing.set(short, (missing.get(short) ?? 0) + 1)
        log(
          `${lacking.length} of ${size} peers lack a presence; missing (id: peers lacking it): ${JSON.stringify(Object.fromEntries([...missing].sort((x, y) => y[1] - x[1]).slice(0, 8)))}`
        )
        log(
          `lacking, why: ${JSON.stringify(why.slice(0, 8).map((w) => ({ ...w, lacks: w.lacks.length > 8 ? [...w.lacks.slice(0, 8), `… ${w.lacks.length} in all`] : w.lacks })))}`
        )
        // The peers most missing, themselves: their relay link, gossip mesh and presence counters.
        for (const [short] of [...missing].sort((x, y) => y[1] - x[1]).slice(0, 3)) {
          const id = ids.find((x) => x.endsWith(short))
          if (id == null) continue
          const diag = (await mesh.ask<unknown>({ op: 'diag', id }).catch(() => [])).find((d) => d != null)
          log(`missing ${short}: ${JSON.stringify(diag)}`)
        }
        return null
      })
      log(
        `gossip repairs (gossip-repair.ts), peers: ${JSON.stringify(await mesh.ask<Record<string, number>>({ op: 'counters', part: 'mesh.gossip.r' }))}, relay: ${JSON.stringify(Object.fromEntries(Object.entries(mesh.relay?.relay.counters() ?? {}).filter(([k]) => k.startsWith('relay.gossip.r'))))}`
      )
      // The relay's admission: a crowd of slow peers from one address can be taken for squatters (Probation).
      log(`relay admission: ${JSON.stringify(mesh.relay?.relay.admission())}`)
      // The other ways a presence goes missing or a link goes: refused by validators (rate, schema), set aside as outdated, links trimmed.
      log(
        `presence refusals and trims, peers: ${JSON.stringify(await mesh.ask<Record<string, number>>({ op: 'counters', part: 'mesh.gossip.' }))} ${JSON.stringify(await mesh.ask<Record<string, number>>({ op: 'counters', part: 'mesh.presence.' }))} ${JSON.stringify(await mesh.ask<Record<string, number>>({ op: 'counters', part: 'mesh.links.' }))}`
      )
      log(
        `presence converged ${presenceConvergedMs == null ? `not within ${presenceWaitMs(size) / 1000} s` : `${Math.round(presenceConvergedMs)} ms`} after the last start`
      )
      // The gossip mesh needs links: gossipsub's D is 6, so each peer wants 6 (or all of a smaller mesh).
      await mesh.linked(Math.min(6, size - 1), 30_000).catch(async (err: Error) => {
        log(err.message)
        // Why the least linked peer is: its relay, the presences it holds, its dialer's failures.
        await mesh.explainLeastLinked().then(log, () => {})
      })
      const counts = await mesh.linkCounts()
      const links = { min: Math.min(...counts), mean: r1(counts.reduce((a, b) => a + b, 0) / counts.length), max: Math.max(...counts) }
      // Two heartbeats for the probe topic's mesh to graft, then warm-up probes (not counted).
      await sleep(1000)
      await mesh.probe(3, o.probeEveryMs, o.probeBytes)
      let gossipEarly: SizeReport['gossipEarly']
      let settle: SettleReport | undefined
      if (o.settleMaxSeconds > 0) {
        // Gossip right after the last join, then again (the figure) once the join's tail has settled.
        const e = await mesh.probe(o.probes, o.probeEveryMs, o.probeBytes)
        gossipEarly = { delivery: dist(e.delivery), toAll: dist(e.toAll), delivered: e.delivered, expected: e.expected }
        log(`gossip right after the last join: p50 ${gossipEarly.delivery.p50} ms p99 ${gossipEarly.delivery.p99} ms, ${e.delivered}/${e.expected} delivered`)
        settle = await mesh.settle(o.settleMaxSeconds * 1000, log)
        log(`${settle.settled ? 'settled' : 'still settling'} after ${Math.round(settle.ms / 1000)} s`)
      }
      const trafficBefore = await mesh.traffic()
      const dialsBefore = await mesh.dialCounters()
      const idle = await measureCpu(() => profiled(process.env.ZS_SIM_IDLE_PROFILE, `n${size}`, () => sleep(o.idleSeconds * 1000), mesh))
      const trafficAfter = await mesh.traffic()
      const idleTraffic = diffTraffic(trafficBefore, trafficAfter, (size * idle.wallMs) / 1000)
      const idleAnnounced = announced(trafficBefore, trafficAfter, idle.wallMs)
      // Dials in a mesh that has linked: each costs both ends a handshake and an upgrade, and one refused (a full budget) buys nothing.
      const idleDials = diffTraffic(dialsBefore, await mesh.dialCounters(), (size * idle.wallMs) / 1000, (x) => Math.round(x * 1000) / 1000)
      log(`dials and refused links per peer-second over the idle window: ${JSON.stringify(Object.fromEntries(idleDials))}`)
      // Every counter that moved (ZS_SIM_IDLE_COUNTERS=/tmp/x writes /tmp/x-n<size>.json), where the log shows the busiest.
      if (process.env.ZS_SIM_IDLE_COUNTERS)
        await writeFile(`${process.env.ZS_SIM_IDLE_COUNTERS}-n${size}.json`, JSON.stringify(Object.fromEntries(idleTraffic), null, 1))
      log(
        `idle traffic per peer-second (the busiest counters): ${idleTraffic
          .slice(0, 16)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`
      )
      const probeLag = monitorEventLoopDelay({ resolution: 20 })
      probeLag.enable()
      await mesh.ask({ op: 'lag', reset: true })
      let g!: Awaited<ReturnType<SimMesh['probe']>>
      const probeTrafficBefore = await mesh.traffic()
      const probing = await measureCpu(async () => {
        await profiled(
          process.env.ZS_SIM_IDLE_PROFILE,
          `p${size}`,
          async () => {
            g = await mesh.probe(o.probes, o.probeEveryMs, o.probeBytes)
          },
          mesh
        )
      })
      probeLag.disable()
      const probeTrafficAfter = await mesh.traffic()
      const probeTraffic = diffTraffic(probeTrafficBefore, probeTrafficAfter, (size * probing.wallMs) / 1000)
      const mem = process.memoryUsage()
      // Every thread's heap: the worker threads' isolates are not in this one's.
      const heaps = (await mesh.ask<number>({ op: 'heap' })).reduce((a, b) => a + b, 0) + ((o.workers ?? 0) > 0 ? mem.heapUsed : 0)
      const perPeer = {
        idleCpuMsPerSecond: o.idleSeconds > 0 ? r1(((idle.cpuMs / idle.wallMs) * 1000) / size) : Number.NaN,
        probeCpuMsPerSecond: r1(((probing.cpuMs / probing.wallMs) * 1000) / size),
        probePresencePerSecond: counterIn(probeTraffic, PRESENCE_RECEIVED),
        probeRxBytesPerSecond: counterIn(probeTraffic, RX_BYTES),
        idlePresencePerSecond: counterIn(idleTraffic, PRESENCE_RECEIVED),
        announcedPerSecond: { idle: idleAnnounced.perSecond, probing: announced(probeTrafficBefore, probeTrafficAfter, probing.wallMs).perSecond },
        probeWallMs: Math.round(probing.wallMs),
        idleSeconds: o.idleSeconds,
        heapMB: r1(heaps / 1e6 / size),
        rssMB: r1(mem.rss / 1e6 / size),
        idleCounters: Object.fromEntries(idleTraffic.slice(0, 16)),
        idleDials: Object.fromEntries(idleDials)
      }
      log(
        `per peer: idle ${perPeer.idleCpuMsPerSecond} ms CPU/s, probing ${perPeer.probeCpuMsPerSecond} ms CPU/s (${perPeer.probeWallMs} ms of probes; presence copies received per second: ${perPeer.idlePresencePerSecond} idle, ${perPeer.probePresencePerSecond} while probing; the mesh announced ${perPeer.announcedPerSecond.idle} presences a second idle (asked: ${JSON.stringify(idleAnnounced.why)}), ${perPeer.announcedPerSecond.probing} while probing), heap ${perPeer.heapMB} MB, RSS ${perPeer.rssMB} MB`
      )
      // The peers' threads: the worst of them (the main thread's own is probeLag).
      const groupLag = await mesh.ask<{ p50: number; p99: number; max: number; gc: Record<string, { n: number; ms: number; max: number }> }>({ op: 'lag' })
      // Garbage collection in the peers' threads while probing: a long pause delays every message of its thread.
      log(
        `the peers' threads while probing: event loop ${JSON.stringify(groupLag.map(({ gc: _, ...lag }) => lag))}, GC ${JSON.stringify(groupLag.map((l) => l.gc))}`
      )
      log(`gossip p50 ${r1(quantile(g.delivery, 0.5))} ms p99 ${r1(quantile(g.delivery, 0.99))} ms, ${g.delivered}/${g.expected} delivered`)
      // The tail, and how much gossip was recovered through IHAVE/IWANT while probing (whole mesh, not per peer).
      const iwant = Object.fromEntries(
        diffTraffic(probeTrafficBefore, probeTrafficAfter, 1).filter(([k]) => /ihave_rcv_not_seen|iwant_promise_resolved_total|iwant_rcv_msgids_total/.test(k))
      )
      log(`the probes' tail: ${JSON.stringify(g.tail)}; IHAVE/IWANT while probing (whole mesh): ${JSON.stringify(iwant)}`)
      if (mesh.tabs != null)
        log(`to the tabs: p50 ${r1(quantile(g.tabs.delivery, 0.5))} ms p99 ${r1(quantile(g.tabs.delivery, 0.99))} ms, ${g.tabs.delivered}/${g.tabs.expected}`)

      const entry: SizeReport = {
        peers: size,
        donors: mesh.donors.size,
        growMs: Math.round(growMs),
        presenceConvergedMs: presenceConvergedMs == null ? null : Math.round(presenceConvergedMs),
        links,
        perPeer,
        gossip: { delivery: dist(g.delivery), toAll: dist(g.toAll), delivered: g.delivered, expected: g.expected },
        ...(gossipEarly != null ? { gossipEarly } : {}),
        ...(settle != null ? { settle } : {}),
        ...(mesh.tabs != null
          ? {
              tabs: {
                n: mesh.tabs.ids.length,
                delivery: dist(g.tabs.delivery),
                delivered: g.tabs.delivered,
                expected: g.tabs.expected,
                lackingPresence: (await mesh.tabs.lacking(mesh.ids())).length
              }
            }
          : {}),
        tasks: opts.quick === true ? noTasks() : await mesh.tasks(o.tasks, o.taskConcurrency, `n${size}`),
        link: { bytes: 0, chunks: 0, resent: 0 },
        cpu: { userMs: 0, systemMs: 0, wallMs: 0, cores: 0 },
        loopLag: worst([ms3(probeLag), ...groupLag.map(({ gc: _, ...lag }) => lag)]),
        gcDuringProbes: groupLag.map((l) => l.gc),
        loopLagAll: { p50: 0, p99: 0, max: 0 },
        held: false,
        goalMet: false,
        rssMB: 0
      }
      log(
        `tasks ${entry.tasks.succeeded}/${entry.tasks.submitted} ok, ${entry.tasks.onDonor} on donors, ${entry.tasks.runs} runs for ${entry.tasks.dispatched} offers (ran twice: ${entry.tasks.ranTwice}), p50 ${entry.tasks.latency.p50} ms`
      )

      // A newcomer: presence both ways, and the registry's agents.
      const ids = mesh.ids()
      const tn = performance.now()
      const newcomer =
        opts.quick === true
          ? undefined
          : await mesh.start1(false, false).catch((err: Error) => {
              log(`newcomer failed to start: ${err.message}`)
              return undefined
            })
      if (newcomer != null) {
        const agents = o.agents
        const ask = newcomer.group
        const both = async (): Promise<boolean> =>
          (await mesh.lacking(ids, [newcomer.id])).length === 0 && (await mesh.lacking([newcomer.id], ids)).length === 0
        const listed = async (): Promise<number> => (await ask.run({ op: 'registry', id: newcomer.id })) as number
        let presenceAt: number | undefined
        let registryAt: number | undefined
        await waitFor(
          async () => {
            if (presenceAt == null && (await both())) presenceAt = performance.now() - tn
            if (registryAt == null && (agents === 0 || (await listed()) >= agents)) registryAt = performance.now() - tn
            return presenceAt != null && registryAt != null
          },
          presenceWaitMs(size),
          'the newcomer',
          100
        ).catch((err: Error) => log(err.message))
        entry.newcomerPresenceMs = presenceAt == null ? undefined : Math.round(presenceAt)
        if (agents > 0) entry.registrySync = { agents: await listed(), ms: registryAt == null ? Number.NaN : Math.round(registryAt) }
        log(`newcomer: presence both ways ${entry.newcomerPresenceMs} ms, registry ${entry.registrySync?.agents} agents in ${entry.registrySync?.ms} ms`)
        newcomer.group.size--
        await ask.run({ op: 'remove', id: newcomer.id })
      }

      if (opts.quick !== true && o.churnPerMinute > 0 && o.churnSeconds > 0) entry.churn = await churn(mesh, o, log)

      const cpu = process.cpuUsage(cpu0)
      const wallMs = performance.now() - wall0
      entry.cpu = {
        userMs: Math.round(cpu.user / 1000),
        systemMs: Math.round(cpu.system / 1000),
        wallMs: Math.round(wallMs),
        cores: r1((cpu.user + cpu.system) / 1000 / wallMs)
      }
      lag.disable()
      entry.loopLagAll = worst([ms3(lag), ...(await mesh.ask<{ p50: number; p99: number; max: number }>({ op: 'lag' }))])
      const maxLag = opts.maxLagP99Ms ?? 1000
      // With --max-lag 0 the run never stops, but a size is still judged against the default 1 s.
      entry.held = entry.loopLag.p99 <= (maxLag > 0 ? maxLag : 1000)
      entry.goalMet =
        entry.held &&
        entry.gossip.delivered === entry.gossip.expected &&
        entry.gossip.delivery.p99 <= GOAL_GOSSIP_P99_MS &&
        entry.tasks.submitted > 0 &&
        entry.tasks.exactlyOnce
      const link1 = await mesh.linkTotals()
      entry.link = { bytes: link1.bytes - link0.bytes, chunks: link1.chunks - link0.chunks, resent: link1.resent - link0.resent }
      entry.rssMB = Math.round(process.memoryUsage().rss / 1e6)
      report.sizes.push(entry)
      await opts.onSize?.(report)
      log(`${size}: event loop p99 ${entry.loopLag.p99} ms during probes, ${entry.loopLagAll.p99} ms overall, ${entry.cpu.cores} cores busy, ${entry.rssMB} MB`)
      if (!entry.held && maxLag > 0) {
        const rest = opts.sizes.slice(opts.sizes.indexOf(size) + 1)
        log(`${size} peers did not hold (event loop p99 ${entry.loopLag.p99} ms during probes > ${maxLag} ms): not growing further`)
        if (rest.length > 0) {
          report.notReached = {
            sizes: rest,
            reason: `${size} peers did not hold: event-loop p99 ${entry.loopLag.p99} ms during the probes > --max-lag ${maxLag} ms`
          }
          await opts.onSize?.(report)
        }
        break
      }
    }
  } finally {
    await mesh.stop()
  }
  return report
}

/** Replace non-donors at `perMinute` for `seconds`, probing all the while. */
async function churn(mesh: SimMesh, o: Required<SimReport['options']>, log: (line: string) => void): Promise<NonNullable<SizeReport['churn']>> {
  const everyMs = 60_000 / o.churnPerMinute
  const endAt = performance.now() + o.churnSeconds * 1000
  const stable = new Set(mesh.peers)
  const ids = [...stable].map((p) => p.id)
  const presence: number[] = []
  /** Joiners not yet holding every presence, with when they started. */
  const pending = new Map<string, number>()
  let joined = 0
  let left = 0
  const leavers: string[] = []
  let churning = true
  // Until each joiner holds the presence of every peer up throughout the churn (30 s at most).
  const watch = (async () => {
    while (churning || pending.size > 0) {
      await sleep(200)
      if (pending.size === 0) continue
      const up = ids.filter((id) => mesh.peers.some((q) => q.id === id))
      const lacking = new Set(await mesh.lacking(up, [...pending.keys()]))
      const now = performance.now()
      for (const [id, at] of pending) {
        if (!lacking.has(id)) presence.push(now - at)
        if (!lacking.has(id) || now - at > 30_000) pending.delete(id)
      }
    }
  })()
  const loop = (async () => {
    while (performance.now() < endAt) {
      const candidates = mesh.peers.filter((p) => !mesh.donors.has(p))
      const victim = candidates[Math.floor(Math.random() * candidates.length)]
      if (victim != null) {
        stable.delete(victim)
        pending.delete(victim.id)
        await mesh.remove(victim)
        leavers.push(victim.id)
        left++
      }
      const at = performance.now()
      const p = await mesh.add(false)
      joined++
      pending.set(p.id, at)
      await sleep(everyMs)
    }
  })()
  const probes = Math.max(1, Math.floor((o.churnSeconds * 1000) / Math.max(o.probeEveryMs, 250)))
  const g = await mesh.probe(probes, Math.max(o.probeEveryMs, 250), o.probeBytes, () => mesh.peers.filter((p) => stable.has(p)))
  await loop
  const ended = performance.now()
  // The leavers in the books of the peers up throughout: how many right away, and how long until none.
  const holders = (): string[] => mesh.peers.filter((p) => stable.has(p)).map((p) => p.id)
  const held = async (): Promise<number> => (await mesh.ask<number>({ op: 'holding', ids: leavers, only: holders() })).reduce((a, b) => a + b, 0)
  const heldAtEnd = await held()
  let heldAfter = heldAtEnd
  const forgottenMs = await waitFor(
    async () => {
      heldAfter = await held()
      return heldAfter === 0
    },
    30_000,
    'the leavers forgotten',
    250
  )
    .then(() => performance.now() - ended)
    .catch(() => null)
  churning = false
  await watch
  const pairs = holders().length * leavers.length
  log(
    `churn: ${left} left, ${joined} joined (${presence.length} held every presence); gossip to stable peers p99 ${r1(quantile(g.delivery, 0.99))} ms, ${g.delivered}/${g.expected}; leavers still held ${heldAtEnd}/${pairs} as it ended, ${forgottenMs == null ? `${heldAfter} after 30 s` : `none after ${r1(forgottenMs)} ms`}`
  )
  return {
    perMinute: o.churnPerMinute,
    seconds: o.churnSeconds,
    left,
    joined,
    delivery: dist(g.delivery),
    delivered: g.delivered,
    expected: g.expected,
    joinerPresence: dist(presence),
    leavers: { held: heldAtEnd, pairs, forgottenMs: forgottenMs == null ? null : r1(forgottenMs), heldAfter }
  }
}
