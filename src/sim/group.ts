/**
 * A group of simulated peers in one thread, driven by plain commands: the simulator's main
 * thread runs one group itself or spreads peers over worker threads (worker.ts), each
 * running a group, and asks every group the same questions (who holds every presence,
 * which probes arrived when, what tasks the donors ran). Answers are plain data.
 */
import { createHash } from 'node:crypto'
import { PerformanceObserver, constants as perf, monitorEventLoopDelay } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'
import { threadId } from 'node:worker_threads'
import type { TaskResult } from '../lib/index.ts'
import { Transport, connectionTransport } from '../lib/mesh/index.ts'
import { LINK_COUNTERS, linkStats } from './link.ts'
import { startProfile } from './profiler.ts'
import { verifyCacheStats } from './verify-cache.ts'
import { type SimPeer, type SimPeerInit, knowsPresenceOf, sendProbe, simNow, startSimPeer } from './mesh.ts'

/** What one task came to, as its submitter saw it. */
export interface TaskOutcome {
  taskId: string
  ok: boolean
  error?: string
  ms: number
  /** The peers its steps ran on. */
  stepPeers: string[]
  /** Offers sent (the dispatcher's 'dispatched' step events). */
  offers: number
  /** Why an offer was followed by another: the errors of its 'failed' step events. */
  reoffered: string[]
  /**
   * When its step first reached each point, in ms from submit: offered (the 'dispatched'
   * event: planning and routing done), accepted by a donor, and succeeded (the result back).
   */
  phases: { dispatched?: number; accepted?: number; succeeded?: number }
}

/** The commands of a group; each resolves to the data named in its comment. */
export type GroupCommand =
  /** → the new peer's id. */
  | { op: 'add'; init: SimPeerInit }
  | { op: 'remove'; id: string }
  /** → the send time (simNow()). */
  | { op: 'probe'; id: string; seq: number; bytes: number }
  /** → [peer id, seq, arrival time] for every local peer that holds one of `seqs`. */
  | { op: 'arrivals'; seqs: number[] }
  /** → the local peers (of `only`, else all) that do not hold the presence of every id of `ids`. */
  | { op: 'presence'; ids: string[]; only?: string[] }
  /** → how many (local peer of `only`, id of `ids`) pairs there are where the peer holds that id's presence. */
  | { op: 'holding'; ids: string[]; only: string[] }
  /** → [peer id, direct links] per local peer. */
  | { op: 'links' }
  /**
   * → per local peer (of `only`) lacking a presence of `ids`: why, as far as it can tell: the
   * ids it lacks, how many of them it is linked to now, its gossipsub mesh peers on the presence
   * topic, the peers gossipsub knows against those connected, and its gossip read errors.
   */
  | { op: 'lackingWhy'; ids: string[]; only: string[] }
  /** → the local peers' mesh counters whose name contains `part`, summed by name. */
  | { op: 'counters'; part: string }
  /** → why peer `id` (if local) is linked as it is: its relay status, presences held, and the dialer's last failures; null elsewhere. */
  | { op: 'diag'; id: string }
  /** → local peers that see no donating peer. */
  | { op: 'noDonor' }
  /** → for each local peer of `ids` without a linked donor: its links, those others opened, donors it knows, and its dial and refusal counters. */
  | { op: 'noDonorWhy'; ids: string[] }
  /** → the bundled hash agent's id, as a local peer lists it. */
  | { op: 'hashAgent' }
  /** → the local donors that do not list `agent` (it is not bundled there, nor in their registry): they cannot run it. */
  | { op: 'lacking'; agent: string }
  /** → agents the peer's registry lists. */
  | { op: 'registry'; id: string }
  /** → a TaskOutcome: `input` hashed by `agent`, submitted by peer `id`. */
  | { op: 'submit'; id: string; agent: string; input: string }
  /** → [task id, runs] of `taskIds` in the local peers' audit logs ('task.served'). */
  | { op: 'served'; taskIds: string[] }
  /** → this thread's mesh counters summed over its peers, and its verification cache's checks and reuses. */
  | { op: 'stats' }
  /** → this thread's V8 heap in use (bytes): every isolate has its own. */
  | { op: 'heap' }
  /** → this thread's event-loop delay since the last `lag` with `reset` (p50/p99/max ms), then resets if asked. */
  | { op: 'lag'; reset?: boolean }
  /** → every counter of the local peers' metrics registries (libp2p's bytes per protocol, gossipsub's RPCs…), summed by series. */
  | { op: 'traffic' }
  /** Starts this thread's V8 CPU profiler, or stops it and writes the profile to `<path>-<thread>.cpuprofile` (ZS_SIM_IDLE_PROFILE). */
  | { op: 'profile'; path?: string }
  | { op: 'stop' }

