/**
 * The `balanced` strategy's bandit (vision §3, issue 12 "Learning"): Thompson sampling over the
 * agents of each capability on verified success. Each (capability, agent) arm keeps a Beta
 * posterior of "a result of this agent is accepted" (outvoted, schema-invalid, failed and timed-out
 * attempts count as failures), and a moving mean of its run time and cost. The router draws one
 * sample per eligible agent and puts it in place of the quality term, so cost and latency keep
 * their weights while agents with little evidence are tried in proportion to their chance of being
 * the best: exploration that fades as evidence grows.
 *
 * The Beta sampler is Marsaglia and Tsang's gamma method (twenty lines, here rather than a
 * dependency: the maintained packages that offer a seeded Beta bring a tree of two dozen modules).
 */

/** One arm as the learned state shows it. */
export interface ArmState {
  agentId: string
  /** Accepted results. */
  successes: number
  /** Wrong, refused, failed or timed-out attempts. */
  failures: number
  /** Posterior mean of success with the bandit's uniform prior, 0..1. */
  mean: number
  /** Moving mean of the run time of accepted results (ms), when any. */
  meanMs?: number
  /** Moving mean of the price paid per attempt. */
  meanCost?: number
  /** When the arm last learned something (ms since epoch). */
  at: number
}

/** Options of {@link ThompsonBandit}, with defaults. */
export interface BanditInit {
  /** Pseudo-observations the agent's prior quality counts for. Default 2. */
  priorWeight?: number
  /** Weight of the newest run time and cost in their moving means. Default 0.2. */
  smoothing?: number
  /** Capabilities (or capability sets) remembered; the least recently used is forgotten. Default 256. */
  maxCapabilities?: number
  /** Arms per capability; the least recently used is forgotten. Default 1024. */
  maxArms?: number
  /** Uniform [0, 1) source (seed it in tests). Default Math.random. */
  random?: () => number
}

/** One arm as persisted (route/learning-store.ts). */
export interface Arm {
  s: number
  f: number
  ms: number
  /** Run times seen (0: `ms` is not known). */
  msN: number
  cost: number
  costN: number
  at: number
}

/** Thompson sampling per capability over agents. */
export class ThompsonBandit {
  readonly #caps = new Map<string, Map<string, Arm>>()
  readonly #priorWeight: number
  readonly #smoothing: number
  readonly #maxCaps: number
  readonly #maxArms: number
  readonly #random: () => number

  constructor(init: BanditInit = {}) {
    this.#priorWeight = positive(init.priorWeight, 2)
    this.#smoothing = Math.min(1, positive(init.smoothing, 0.2))
    this.#maxCaps = Math.max(1, Math.floor(init.maxCapabilities ?? 256))
    this.#maxArms = Math.max(1, Math.floor(init.maxArms ?? 1024))
    this.#random = init.random ?? Math.random
  }

