/**
 * The simulator's measurements (`npm run sim`): one mesh grown through the sizes asked
 * for, and at each size gossip delivery, presence convergence, registry sync to a
 * newcomer, task routing with a share of donors (every task counted), and churn.
 */
import { createHash } from 'node:crypto'
import type { Server } from 'node:http'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { TaskResult } from '../lib/index.ts'
import type { LinkShape } from './link.ts'
import { linkStats } from './link.ts'
import { type SimPeer, type SimRelay, knowsPresenceOf, quantile, sendProbe, serveAgents, startSimPeer, startSimRelay, waitFor } from './mesh.ts'
import { type Seeder, seedRecords, startSeeder } from './registry-seed.ts'

/** Options of a simulation run. */
export interface SimOptions {
  /** Mesh sizes, grown in one mesh in this order (peers, the seeder not counted). */
  sizes: number[]
  /** Share of peers donating compute. Default 0.2. */
  donorShare?: number
  /** Direct connection budget per peer (the mesh's maxPeers). Default the mesh's (48). */
  maxPeers?: number
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
  /** Project root (for the built agents). Default cwd. */
  root?: string
  /**
   * Stop growing once a size did not hold: this process's event loop lagged more than
   * this p99 (ms), i.e. the figures measure the simulator's CPU rather than the mesh. Default 1000; 0 never stops.
   */
  maxLagP99Ms?: number
  log?: (line: string) => void
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
    /** Tasks no donor ran. */
    notRun: number
    /** Tasks that ran more often than they were offered (a bug if ever > 0). */
    unexplained: number
    /** Every task completed once with the right output, and ran on a donor no more often than it was offered. */
    exactlyOnce: boolean
    latency: Dist
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
  }
  /** Bytes over simulated links during this size, and chunks resent (loss). */
  link: { bytes: number; chunks: number; resent: number }
  /** CPU of this process (all peers) and its share of one core over the size's wall time. */
  cpu: { userMs: number; systemMs: number; wallMs: number; cores: number }
  /** This process's event-loop delay (ms) while the gossip probes ran (steady state): when high, the figures carry it. */
  loopLag: { p50: number; p99: number; max: number }
  /** The same over the whole size, growth, registry syncs and churn included. */
  loopLagAll: { p50: number; p99: number; max: number }
  /** Whether the gossip figures are the mesh's: the event loop's p99 lag during the probes stayed under maxLagP99Ms. */
  held: boolean
  rssMB: number
}

/** The whole run. */
export interface SimReport {
  options: Omit<SimOptions, 'log' | 'root' | 'cacheFile'>
  sizes: SizeReport[]
}

