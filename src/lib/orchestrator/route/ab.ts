/**
 * A/B trials of new agent versions (issue 12 "Learning"): when an agent's name (by one author) has
 * a newer version than the one routing would use, the newer one (the challenger) receives a share
 * of the traffic (default 10%) and the older one (the incumbent) the rest. Once both have enough
 * results, the challenger is promoted (it takes all the traffic) or demoted (it takes none) on
 * measured success, latency and cost, and the decision with its figures is handed on to be written
 * to the registry.
 */
import type { AgentCandidate } from '../components.ts'

/** Measured figures of one side of a trial. */
export interface ArmFigures {
  agentId: string
  version: string
  /** Results counted (accepted + failed). */
  results: number
  /** Accepted share, 0..1 (0 with no result). */
  success: number
  /** Mean run time of accepted results (ms), 0 when none. */
  meanMs: number
  /** Mean price paid per result. */
  meanCost: number
}

/** A decided trial, as written to the registry. */
export interface AbDecision {
  name: string
  author?: string
  decision: 'promoted' | 'demoted'
  challenger: ArmFigures
  incumbent: ArmFigures
  /** The rule that decided, in words. */
  reason: string
  at: number
}

/** One trial as the learned state shows it. */
export interface AbTrialState {
  name: string
  author?: string
  status: 'running' | 'promoted' | 'demoted'
  /** Share of traffic the challenger receives while running. */
  share: number
  challenger: ArmFigures
  incumbent: ArmFigures
  decision?: AbDecision
}

/** Options of {@link AbTrials}, with defaults. */
export interface AbInit {
  /** Share of the traffic a new version receives while on trial, 0..1. Default 0.1. */
  share?: number
  /** Results each side needs before a decision. Default 30. */
  minResults?: number
  /** The challenger's success may fall short of the incumbent's by at most this much. Default 0.05. */
  successMargin?: number
  /** The challenger's mean run time may be at most this factor of the incumbent's (+ 5 ms). Default 1.5. */
  latencyFactor?: number
  /** The challenger's mean cost may be at most this factor of the incumbent's. Default 1.1. */
  costFactor?: number
  /** Trials remembered (decided ones included); the oldest is forgotten. Default 256. */
  maxTrials?: number
  random?: () => number
}

/** One side of a trial as persisted. */
export interface AbSide {
  agentId: string
  version: string
  ok: number
  failed: number
  msSum: number
  costSum: number
}

/** A trial as persisted (route/learning-store.ts). */
export interface AbTrial {
  name: string
  author?: string
  challenger: AbSide
  incumbent: AbSide
  status: AbTrialState['status']
  decision?: AbDecision
}

/** A/B trials keyed by (author, name, challenger version, incumbent version). */
export class AbTrials {
  readonly #trials = new Map<string, AbTrial>()
  /** agentId → trials it takes part in (a result counts in each). */
  readonly #byAgent = new Map<string, Set<string>>()
  readonly #share: number
  readonly #min: number
  readonly #margin: number
  readonly #latency: number
  readonly #cost: number
  readonly #max: number
  readonly #random: () => number
  readonly #onDecision: (d: AbDecision) => void

  constructor(init: AbInit = {}, onDecision: (d: AbDecision) => void = () => {}) {
    this.#share = init.share !== undefined && Number.isFinite(init.share) ? Math.min(1, Math.max(0, init.share)) : 0.1
    this.#min = Math.max(1, Math.floor(init.minResults ?? 30))
    this.#margin = init.successMargin ?? 0.05
    this.#latency = init.latencyFactor ?? 1.5
    this.#cost = init.costFactor ?? 1.1
    this.#max = Math.max(1, Math.floor(init.maxTrials ?? 256))
    this.#random = init.random ?? Math.random
    this.#onDecision = onDecision
  }

  /** Which side to route to for this name now (the trial starts on first sight), and why in words. */
  choose(incumbent: AgentCandidate, challenger: AgentCandidate): { use: 'incumbent' | 'challenger'; why: string } {
    const t = this.#trial(incumbent, challenger)
    if (t.status === 'promoted') return { use: 'challenger', why: `${challenger.version} was promoted` }
    if (t.status === 'demoted') return { use: 'incumbent', why: `${challenger.version} was demoted` }
    const use = this.#random() < this.#share ? 'challenger' : 'incumbent'
    return { use, why: `${challenger.version} on trial with ${Math.round(this.#share * 100)}% of the traffic` }
  }

  /** Count one result of `agentId` in every trial it takes part in; decides a trial once both sides have enough. */
  record(agentId: string, success: boolean, ms: number, cost: number, at = Date.now()): void {
    const keys = this.#byAgent.get(agentId)
    if (keys == null) return
    for (const key of keys) {
      const t = this.#trials.get(key)
      if (t == null || t.status !== 'running') continue
      const side = t.challenger.agentId === agentId ? t.challenger : t.incumbent
      if (success) {
        side.ok++
        if (Number.isFinite(ms) && ms >= 0) side.msSum += ms
      } else side.failed++
      if (Number.isFinite(cost) && cost >= 0) side.costSum += cost
      if (t.challenger.ok + t.challenger.failed >= this.#min && t.incumbent.ok + t.incumbent.failed >= this.#min) this.#decide(t, at)
    }
  }