const GC_KINDS: Record<number, string> = {
  [perf.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perf.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perf.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb'
}

export class PeerGroup {
  readonly peers = new Map<string, SimPeer>()
  readonly #lag = monitorEventLoopDelay({ resolution: 20 })

  /** This thread's garbage collections since the last `lag` reset, by kind: count, total and longest pause (ms). */
  #gc: Record<string, { n: number; ms: number; max: number }> = {}
  readonly #gcObserver = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = GC_KINDS[(e as { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other'
      const g = this.#gc[kind] ?? { n: 0, ms: 0, max: 0 }
      this.#gc[kind] = g
      g.n++
      g.ms = Math.round((g.ms + e.duration) * 10) / 10
      g.max = Math.max(g.max, Math.round(e.duration * 10) / 10)
    }
  })

  constructor() {
    this.#lag.enable()
    this.#gcObserver.observe({ entryTypes: ['gc'] })
  }

  #peer(id: string): SimPeer {
    const p = this.peers.get(id)
    if (p == null) throw new Error(`no simulated peer ${id} in this group`)
    return p
  }

  async run(cmd: GroupCommand): Promise<unknown> {
    switch (cmd.op) {
      case 'add': {
        const p = await startSimPeer(cmd.init)
        this.peers.set(p.id, p)
        return p.id
      }
      case 'remove': {
        const p = this.peers.get(cmd.id)
        this.peers.delete(cmd.id)
        await p?.stop()
        return null
      }
      case 'probe':
        return await sendProbe(this.#peer(cmd.id), cmd.seq, cmd.bytes)
      case 'arrivals': {
        const out: Array<[string, number, number]> = []
        for (const p of this.peers.values())
          for (const seq of cmd.seqs) {
            const at = p.probes.get(seq)
            if (at != null) out.push([p.id, seq, at])
          }
        return out
      }
      case 'presence': {
        const of = cmd.only == null ? [...this.peers.values()] : cmd.only.map((id) => this.peers.get(id)).filter((p) => p != null)
        return of.filter((p) => !knowsPresenceOf(p, cmd.ids)).map((p) => p.id)
      }
      case 'holding': {
        let n = 0
        for (const id of cmd.only) {
          const p = this.peers.get(id)
          if (p == null) continue
          const known = new Set(p.zs.mesh.diagnostics().presence.map((x) => x.peerId))
          for (const x of cmd.ids) if (known.has(x)) n++
        }
        return n
      }
      case 'lackingWhy': {
        const out = []
        for (const id of cmd.only) {
          const p = this.peers.get(id)
          if (p == null) continue
          const d = p.zs.mesh.diagnostics()
          const known = new Set(d.presence.map((x) => x.peerId))
          const lacks = cmd.ids.filter((x) => x !== id && !known.has(x))
          if (lacks.length === 0) continue
          const linked = new Set(p.zs.peers().map((x) => x.id))
          out.push({
            peer: id.slice(-8),
            lacks: lacks.map((x) => x.slice(-8)),
            linkedNow: lacks.filter((x) => linked.has(x)).length,
            presenceMesh: d.presenceMesh,
            received: p.zs.mesh.counters.toRecord()['mesh.presence.received'] ?? 0,
            readStreamErrors: Object.fromEntries(Object.entries(p.zs.mesh.counters.toRecord()).filter(([k]) => k.includes('readStreamErrors'))),
            gossipPeers: p.zs.mesh.libp2p.services.pubsub.getPeers().length,
            connectedPeers: p.zs.mesh.libp2p.getPeers().length
          })
        }
        return out
      }
      case 'counters': {
        const sum: Record<string, number> = {}
        for (const p of this.peers.values()) {
          for (const [k, v] of Object.entries(p.zs.mesh.counters.toRecord())) if (k.includes(cmd.part)) sum[k] = (sum[k] ?? 0) + v
        }
        return sum
      }
      case 'links':
        return [...this.peers.values()].map((p) => [p.id, p.zs.peers().filter((x) => !x.relay && x.transport === 'webrtc').length])
      case 'diag': {
        const p = this.peers.get(cmd.id)
        if (p == null) return null
        const d = p.zs.mesh.diagnostics()
        const failing = d.dialer.filter((x) => x.failures > 0 && !x.direct)
        return {
          relay: d.status.state,
          relayError: d.status.error?.replace(/12D3\w+/g, '<peer>'),
          relays: d.status.connected.length,
          relayGossip: d.relayGossip,
          presenceMesh: d.presenceMesh,
          presences: d.presence.length,
          heardOf: d.dialer.length,
          pending: d.dialer.filter((x) => x.pending != null).length,
          failing: failing.length,
          lastErrors: [...new Set(failing.map((x) => x.lastError?.replace(/12D3\w+/g, '<peer>') ?? ''))].slice(0, 3),
          counters: Object.fromEntries(Object.entries(p.zs.mesh.counters.toRecord()).filter(([k]) => /^mesh\.(dial|relay|roster|presence|gossip)\./.test(k)))
        }
      }
      case 'noDonor':
        return [...this.peers.values()].filter((p) => !p.zs.peers().some((x) => x.donating)).map((p) => p.id)
      case 'noDonorWhy': {
        const wanted = new Set(cmd.ids)
        return [...this.peers.values()]
          .filter((p) => wanted.has(p.id) && !p.zs.peers().some((x) => x.donating))
          .map((p) => {
            const direct = p.zs.mesh.libp2p.getConnections().filter((c) => c.status === 'open' && connectionTransport(c) === Transport.webrtc)
            const counters = p.zs.mesh.counters.toRecord()
            return {
              id: p.id.slice(-8),
              links: new Set(direct.map((c) => c.remotePeer.toString())).size,
              inbound: new Set(direct.filter((c) => c.direction === 'inbound').map((c) => c.remotePeer.toString())).size,
              donorsKnown: p.zs.mesh.diagnostics().presence.filter((x) => x.donating).length,
              counters: Object.fromEntries(Object.entries(counters).filter(([k]) => /^mesh\.(dial\.skipped|links\.refused|dial\.failed)/.test(k)))
            }
          })
      }
      case 'lacking':
        return [...this.peers.values()].filter((p) => p.zs.donation().enabled && !p.zs.agents.list().some((a) => a.id === cmd.agent)).map((p) => p.id)
      case 'hashAgent':
        return [...this.peers.values()][0]?.zs.agents.list().find((a) => a.manifest.name === 'hash')?.id ?? null
      case 'registry':
        return this.#peer(cmd.id).zs.registry.list().length
      case 'submit':
        return await this.#submit(this.#peer(cmd.id), cmd.agent, cmd.input)
      case 'served': {
        const wanted = new Set(cmd.taskIds)
        const runs = new Map<string, number>()
        for (const p of this.peers.values())
          for (const e of p.zs.audit.list({ kind: 'task.served' })) {
            // A donor that could not get the agent (or its module) refused the step: it ran nothing (the dispatcher offers it elsewhere).
            if (e.why?.endsWith(': NoAgentError') === true || e.why?.endsWith(': AgentUnavailableError') === true) continue
            const taskId = e.subject?.split('/')[0]
            if (taskId != null && wanted.has(taskId)) runs.set(taskId, (runs.get(taskId) ?? 0) + 1)
          }
        return [...runs]
      }
      case 'stats': {
        const mesh: Record<string, number> = {}
        for (const p of this.peers.values()) for (const [k, n] of Object.entries(p.zs.mesh.counters.toRecord())) mesh[k] = (mesh[k] ?? 0) + n
        return { mesh, verify: { ...verifyCacheStats } }
      }
      case 'traffic': {
        const sum: Record<string, number> = {}
        for (const p of this.peers.values()) {
          const snap = p.zs.metricsSnapshot()
          for (const [k, n] of [...Object.entries(snap.counters), ...Object.entries(snap.gauges)]) sum[k] = (sum[k] ?? 0) + n
          // The mesh's presence counters (announcements by why, published), which the app's metrics do not carry.
          for (const [k, n] of Object.entries(p.zs.mesh.counters.toRecord())) if (k.startsWith('mesh.presence.')) sum[k] = (sum[k] ?? 0) + n
        }
        // What this thread's link ends received (direct links' channels bypass libp2p's per-connection byte counter, as WebRTC's do).
        for (const k of ['bytes', 'chunks', 'resent'] as const) sum[LINK_COUNTERS[k]] = linkStats[k]
        return sum
      }
      case 'heap':
        return getHeapStatistics().used_heap_size
      case 'profile':
        return await this.#profile(cmd.path)
      case 'lag': {
        const h = this.#lag
        const out = { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, gc: this.#gc }
        if (cmd.reset === true) {
          h.reset()
          this.#gc = {}
        }
        return out
      }
      case 'stop':
        this.#lag.disable()
        this.#gcObserver.disconnect()
        for (const p of [...this.peers.values()]) await p.stop().catch(() => {})
        this.peers.clear()
        return null
    }
  }

  #stopProfile: ((file: string) => Promise<void>) | undefined

  async #profile(path: string | undefined): Promise<string | null> {
    if (path == null) {
      this.#stopProfile ??= await startProfile()
      return null
    }
    const stop = this.#stopProfile
    this.#stopProfile = undefined
    if (stop == null) return null
    const file = `${path}-${threadId}.cpuprofile`
    await stop(file)
    return file
  }

  async #submit(from: SimPeer, agent: string, input: string): Promise<TaskOutcome> {
    const t = simNow()
    const handle = from.zs.submit({ description: 'hash it', agent, input, preferences: { verification: 'none' } })
    let offers = 0
    const reoffered: string[] = []
    const phases: TaskOutcome['phases'] = {}
    handle.on('step', (e) => {
      if (e.status === 'dispatched' || e.status === 'accepted' || e.status === 'succeeded') phases[e.status] ??= simNow() - t
      if (e.status === 'dispatched') offers++
      else if (e.status === 'failed' && e.error != null) reoffered.push(`${e.peer?.slice(-8) ?? '?'}: ${e.error.slice(0, 160)}`)
    })
    try {
      const result: TaskResult = await handle.done
      const out = result.output as { sha256?: string } | undefined
      if (out?.sha256 !== createHash('sha256').update(input).digest('hex')) throw new Error(`wrong output ${JSON.stringify(out)}`)
      return { taskId: handle.id, ok: true, ms: simNow() - t, stepPeers: result.steps.map((s) => s.peer ?? ''), offers, reoffered, phases }
    } catch (err) {
      return { taskId: handle.id, ok: false, error: (err as Error).message, ms: simNow() - t, stepPeers: [], offers, reoffered, phases }
    }
  }
}