/** p50/p99/max of an event-loop delay histogram, in ms. */
const ms3 = (h: { percentile(p: number): number; max: number }): { p50: number; p99: number; max: number } => ({
  p50: r1(h.percentile(50) / 1e6),
  p99: r1(h.percentile(99) / 1e6),
  max: r1(h.max / 1e6)
})

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A running simulated mesh: relay, agent server, seeder, peers. */
export class SimMesh {
  readonly peers: SimPeer[] = []
  readonly donors = new Set<SimPeer>()
  relay: SimRelay | undefined
  seeder: Seeder | undefined
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
    this.relay = await startSimRelay(this.opts.link)
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
  }

  /** Start one peer. */
  async add(donate: boolean): Promise<SimPeer> {
    if (this.relay == null) throw new Error('start() first')
    const p = await startSimPeer({ relay: this.relay.addr, agentsBaseUrl: this.agentsBaseUrl, donate, maxPeers: this.opts.maxPeers, link: this.opts.link })
    this.peers.push(p)
    if (donate) this.donors.add(p)
    return p
  }

  /** Stop one peer and forget it. */
  async remove(p: SimPeer): Promise<void> {
    const i = this.peers.indexOf(p)
    if (i >= 0) this.peers.splice(i, 1)
    this.donors.delete(p)
    await p.stop()
  }

  /** Grow to `size` peers, `donorShare` of them donating (donors start a few at a time: their agents load). */
  async grow(size: number): Promise<void> {
    const share = this.opts.donorShare ?? 0.2
    const wantDonors = Math.round(size * share)
    const newDonors = Math.max(0, wantDonors - this.donors.size)
    const newOthers = Math.max(0, size - this.peers.length - newDonors)
    for (let i = 0; i < newOthers; i++) await this.add(false)
    for (let i = 0; i < newDonors; i += 4) await Promise.all(Array.from({ length: Math.min(4, newDonors - i) }, () => this.add(true)))
  }

  ids(): string[] {
    return [...this.peers.map((p) => p.id), ...(this.seeder != null ? [this.seeder.id] : [])]
  }

  /** Wait until every peer holds every other's presence. */
  async presenceConverged(ms: number): Promise<number> {
    const ids = this.ids()
    return await waitFor(() => this.peers.every((p) => knowsPresenceOf(p, ids)), ms, 'presence convergence', 100)
  }

  directLinks(p: SimPeer): number {
    return p.zs.peers().filter((x) => !x.relay && x.transport === 'webrtc').length
  }

  /** Wait until every peer has at least `min` direct links. */
  async linked(min: number, ms: number): Promise<number> {
    return await waitFor(() => this.peers.every((p) => this.directLinks(p) >= min), ms, `every peer with ${min} direct links`, 100)
  }

  /** Send `count` probes from random peers; deliveries to the peers in `audience` (default all, at send time). */
  async probe(
    count: number,
    everyMs: number,
    bytes: number,
    audience?: () => SimPeer[],
    settleMs = 5000
  ): Promise<{ delivery: number[]; toAll: number[]; delivered: number; expected: number }> {
    const sent: Array<{ seq: number; at: number; from: SimPeer; to: SimPeer[] }> = []
    for (let i = 0; i < count; i++) {
      const from = this.peers[Math.floor(Math.random() * this.peers.length)] as SimPeer
      const seq = this.#probeSeq++
      const to = (audience?.() ?? this.peers).filter((p) => p !== from)
      const at = await sendProbe(from, seq, bytes)
      sent.push({ seq, at, from, to })
      await sleep(everyMs)
    }
    const all = (): boolean => sent.every((s) => s.to.every((p) => p.probes.has(s.seq)))
    await waitFor(all, settleMs, 'every probe delivered').catch(() => {})
    const delivery: number[] = []
    const toAll: number[] = []
    let delivered = 0
    let expected = 0
    for (const s of sent) {
      let last = 0
      let complete = true
      for (const p of s.to) {
        expected++
        const got = p.probes.get(s.seq)
        if (got == null) {
          complete = false
          continue
        }
        delivered++
        delivery.push(got - s.at)
        last = Math.max(last, got - s.at)
      }
      if (complete) toAll.push(last)
    }
    return { delivery, toAll, delivered, expected }
  }

  /** Tasks from random non-donors onto the hash agent, `concurrency` in flight; each checked and counted on the donors. */
  async tasks(count: number, concurrency: number, tag: string, budgetMs = 90_000): Promise<SizeReport['tasks']> {
    const submitters = this.peers.filter((p) => !this.donors.has(p))
    const hash = submitters[0]?.zs.agents.list().find((a) => a.manifest.name === 'hash')
    if (hash == null) throw new Error('the bundled hash agent is not listed')
    await waitFor(() => submitters.every((s) => s.zs.peers().some((x) => x.donating)), 30_000, 'every submitter sees a donor').catch((err: Error) =>
      this.log(err.message)
    )
    const latency: number[] = []
    const ids: string[] = []
    const offers = new Map<string, number>()
    let succeeded = 0
    let failed = 0
    let onDonor = 0
    let next = 0
    const t0 = performance.now()
    const worker = async (): Promise<void> => {
      // No new task after budgetMs: a saturated process would take minutes for the rest.
      while (next < count && performance.now() - t0 < budgetMs) {
        const i = next++
        const from = submitters[i % submitters.length] as SimPeer
        const input = `sim ${tag} task ${i}`
        const t = performance.now()
        const handle = from.zs.submit({ description: 'hash it', agent: hash.id, input, preferences: { verification: 'none' } })
        ids.push(handle.id)
        handle.on('step', (e) => {
          if (e.status === 'dispatched') offers.set(handle.id, (offers.get(handle.id) ?? 0) + 1)
        })
        try {
          const result: TaskResult = await handle.done
          const out = result.output as { sha256?: string } | undefined
          if (out?.sha256 !== createHash('sha256').update(input).digest('hex')) throw new Error(`task ${handle.id}: wrong output ${JSON.stringify(out)}`)
          succeeded++
          latency.push(performance.now() - t)
          if (result.steps.every((s) => s.peer !== from.id && this.donors.has(this.peers.find((p) => p.id === s.peer) as SimPeer))) onDonor++
        } catch (err) {
          failed++
          this.log(`task ${i} failed: ${(err as Error).message}`)
        }
      }
    }
    await Promise.all(Array.from({ length: concurrency }, () => worker()))
    const elapsed = performance.now() - t0
    // Count each task's runs where they happened: the donors' audit logs.
    const wanted = new Set(ids)
    const runs = new Map<string, number>()
    for (const d of this.donors) {
      for (const e of d.zs.audit.list({ kind: 'task.served' })) {
        const taskId = e.subject?.split('/')[0]
        if (taskId != null && wanted.has(taskId)) runs.set(taskId, (runs.get(taskId) ?? 0) + 1)
      }
    }
    const total = [...runs.values()].reduce((a, b) => a + b, 0)
    const ranTwice = [...runs.values()].filter((n) => n > 1).length
    const notRun = ids.filter((id) => !runs.has(id)).length
    const unexplained = ids.filter((id) => (runs.get(id) ?? 0) > (offers.get(id) ?? 0)).length
    if (ranTwice > 0) this.log(`${ranTwice} task(s) ran on two donors (offers: ${ids.map((id) => offers.get(id) ?? 0).join(',')})`)
    const submitted = ids.length
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
      exactlyOnce: submitted === count && succeeded === count && failed === 0 && notRun === 0 && unexplained === 0,
      latency: dist(latency),
      perSecond: r1((succeeded / elapsed) * 1000)
    }
  }

  async stop(): Promise<void> {
    for (const p of [...this.peers]) await p.stop().catch(() => {})
    this.peers.length = 0
    await this.seeder?.stop().catch(() => {})
    await this.relay?.stop().catch(() => {})
    this.#server?.close()
  }
}