  /** The raw trials by key, oldest first (to persist). */
  dump(): Array<[string, AbTrial]> {
    return [...this.#trials].map(([k, t]) => [k, structuredClone(t)])
  }

  /** Restore dumped trials (decisions included); trials started since are kept as they are. */
  load(dump: ReadonlyArray<readonly [string, AbTrial]>): void {
    for (const [key, t] of dump.slice(-this.#max)) {
      if (this.#trials.has(key) || this.#trials.size >= this.#max) continue
      this.#trials.set(key, structuredClone(t))
      for (const id of [t.challenger.agentId, t.incumbent.agentId]) {
        const s = this.#byAgent.get(id) ?? new Set()
        s.add(key)
        this.#byAgent.set(id, s)
      }
    }
  }

  /** Every trial, newest first. */
  trials(): AbTrialState[] {
    return [...this.#trials.values()].reverse().map((t) => ({
      name: t.name,
      ...(t.author !== undefined ? { author: t.author } : {}),
      status: t.status,
      share: this.#share,
      challenger: figures(t.challenger),
      incumbent: figures(t.incumbent),
      ...(t.decision !== undefined ? { decision: t.decision } : {})
    }))
  }

  #trial(incumbent: AgentCandidate, challenger: AgentCandidate): AbTrial {
    const key = `${challenger.author ?? ''}\n${challenger.name}\n${incumbent.id}\n${challenger.id}`
    let t = this.#trials.get(key)
    if (t != null) return t
    if (this.#trials.size >= this.#max) {
      const oldest = this.#trials.keys().next().value as string
      const o = this.#trials.get(oldest)
      this.#trials.delete(oldest)
      if (o != null) for (const id of [o.challenger.agentId, o.incumbent.agentId]) this.#byAgent.get(id)?.delete(oldest)
    }
    const side = (a: AgentCandidate): AbSide => ({ agentId: a.id, version: a.version, ok: 0, failed: 0, msSum: 0, costSum: 0 })
    t = { name: challenger.name, author: challenger.author, challenger: side(challenger), incumbent: side(incumbent), status: 'running' }
    this.#trials.set(key, t)
    for (const id of [challenger.id, incumbent.id]) {
      const s = this.#byAgent.get(id) ?? new Set()
      s.add(key)
      this.#byAgent.set(id, s)
    }
    return t
  }

  #decide(t: AbTrial, at: number): void {
    const c = figures(t.challenger)
    const i = figures(t.incumbent)
    const worse: string[] = []
    if (c.success < i.success - this.#margin) worse.push(`success ${pct(c.success)} against ${pct(i.success)}`)
    if (c.meanMs > i.meanMs * this.#latency + 5) worse.push(`${c.meanMs} ms against ${i.meanMs} ms`)
    if (c.meanCost > i.meanCost * this.#cost + 1e-9) worse.push(`cost ${c.meanCost} against ${i.meanCost}`)
    t.status = worse.length === 0 ? 'promoted' : 'demoted'
    const reason =
      worse.length === 0
        ? `${c.version} is no worse than ${i.version} on success (${pct(c.success)} vs ${pct(i.success)}), latency (${c.meanMs} vs ${i.meanMs} ms) and cost (${c.meanCost} vs ${i.meanCost})`
        : `${c.version} is worse than ${i.version}: ${worse.join(', ')}`
    t.decision = { name: t.name, ...(t.author !== undefined ? { author: t.author } : {}), decision: t.status, challenger: c, incumbent: i, reason, at }
    this.#onDecision(t.decision)
  }
}

/**
 * Order of two version strings: dotted numeric parts compared as numbers (1.10.0 > 1.9.0), a
 * pre-release (`-…`) before its release, anything else by string. Positive when `a` is newer.
 */
export function compareVersions(a: string, b: string): number {
  if (a === b) return 0
  const [ma, pa] = splitPre(a)
  const [mb, pb] = splitPre(b)
  const xa = ma.split('.')
  const xb = mb.split('.')
  for (let k = 0; k < Math.max(xa.length, xb.length); k++) {
    const sa = xa[k] ?? '0'
    const sb = xb[k] ?? '0'
    const na = /^\d+$/.test(sa) ? Number(sa) : Number.NaN
    const nb = /^\d+$/.test(sb) ? Number(sb) : Number.NaN
    if (!Number.isNaN(na) && !Number.isNaN(nb)) {
      if (na !== nb) return na - nb
    } else if (sa !== sb) return sa < sb ? -1 : 1
  }
  if (pa === pb) return 0
  if (pa === undefined) return 1
  if (pb === undefined) return -1
  return pa < pb ? -1 : 1
}

function splitPre(v: string): [string, string | undefined] {
  const i = v.indexOf('-')
  return i < 0 ? [v, undefined] : [v.slice(0, i), v.slice(i + 1)]
}

function figures(s: AbSide): ArmFigures {
  const results = s.ok + s.failed
  return {
    agentId: s.agentId,
    version: s.version,
    results,
    success: results === 0 ? 0 : round(s.ok / results, 4),
    meanMs: s.ok === 0 ? 0 : round(s.msSum / s.ok, 1),
    meanCost: results === 0 ? 0 : round(s.costSum / results, 4)
  }
}

function pct(x: number): string {
  return `${Math.round(x * 1000) / 10}%`
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