  /** Learn one attempt of `agentId` on `capKey`. Bad figures are ignored, never thrown. */
  record(capKey: string, agentId: string, success: boolean, ms?: number, cost?: number, at = Date.now()): void {
    let arms = this.#caps.get(capKey)
    if (arms == null) {
      if (this.#caps.size >= this.#maxCaps) this.#caps.delete(this.#caps.keys().next().value as string)
      arms = new Map()
    } else this.#caps.delete(capKey) // re-inserted below: most recently used last
    this.#caps.set(capKey, arms)
    let arm = arms.get(agentId)
    if (arm == null) {
      if (arms.size >= this.#maxArms) arms.delete(arms.keys().next().value as string)
      arm = { s: 0, f: 0, ms: 0, msN: 0, cost: 0, costN: 0, at }
    } else arms.delete(agentId)
    arms.set(agentId, arm)
    if (success) arm.s++
    else arm.f++
    const a = this.#smoothing
    if (success && ms !== undefined && Number.isFinite(ms) && ms >= 0) {
      arm.ms = arm.msN === 0 ? ms : arm.ms + a * (ms - arm.ms)
      arm.msN++
    }
    if (cost !== undefined && Number.isFinite(cost) && cost >= 0) {
      arm.cost = arm.costN === 0 ? cost : arm.cost + a * (cost - arm.cost)
      arm.costN++
    }
    arm.at = at
  }

  /**
   * A draw from the posterior of `agentId`'s success on `capKey`: Beta(w·prior + successes,
   * w·(1 − prior) + failures), where `prior` is the agent's quality as routing knows it.
   */
  sample(capKey: string, agentId: string, prior: number): number {
    const arm = this.#caps.get(capKey)?.get(agentId)
    const p = Number.isFinite(prior) ? Math.min(0.99, Math.max(0.01, prior)) : 0.5
    const w = this.#priorWeight
    return sampleBeta(w * p + (arm?.s ?? 0), w * (1 - p) + (arm?.f ?? 0), this.#random)
  }

  /** Learned run time of `agentId` on `capKey` (ms), when it has been timed. */
  runMs(capKey: string, agentId: string): number | undefined {
    const arm = this.#caps.get(capKey)?.get(agentId)
    return arm == null || arm.msN === 0 ? undefined : arm.ms
  }

  /** Arms of one capability key, most pulled first. */
  arms(capKey: string): ArmState[] {
    const arms = this.#caps.get(capKey)
    if (arms == null) return []
    return [...arms]
      .map(([agentId, a]) => ({
        agentId,
        successes: a.s,
        failures: a.f,
        mean: (1 + a.s) / (2 + a.s + a.f),
        ...(a.msN > 0 ? { meanMs: round(a.ms) } : {}),
        ...(a.costN > 0 ? { meanCost: round(a.cost) } : {}),
        at: a.at
      }))
      .sort((x, y) => y.successes + y.failures - (x.successes + x.failures) || x.agentId.localeCompare(y.agentId))
  }

  /** The raw arms per capability key, least recently used first (to persist). */
  dump(): Array<[string, Array<[string, Arm]>]> {
    return [...this.#caps].map(([k, arms]) => [k, [...arms].map(([id, a]) => [id, { ...a }])])
  }

  /** Restore dumped arms; arms learned since (present now) are kept as they are. */
  load(dump: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, Arm]>]>): void {
    for (const [capKey, arms] of dump.slice(-this.#maxCaps)) {
      let m = this.#caps.get(capKey)
      if (m == null) {
        if (this.#caps.size >= this.#maxCaps) continue
        m = new Map()
        this.#caps.set(capKey, m)
      }
      for (const [agentId, a] of arms) if (!m.has(agentId) && m.size < this.#maxArms) m.set(agentId, { ...a })
    }
  }

  /** Every capability key's arms (capabilities of a key joined by newlines). */
  snapshot(): Record<string, ArmState[]> {
    return Object.fromEntries([...this.#caps.keys()].map((k) => [k, this.arms(k)]))
  }
}

/** A draw from Beta(a, b) (a, b > 0) with the uniform source `random`. */
export function sampleBeta(a: number, b: number, random: () => number): number {
  const x = sampleGamma(a, random)
  const y = sampleGamma(b, random)
  const s = x + y
  return s > 0 && Number.isFinite(s) ? x / s : a / (a + b)
}

/** Marsaglia & Tsang (2000), "A simple method for generating gamma variables"; shape < 1 by boosting. */
function sampleGamma(shape: number, random: () => number): number {
  if (!(shape > 0) || !Number.isFinite(shape)) return 0
  if (shape < 1) return sampleGamma(shape + 1, random) * (1 - random()) ** (1 / shape)
  const d = shape - 1 / 3
  const c = 1 / Math.sqrt(9 * d)
  for (let guard = 0; guard < 1000; guard++) {
    const x = normal(random)
    const t = 1 + c * x
    if (t <= 0) continue
    const v = t * t * t
    const u = 1 - random()
    if (u < 1 - 0.0331 * x * x * x * x) return d * v
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v
  }
  return d // a broken source: the mode, not a hang
}

/** Standard normal by Box–Muller. */
function normal(random: () => number): number {
  const u = 1 - random()
  const v = random()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}

function positive(x: number | undefined, fallback: number): number {
  return x !== undefined && Number.isFinite(x) && x > 0 ? x : fallback
}

function round(x: number): number {
  return Math.round(x * 100) / 100
}