/** Run the simulation through `opts.sizes`; one SizeReport per size. */
export async function runSim(opts: SimOptions): Promise<SimReport> {
  const log = opts.log ?? (() => {})
  const mesh = new SimMesh(opts)
  const report: SimReport = {
    options: {
      sizes: opts.sizes,
      donorShare: opts.donorShare ?? 0.2,
      maxPeers: opts.maxPeers,
      link: { latencyMs: 20, jitterMs: 10, loss: 0.01, retransmitMs: 200, ...opts.link },
      probes: opts.probes ?? 40,
      probeEveryMs: opts.probeEveryMs ?? 100,
      probeBytes: opts.probeBytes ?? 512,
      tasks: opts.tasks ?? 100,
      taskConcurrency: opts.taskConcurrency ?? 10,
      agents: opts.agents ?? 1000,
      churnPerMinute: opts.churnPerMinute ?? 60,
      churnSeconds: opts.churnSeconds ?? 15,
      maxLagP99Ms: opts.maxLagP99Ms ?? 1000
    },
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
      const link0 = { ...linkStats }
      const t = performance.now()
      await mesh.grow(size)
      const growMs = performance.now() - t
      log(`${size} peers started in ${Math.round(growMs)} ms`)
      // Not converged in time is a figure too (null), not the end of the run.
      const presenceConvergedMs = await mesh.presenceConverged(60_000).catch((err: Error) => {
        log(err.message)
        return null
      })
      log(`presence converged ${presenceConvergedMs == null ? 'not within 60 s' : `${Math.round(presenceConvergedMs)} ms`} after the last start`)
      // The gossip mesh needs links: gossipsub's D is 6, so each peer wants 6 (or all of a smaller mesh).
      await mesh.linked(Math.min(6, size - 1), 30_000).catch((err: Error) => log(err.message))
      const counts = mesh.peers.map((p) => mesh.directLinks(p))
      const links = { min: Math.min(...counts), mean: r1(counts.reduce((a, b) => a + b, 0) / counts.length), max: Math.max(...counts) }
      // Two heartbeats for the probe topic's mesh to graft, then warm-up probes (not counted).
      await sleep(1000)
      await mesh.probe(3, o.probeEveryMs, o.probeBytes)
      const probeLag = monitorEventLoopDelay({ resolution: 20 })
      probeLag.enable()
      const g = await mesh.probe(o.probes, o.probeEveryMs, o.probeBytes)
      probeLag.disable()
      log(`gossip p50 ${r1(quantile(g.delivery, 0.5))} ms p99 ${r1(quantile(g.delivery, 0.99))} ms, ${g.delivered}/${g.expected} delivered`)

      const entry: SizeReport = {
        peers: size,
        donors: mesh.donors.size,
        growMs: Math.round(growMs),
        presenceConvergedMs: presenceConvergedMs == null ? null : Math.round(presenceConvergedMs),
        links,
        gossip: { delivery: dist(g.delivery), toAll: dist(g.toAll), delivered: g.delivered, expected: g.expected },
        tasks: await mesh.tasks(o.tasks, o.taskConcurrency, `n${size}`),
        link: { bytes: 0, chunks: 0, resent: 0 },
        cpu: { userMs: 0, systemMs: 0, wallMs: 0, cores: 0 },
        loopLag: ms3(probeLag),
        loopLagAll: { p50: 0, p99: 0, max: 0 },
        held: false,
        rssMB: 0
      }
      log(
        `tasks ${entry.tasks.succeeded}/${entry.tasks.submitted} ok, ${entry.tasks.onDonor} on donors, ${entry.tasks.runs} runs for ${entry.tasks.dispatched} offers (ran twice: ${entry.tasks.ranTwice}), p50 ${entry.tasks.latency.p50} ms`
      )

      // A newcomer: presence both ways, and the registry's agents.
      const ids = mesh.ids()
      const tn = performance.now()
      const newcomer = await startSimPeer({
        relay: mesh.relay?.addr as string,
        agentsBaseUrl: mesh.agentsBaseUrl,
        maxPeers: opts.maxPeers,
        link: opts.link
      }).catch((err: Error) => {
        log(`newcomer failed to start: ${err.message}`)
        return undefined
      })
      if (newcomer != null) {
        const agents = o.agents
        const both = (): boolean => knowsPresenceOf(newcomer, ids) && mesh.peers.every((p) => knowsPresenceOf(p, [newcomer.id]))
        const synced = (): boolean => newcomer.zs.registry.list().length >= agents
        let presenceAt: number | undefined
        let registryAt: number | undefined
        await waitFor(
          () => {
            if (presenceAt == null && both()) presenceAt = performance.now() - tn
            if (registryAt == null && (agents === 0 || synced())) registryAt = performance.now() - tn
            return presenceAt != null && registryAt != null
          },
          60_000,
          'the newcomer'
        ).catch((err: Error) => log(err.message))
        entry.newcomerPresenceMs = presenceAt == null ? undefined : Math.round(presenceAt)
        if (agents > 0) entry.registrySync = { agents: newcomer.zs.registry.list().length, ms: registryAt == null ? Number.NaN : Math.round(registryAt) }
        log(`newcomer: presence both ways ${entry.newcomerPresenceMs} ms, registry ${entry.registrySync?.agents} agents in ${entry.registrySync?.ms} ms`)
        await newcomer.stop()
      }

      if (o.churnPerMinute > 0 && o.churnSeconds > 0) entry.churn = await churn(mesh, o, log)

      const cpu = process.cpuUsage(cpu0)
      const wallMs = performance.now() - wall0
      entry.cpu = {
        userMs: Math.round(cpu.user / 1000),
        systemMs: Math.round(cpu.system / 1000),
        wallMs: Math.round(wallMs),
        cores: r1((cpu.user + cpu.system) / 1000 / wallMs)
      }
      lag.disable()
      entry.loopLagAll = ms3(lag)
      const maxLag = opts.maxLagP99Ms ?? 1000
      entry.held = maxLag <= 0 || entry.loopLag.p99 <= maxLag
      entry.link = { bytes: linkStats.bytes - link0.bytes, chunks: linkStats.chunks - link0.chunks, resent: linkStats.resent - link0.resent }
      entry.rssMB = Math.round(process.memoryUsage().rss / 1e6)
      report.sizes.push(entry)
      log(`${size}: event loop p99 ${entry.loopLag.p99} ms during probes, ${entry.loopLagAll.p99} ms overall, ${entry.cpu.cores} cores busy, ${entry.rssMB} MB`)
      if (!entry.held) {
        log(`${size} peers did not hold (event loop p99 ${entry.loopLag.p99} ms during probes > ${maxLag} ms): not growing further`)
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
  const watches: Array<Promise<void>> = []
  let joined = 0
  let left = 0
  const loop = (async () => {
    while (performance.now() < endAt) {
      const candidates = mesh.peers.filter((p) => !mesh.donors.has(p))
      const victim = candidates[Math.floor(Math.random() * candidates.length)]
      if (victim != null) {
        stable.delete(victim)
        await mesh.remove(victim)
        left++
      }
      const at = performance.now()
      const p = await mesh.add(false)
      joined++
      // Until the joiner holds the presence of every peer up throughout the churn.
      watches.push(
        waitFor(
          () =>
            knowsPresenceOf(
              p,
              ids.filter((id) => mesh.peers.some((q) => q.id === id))
            ),
          30_000,
          'a joiner holds every presence',
          50
        ).then(
          () => {
            presence.push(performance.now() - at)
          },
          () => {}
        )
      )
      await sleep(everyMs)
    }
  })()
  const probes = Math.max(1, Math.floor((o.churnSeconds * 1000) / Math.max(o.probeEveryMs, 250)))
  const g = await mesh.probe(probes, Math.max(o.probeEveryMs, 250), o.probeBytes, () => mesh.peers.filter((p) => stable.has(p)))
  await loop
  await Promise.all(watches)
  log(
    `churn: ${left} left, ${joined} joined (${presence.length} held every presence); gossip to stable peers p99 ${r1(quantile(g.delivery, 0.99))} ms, ${g.delivered}/${g.expected}`
  )
  return {
    perMinute: o.churnPerMinute,
    seconds: o.churnSeconds,
    left,
    joined,
    delivery: dist(g.delivery),
    delivered: g.delivered,
    expected: g.expected,
    joinerPresence: dist(presence)
  }
}
